# The seed's transformation handler (shared/seed/seed-pipeline.md, step 7) with one fix, as in
# scripts/bench/transform_baseline.py: `output` is a local list (the seed's global list makes every warm
# invocation return all earlier records again). It still returns `data` as base64 bytes; the runtime loop
# (python_runtime.py) serializes them as text, as transform_baseline.py does.
import json
import boto3
import base64

def lambda_handler(event, context):
    output = []  # the seed's bug: this list was global

    for record in event['records']:
        payload = base64.b64decode(record['data']).decode('utf-8')
        row_w_newline = payload + "\n"
        row_w_newline = base64.b64encode(row_w_newline.encode('utf-8'))

        output_record = {
            'recordId': record['recordId'],
            'result': 'Ok',
            'data': row_w_newline
        }
        output.append(output_record)

    return {'records': output}

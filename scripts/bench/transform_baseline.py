#!/usr/bin/env python3
"""Python baselines for crates/weir-core/benches/transform.rs, measured the same way: one whole
invocation from the raw event bytes (json.loads included) to the serialized response bytes
(json.dumps included), in process, one thread.

    transform_baseline.py EVENT_FILE [SECONDS]

Prints one `BENCH key=value ...` line per handler (scripts/bench-transform.sh parses them).

- `newline`: the seed's transformation handler (shared/seed/seed-pipeline.md, step 7) with one fix:
  `output` is a local list. The seed keeps it global, so every warm invocation would return all
  earlier invocations' records again (and grow without bound). Its `data` stays what the seed
  returns, base64 *bytes*: AWS's Python runtime would refuse to serialize those (its JSON encoder
  handles Decimal only), so the seed as written fails every invocation on Python 3. The harness's
  json.dumps turns them into text with a `default` hook, the cheapest way to a valid response
  without changing the handler's own work.
- `csv`: a straightforward Python equivalent of weir's csv transform with the same columns:
  json.loads per record, the csv module writing one row to a StringIO, base64 in and out, the same
  response shape. Unlike weir's, it checks no types and treats no column as required.
"""

import base64
import csv
import io
import json
import sys
import time


def seed_newline_handler(event, context):
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


def csv_handler(event, context):
    output = []
    for record in event['records']:
        obj = json.loads(base64.b64decode(record['data']))
        row = [
            obj.get('event_id'),
            (obj.get('user') or {}).get('id'),
            obj.get('event'),
            obj.get('amount'),
            'true' if obj.get('ok') else 'false',
        ]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator='\n').writerow(row)
        output.append({
            'recordId': record['recordId'],
            'result': 'Ok',
            'data': base64.b64encode(buffer.getvalue().encode('utf-8')).decode('ascii'),
        })
    return {'records': output}


def bytes_as_text(value):
    if isinstance(value, bytes):
        return value.decode('ascii')
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def invoke(handler, raw):
    return json.dumps(handler(json.loads(raw), None), default=bytes_as_text).encode('utf-8')


def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    with open(path, 'rb') as f:
        raw = f.read()
    event = json.loads(raw)
    records = len(event['records'])
    data_bytes = sum(len(base64.b64decode(r['data'])) for r in event['records'])
    for name, handler in [('newline', seed_newline_handler), ('csv', csv_handler)]:
        response = invoke(handler, raw)
        out = json.loads(response)['records']
        assert len(out) == records and all(r['result'] == 'Ok' for r in out), name
        assert [r['recordId'] for r in out] == [r['recordId'] for r in event['records']], name
        invocations = 0
        start = time.perf_counter()
        while invocations == 0 or time.perf_counter() - start < seconds:
            invoke(handler, raw)
            invocations += 1
        elapsed = time.perf_counter() - start
        print(f"BENCH kind=transform name={name} impl=python seconds={elapsed:.6f} invocations={invocations} "
              f"records={records} event_bytes={len(raw)} data_bytes={data_bytes} response_bytes={len(response)}",
              flush=True)
        print(f"{name:>8} python: {invocations * records / elapsed:>10.0f} records/s, "
              f"{invocations * len(raw) / elapsed / 1e6:>7.1f} MB/s of event, "
              f"{elapsed * 1e3 / invocations:>6.2f} ms per invocation", file=sys.stderr)


if __name__ == '__main__':
    main()

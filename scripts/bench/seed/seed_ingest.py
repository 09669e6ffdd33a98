# The seed's ingest handler (shared/seed/seed-pipeline.md, step 2), unchanged: one put_record per request,
# the body double-encoded by json.dumps, every record under partition key "1" of stream "hellotesting".
# The benchmark points boto3 at kinesalite with AWS_ENDPOINT_URL.
import json
import boto3

client = boto3.client('kinesis')

def lambda_handler(event, context):
    data = json.dumps(event['body'])
    client.put_record(StreamName="hellotesting", Data=data, PartitionKey="1")
    print("Data Inserted")

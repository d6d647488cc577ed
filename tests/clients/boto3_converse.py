"""One Converse call with boto3, configured only by the environment, as docs/keys.md tells
users to configure it:

    AWS_ENDPOINT_URL_BEDROCK_RUNTIME=https://meter:8443
    AWS_BEARER_TOKEN_BEDROCK=...        (a bearer_token from the meter's keys file)
    AWS_DEFAULT_REGION=us-west-2        (boto3 does not read AWS_REGION)
    AWS_CA_BUNDLE=/path/to/ca.crt       (when the meter's certificate is from a private CA)

Prints the usage Bedrock reported as JSON, for tests/tls.rs to compare with the meter's metrics.
"""

import json

import boto3

client = boto3.client("bedrock-runtime")
answer = client.converse(
    modelId="amazon.nova-micro-v1:0",
    messages=[{"role": "user", "content": [{"text": "Hello from boto3 over TLS."}]}],
)
print(json.dumps(answer["usage"]))

#!/usr/bin/env python3
"""A minimal Lambda custom runtime for a Python handler: what AWS's Python runtime does around a handler
(import the module, then poll the runtime API: GET next event, call the handler, POST its JSON), with
http.client from the standard library. Lighter than AWS's awslambdaric, so it flatters Python's cold
start a little, never the other way round.

    python_runtime.py HANDLER_FILE [FUNCTION]     (AWS_LAMBDA_RUNTIME_API from the environment)
"""
import http.client
import importlib.util
import json
import os
import sys


def as_text(value):
    if isinstance(value, bytes):
        return value.decode('ascii')
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def main():
    path, name = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else 'lambda_handler')
    spec = importlib.util.spec_from_file_location('handler', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, name)
    host, port = os.environ['AWS_LAMBDA_RUNTIME_API'].rsplit(':', 1)
    api = http.client.HTTPConnection(host, int(port))
    base = '/2018-06-01/runtime/invocation'
    while True:
        api.request('GET', f'{base}/next')
        response = api.getresponse()
        request_id = response.getheader('Lambda-Runtime-Aws-Request-Id')
        event = json.loads(response.read())
        try:
            body = json.dumps(handler(event, None), default=as_text).encode('utf-8')
            api.request('POST', f'{base}/{request_id}/response', body, {'Content-Type': 'application/json'})
        except Exception as e:  # an invocation error, as the runtime reports it
            error = json.dumps({'errorMessage': str(e), 'errorType': type(e).__name__}).encode('utf-8')
            api.request('POST', f'{base}/{request_id}/error', error, {'Content-Type': 'application/json'})
        api.getresponse().read()


if __name__ == '__main__':
    main()

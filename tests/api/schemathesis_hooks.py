"""Schemathesis hooks for weir's API (loaded by crates/weir/tests/schemathesis.rs through
SCHEMATHESIS_HOOKS): how to write the NDJSON request bodies the spec documents."""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson", "application/jsonl")
def ndjson(ctx, value):
    """The spec's NDJSON body is an array of records, sent one record per line. A generated value that
    is not an array (a negative case) has no NDJSON form; it is sent as one line holding the value in
    an array, which is just as invalid (a line must be an object) rather than silently made valid."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, list):
        return (json.dumps([value]) + "\n").encode()
    return "".join(json.dumps(item) + "\n" for item in value).encode()

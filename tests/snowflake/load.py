"""Loads objects weir delivered with the SQL `weir snowflake` generated, on fakesnow, and checks the rows.

Run by crates/weir/tests/snowflake.rs with one argument, a JSON case file:
  {"records": [...posted...],
   "csv":    {"script": <weir snowflake --output json>, "files": [...], "columns": [...]},
   "ndjson": {"script": <weir snowflake --output json>, "files": [...]}}

Every generated statement is parsed with sqlglot's Snowflake dialect. Then, on fakesnow (in process),
the generated CREATE FILE FORMAT and CREATE TABLE run as generated, and the objects are loaded with the
generated COPY. What this test substitutes, because fakesnow 0.12 cannot do it (each is said where done):
  - the external stage (s3://, with a storage integration) -> an internal stage of the same name + PUT;
  - CREATE STORAGE INTEGRATION and CREATE PIPE -> parsed only (sqlglot parses CREATE PIPE as an opaque
    command, so its COPY is parsed on its own);
  - COPY's PATTERN (unknown to fakesnow) -> checked here against every delivered object's name instead;
  - ON_ERROR = SKIP_FILE -> ABORT_STATEMENT (the only value fakesnow implements; stricter);
  - CSV file format options fakesnow does not implement -> left out of the format COPY uses (the full
    generated format is created first); see FAKESNOW_UNIMPLEMENTED for why each is not tested here;
  - fakesnow's CSV reader (DuckDB) reads a quoted empty field "" as NULL, where Snowflake documents
    FIELD_OPTIONALLY_ENCLOSED_BY + EMPTY_FIELD_AS_NULL as NULL only for an empty unquoted field: the
    reader is patched with DuckDB's allow_quoted_nulls = false to follow Snowflake's documented behaviour;
  - the NDJSON COPY (SELECT $1, METADATA$FILENAME, ... FROM @stage) fails in fakesnow (a bare $1 in a
    COPY transformation is unsupported): the records are copied with a plain COPY into a one-VARIANT
    table, then inserted into the generated table; RECORD is compared, the metadata columns are not;
  - TIMESTAMP_TZ: DuckDB keeps the instant, not the offset; instants are compared.
Exits 1 with a message on the first mismatch.
"""

import datetime
import decimal
import json
import os
import re
import sys

try:
    import fakesnow
    import snowflake.connector
    import sqlglot
    from fakesnow import copy_into
    from sqlglot import exp
except ImportError as e:  # the Rust test checks first; this is for running the script by hand
    sys.exit(f"{e}: install requirements-test.txt into .venv-tests (./scripts/test.sh does)")

# CSV options of the generated format that fakesnow's COPY rejects as not implemented, and why leaving
# them out does not weaken what this test shows about weir's files (DuckDB's read_csv defaults).
FAKESNOW_UNIMPLEMENTED = {
    "RECORD_DELIMITER": "'\\n' is DuckDB's line ending too",
    "MULTI_LINE": "DuckDB reads line breaks inside quotes (the records with CR/LF check it)",
    "PARSE_HEADER": "FALSE: the header is skipped by SKIP_HEADER, which fakesnow implements",
    "SKIP_BLANK_LINES": "weir writes no blank lines (a one-column CSV must be required)",
    "ESCAPE": "NONE: DuckDB's escape inside quotes is the doubled quote, as weir writes",
    "TRIM_SPACE": "FALSE: DuckDB keeps spaces in quoted fields (weir quotes leading/trailing spaces)",
    "ERROR_ON_COLUMN_COUNT_MISMATCH": "weir writes every column of every row",
    "REPLACE_INVALID_CHARACTERS": "weir writes valid UTF-8 only",
    "SKIP_BYTE_ORDER_MARK": "weir writes no byte order mark",
    "ENCODING": "'UTF8' is DuckDB's only encoding here",
    "TIMESTAMP_FORMAT": "DuckDB parses weir's RFC 3339 timestamps itself; values are compared below",
}


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def allow_no_quoted_nulls():
    """Makes fakesnow's CSV reader keep "" as '' (Snowflake's documented behaviour; see the docstring)."""
    original = copy_into.ReadCSV.read_expression

    def read_expression(self, url):
        expression = original(self, url)
        expression.append("expressions", copy_into.FileTypeHandler.make_eq("allow_quoted_nulls", False))
        return expression

    copy_into.ReadCSV.read_expression = read_expression


def parse_statements(script):
    """Parses every statement with sqlglot's Snowflake dialect; the pipe's COPY separately."""
    for statement in script["statements"]:
        sql = statement["sql"]
        if statement["kind"] == "pipe":
            match = re.fullmatch(r'CREATE PIPE IF NOT EXISTS (\S+)\n  AUTO_INGEST = TRUE\n  COMMENT = \'[^\']*\'\n  AS\n(.*)',
                                 sql, re.S)
            if not match:
                fail(f"unexpected pipe statement: {sql}")
            sqlglot.tokenize(sql, read="snowflake")
            copy = sqlglot.parse_one(match.group(2), read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
            if not isinstance(copy, exp.Copy):
                fail(f"the pipe's body is not a COPY: {copy!r}")
            if match.group(2) != statement_of(script, "copy"):
                fail("the pipe's COPY differs from the copy statement")
            continue
        parsed = sqlglot.parse_one(sql, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
        if isinstance(parsed, exp.Command):
            fail(f"sqlglot parsed {statement['kind']} only as an opaque command: {sql}")
        print(f"parsed {statement['kind']}: {type(parsed).__name__}")


def statement_of(script, kind):
    return next(s["sql"] for s in script["statements"] if s["kind"] == kind)


def name_of(script, kind):
    return next(s["name"] for s in script["statements"] if s["kind"] == kind)


def pattern_of(copy):
    match = re.search(r"\n  PATTERN = '([^']*)'", copy)
    if not match:
        fail(f"no PATTERN in {copy}")
    return match.group(1)


def without_pattern(copy):
    return re.sub(r"\n  PATTERN = '[^']*'", "", copy)


def check_pattern(script, files, stage_dir, other_files):
    """The pipe's PATTERN (Snowpipe matches it to the path below the stage) picks exactly these files."""
    pattern = re.compile(pattern_of(statement_of(script, "copy")))
    for path in files:
        if not pattern.fullmatch(path.split(f"/{stage_dir}/", 1)[1]):
            fail(f"PATTERN {pattern.pattern} does not match delivered object {path}")
    for path in other_files:
        if pattern.fullmatch(os.path.basename(path)):
            fail(f"PATTERN {pattern.pattern} matches another delivery's object {path}")


def put(cur, stage, files):
    for path in files:
        cur.execute(f"PUT 'file://{path}' @{stage} AUTO_COMPRESS = FALSE")


def check_loaded(results, files):
    if len(results) != len(files) or any(r[1] != "LOADED" for r in results):
        fail(f"COPY did not load every file: {results}")
    return sum(r[3] for r in results)


def load_csv(cur, case):
    script = case["csv"]["script"]
    file_format = name_of(script, "file_format")
    table = name_of(script, "table")
    stage = name_of(script, "stage")
    cur.execute(statement_of(script, "file_format"))
    cur.execute(statement_of(script, "table"))
    # Substitute: an internal stage of the generated stage's name (fakesnow cannot read s3://).
    cur.execute(f"CREATE STAGE {stage}")
    put(cur, stage, case["csv"]["files"])

    # Substitute: the generated format without the options fakesnow does not implement.
    options = re.findall(r"\n  ([A-Z_]+) = (.*)", statement_of(script, "file_format"))
    dropped = {k for k, _ in options if k in FAKESNOW_UNIMPLEMENTED}
    if dropped != set(FAKESNOW_UNIMPLEMENTED):
        fail(f"the CSV format's options changed; review FAKESNOW_UNIMPLEMENTED: {sorted(dropped)}")
    kept = " ".join(f"{k} = {v}" for k, v in options if k not in FAKESNOW_UNIMPLEMENTED)
    cur.execute(f"CREATE OR REPLACE FILE FORMAT {file_format} {kept}")

    copy = without_pattern(statement_of(script, "copy")).replace("ON_ERROR = SKIP_FILE", "ON_ERROR = ABORT_STATEMENT")
    cur.execute(copy)
    loaded = check_loaded(cur.fetchall(), case["csv"]["files"])
    if loaded != len(case["records"]):
        fail(f"CSV: {loaded} rows loaded, {len(case['records'])} posted")

    columns = case["csv"]["columns"]
    cur.execute(f"SELECT * FROM {table}")
    rows = {row[0]: row for row in cur.fetchall()}
    for record in case["records"]:
        row = rows.get(record["id"])
        if row is None:
            fail(f"CSV: no row for record {record['id']}")
        for i, column in enumerate(columns):
            expected = expected_value(record, column)
            actual = row[i]
            if not same(expected, actual):
                fail(f"CSV: record {record['id']} column {column['name']}: {actual!r}, posted {expected!r}")
    print(f"csv: {len(rows)} rows match the posted records value by value")


def pointer_value(record, pointer):
    value = record
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(value, dict) or token not in value:
            return None
        value = value[token]
    return value


def expected_value(record, column):
    value = pointer_value(record, column.get("pointer", "/" + column["name"]))
    if value is None:
        return None
    kind = column["type"]
    if kind == "timestamp":
        if isinstance(value, int):
            return datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)
        return datetime.datetime.fromisoformat(value)
    if kind == "float":
        return float(value)
    return value


def same(expected, actual):
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(actual, decimal.Decimal):
        actual = int(actual) if actual == actual.to_integral_value() else float(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return type(expected) is type(actual) and expected == actual


def load_ndjson(cur, case):
    script = case["ndjson"]["script"]
    file_format = name_of(script, "file_format")
    table = name_of(script, "table")
    stage = name_of(script, "stage")
    cur.execute(statement_of(script, "file_format"))
    cur.execute(statement_of(script, "table"))
    cur.execute(f"CREATE STAGE {stage}")  # substitute, as for CSV
    put(cur, stage, case["ndjson"]["files"])

    # Substitute: fakesnow cannot run the generated COPY's SELECT $1, METADATA$… (see the docstring).
    cur.execute('CREATE TEMPORARY TABLE "WEIR_TEST_LOAD" ("RECORD" VARIANT)')
    cur.execute(f"COPY INTO \"WEIR_TEST_LOAD\" FROM @{stage} FILE_FORMAT = (FORMAT_NAME = '{file_format}')")
    loaded = check_loaded(cur.fetchall(), case["ndjson"]["files"])
    if loaded != len(case["records"]):
        fail(f"NDJSON: {loaded} rows loaded, {len(case['records'])} posted")
    cur.execute(
        f'INSERT INTO {table} ("RECORD", "FILE_NAME", "FILE_ROW_NUMBER", "LOADED_AT") '
        'SELECT "RECORD", \'substituted\', 0, CURRENT_TIMESTAMP() FROM "WEIR_TEST_LOAD"'
    )
    cur.execute(f'SELECT "RECORD" FROM {table}')
    loaded = [json.loads(row[0]) for row in cur.fetchall()]
    posted = sorted(case["records"], key=lambda r: r["id"])
    loaded.sort(key=lambda r: r["id"])
    if len(loaded) != len(posted):
        fail(f"NDJSON: {len(loaded)} rows, {len(posted)} posted")
    for expected, actual in zip(posted, loaded):
        if not same_json(expected, actual):
            fail(f"NDJSON: record {expected['id']}: loaded {actual!r}, posted {expected!r}")
    print(f"ndjson: {len(loaded)} rows match the posted records value by value")


def same_json(a, b):
    """Equal JSON, with types: 1 and 1.0 differ, and so do true and 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def main():
    with open(sys.argv[1]) as f:
        case = json.load(f)
    for kind in ("csv", "ndjson"):
        parse_statements(case[kind]["script"])
    check_pattern(case["csv"]["script"], case["csv"]["files"], "csv", case["ndjson"]["files"])
    check_pattern(case["ndjson"]["script"], case["ndjson"]["files"], "json", case["csv"]["files"])

    allow_no_quoted_nulls()
    with fakesnow.patch():
        conn = snowflake.connector.connect()
        cur = conn.cursor()
        cur.execute("CREATE DATABASE WEIR_TEST")
        cur.execute("CREATE SCHEMA WEIR_TEST.RAW")
        cur.execute("USE SCHEMA WEIR_TEST.RAW")
        load_csv(cur, case)
        load_ndjson(cur, case)
    print("ok")


if __name__ == "__main__":
    main()

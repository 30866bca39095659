#!/usr/bin/env bash
# Set everything up and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
if [ -f tests/wechaty/package.json ] && command -v npm >/dev/null 2>&1 \
   && [ ! -d tests/wechaty/node_modules ]; then
  (cd tests/wechaty && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# The code we want to live in (../shared/STYLE.md): lint and types first, then the tests.
.venv/bin/ruff check bot scheduler db bench tests
.venv/bin/mypy bot scheduler db
exec .venv/bin/python -m pytest "$@"

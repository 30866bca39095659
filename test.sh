#!/usr/bin/env bash
# Set everything up and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
if [ -f tests/wechaty/package.json ] && command -v npm >/dev/null 2>&1 \
   && [ ! -d tests/wechaty/node_modules ]; then
  (cd tests/wechaty && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
exec .venv/bin/python -m pytest "$@"

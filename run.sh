#!/usr/bin/env bash
# Set everything up and run the bot on its embedded default (simulator + SQLite + samples).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
exec .venv/bin/qunfu run --config config.yaml "$@"

#!/usr/bin/env bash
# Starts one Tern node from this checkout (no Docker needed): builds if needed, then runs
# the CLI with any extra flags, e.g.  scripts/start-local.sh --port 1884 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node packages/broker/dist/cli.js "$@"

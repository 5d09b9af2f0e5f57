#!/usr/bin/env bash
# Runs the playground: installs npm packages if needed, then serves the app with the built-in models.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
exec npx vite --open=false "$@"

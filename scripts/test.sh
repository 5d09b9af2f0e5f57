#!/usr/bin/env bash
# The whole test suite: what `npm test` and CI (.ci/run) run. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

export VK_ICD_FILENAMES="${VK_ICD_FILENAMES:-/usr/lib/chromium/vk_swiftshader_icd.json}"

echo "== typecheck"
npx tsc --noEmit -p tsconfig.json

echo "== lint and format check (Biome; includes the import-boundary rules of docs/architecture.md)"
npm run --silent lint

echo '== build (the e2e tests run against the built app; start.test.ts also runs npm start and vite preview as a person would)'
npx vite build --logLevel warn

echo "== unit, gpu (Dawn on SwiftShader) and e2e (Chromium) tests"
npx vitest run

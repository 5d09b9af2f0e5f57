#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for this project: Debian packages (Chromium for
# the browser tests, PyTorch + OpenBLAS for the model foundry) and the npm dependencies.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_apt+=(chromium)
/usr/bin/python3 -c 'import torch, numpy, regex' >/dev/null 2>&1 || need_apt+=(python3-torch python3-numpy python3-regex)
# The foundry's corpus (training/corpus.py installs them too; listed here so the test run never stalls on them).
for pkg in fortunes fortunes-de libpython3.11-stdlib bible-kjv python3.11-doc; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need_apt+=(libopenblas0-pthread)
# Vulkan loader: Dawn (the `webgpu` package) opens libvulkan.so.1 and reaches SwiftShader through it.
dpkg -s libvulkan1 >/dev/null 2>&1 || need_apt+=(libvulkan1)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "ensure-deps: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

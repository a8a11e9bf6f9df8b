#!/usr/bin/env bash
# Installs everything blastwatch's tests need on a fresh Debian 12 machine with Node.js 22
# (or 20.19+; `npm test` also runs the native-module tests on Node 22: scripts/test-node22):
# Debian packages (python3 + torch/OpenCV/scikit for the training pipeline and the segmentation
# reference, mosquitto for the integration tests, chromium for the dashboard's browser tests,
# systemd for `systemd-analyze verify` of the units in systemd/),
# the npm dependencies (builds dist/ through `prepare`), and the training venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-pip python3-pytest python3-numpy
  python3-torch python3-torchvision python3-opencv python3-sklearn python3-skimage python3-scipy
  mosquitto chromium systemd
  build-essential
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The mosquitto package starts a system broker on 1883; the tests start their own on free ports.

echo "setup: npm ci"
npm ci --no-audit --no-fund

if [ -f training/setup.sh ]; then
  echo "setup: training venv"
  bash training/setup.sh
fi
echo "setup: done"

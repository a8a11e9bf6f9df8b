#!/usr/bin/env bash
# Creates training/.venv on top of Debian's python3 (torch 1.13 CPU, torchvision, cv2, sklearn
# come from apt: python3-torch python3-torchvision python3-opencv python3-sklearn python3-skimage
# python3-venv python3-pytest). Only onnx/onnxruntime come from PyPI; numpy stays <2 because
# Debian's torch is built against numpy 1.x. Idempotent: a second run only checks imports.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="$venv/bin/python"
ONNX_SPEC="onnx==1.16.2"
ORT_SPEC="onnxruntime==1.19.2"
NUMPY_SPEC="numpy<2"

if [ ! -x "$py" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

check() {
  "$py" - <<'PY' 2>/dev/null
import numpy, torch, torchvision, onnx, onnxruntime, sklearn, pytest
assert int(numpy.__version__.split(".")[0]) < 2
PY
}

if ! check; then
  "$py" -m pip install --quiet --disable-pip-version-check "$NUMPY_SPEC" "$ONNX_SPEC" "$ORT_SPEC"
  "$py" -c "import pytest" 2>/dev/null || "$py" -m pip install --quiet --disable-pip-version-check pytest
  check || { echo "training/setup.sh: venv at $venv is still missing packages" >&2; exit 1; }
fi
echo "training venv ready: $venv"

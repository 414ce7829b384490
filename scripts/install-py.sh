#!/usr/bin/env bash
# A venv on Debian's python3 (which has python3-torch 1.13, the same version as our LibTorch),
# plus what PyPI adds for the interop tests: ONNX Runtime (with its quantization tools), LiteRT and pytest.
set -euo pipefail
VENV=${1:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
# Installs again whenever tests/interop/requirements.txt changed since the last install (a stamp in the venv).
stamp="$VENV/.edgeopt-requirements"
if ! cmp -s tests/interop/requirements.txt "$stamp" || ! "$VENV/bin/python" -c "import onnxruntime, pytest, onnx.reference, ai_edge_litert.interpreter, requests, schemathesis" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt
  cp tests/interop/requirements.txt "$stamp"
fi

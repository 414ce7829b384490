#!/usr/bin/env bash
# `make run` until the server exists: the CLI on the real fixtures and datasets, offline.
set -uo pipefail
BIN=${1:-build/edgeopt}
SHARED=$(cd "$(dirname "$0")/.." && pwd)/../shared
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
if [ -d "$SHARED/fixtures/models" ]; then
  say "$BIN" inspect "$SHARED/fixtures/models/pytorch1.10_mnist_cnn.onnx"
  say "$BIN" evaluate "$SHARED/fixtures/models/pytorch1.10_mnist_cnn.onnx" --dataset mnist --data-dir "$SHARED/datasets/mnist-10k" --normalize auto --no-download
  say "$BIN" inspect "$SHARED/fixtures/models/keras2.3_mnist_cnn.h5"
  say "$BIN" evaluate "$SHARED/fixtures/models/keras2.3_mnist_cnn.h5" --dataset mnist --data-dir "$SHARED/datasets/mnist-10k" --no-download
else
  echo "(the shared fixtures are not here; showing the CLI help)"
  say "$BIN" --help
fi
echo
echo "The web server is not built yet; see README.md for the CLI."

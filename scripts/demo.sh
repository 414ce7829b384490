#!/usr/bin/env bash
# `make demo`: the CLI on the real fixtures and datasets, offline.
set -uo pipefail
BIN=${1:-build/edgeopt}
SHARED=$(cd "$(dirname "$0")/.." && pwd)/../shared
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
if [ -d "$SHARED/fixtures/models" ]; then
  say "$BIN" inspect "$SHARED/fixtures/models/pytorch1.10_mnist_cnn.onnx"
  say "$BIN" evaluate "$SHARED/fixtures/models/pytorch1.10_mnist_cnn.onnx" --dataset mnist --data-dir "$SHARED/datasets/mnist-10k" --normalize auto --no-download
  say "$BIN" inspect "$SHARED/fixtures/models/keras2.3_mnist_cnn.h5"
  say "$BIN" evaluate "$SHARED/fixtures/models/keras2.3_mnist_cnn.h5" --dataset mnist --data-dir "$SHARED/datasets/mnist-10k" --no-download
  say "$BIN" estimate "$SHARED/fixtures/models/keras2.3_mnist_cnn.h5" --device raspberry_pi_4
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  say "$BIN" optimize "$ROOT/tests/data/models/fashion_cnn.onnx" --dataset fashion-mnist --no-download --limit 2000 --max-train-images 6000 \
    --devices raspberry_pi_4,raspberry_pi_5,coral_dev_board --device raspberry_pi_4 --out "${TMPDIR:-/tmp}/edgeopt-demo"
fi
if [ ! -d "$SHARED/fixtures/models" ]; then
  echo "(the shared fixtures are not here; showing the CLI help)"
  say "$BIN" --help
fi
echo
echo "The platform itself: make run (http://127.0.0.1:8000)."

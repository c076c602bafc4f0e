#!/usr/bin/env bash
# Usage: scripts/ensure-py-safetensors.sh PYTHON
# Installs the Python `safetensors` package for test/export-import.test.ts into a folder of this
# checkout (node_modules/.cache/charnn-py, never the shared PyTorch venv), from the local wheel
# directory only (WHEELS, default /opt/pypi/files; no network), and prints that folder for
# PYTHONPATH. Idempotent. Where there is no wheel it prints nothing and exits 0: the test then
# checks files with python/charnn_torch.py's built-in reader alone, and says so.
set -eu
PYTHON=${1:?usage: ensure-py-safetensors.sh PYTHON}
WHEELS=${WHEELS:-/opt/pypi/files}
TARGET="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.cache/charnn-py"
if PYTHONPATH="$TARGET" "$PYTHON" -c 'import safetensors.torch' 2>/dev/null; then
  echo "$TARGET"; exit 0
fi
if ! ls "$WHEELS"/safetensors-*.whl >/dev/null 2>&1; then
  echo "ensure-py-safetensors: no safetensors wheel in $WHEELS" >&2
  exit 0
fi
# --no-deps: safetensors needs nothing at run time beyond torch, which PYTHON has.
"$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps --find-links "$WHEELS" --target "$TARGET" safetensors >&2
PYTHONPATH="$TARGET" "$PYTHON" -c 'import safetensors.torch'
echo "$TARGET"

#!/usr/bin/env bash
# The controlled comparison of charnn with PyTorch: the same initial weights (charnn's, handed to
# PyTorch through `charnn export`), the same batches, objective, clipping, optimizer and schedule,
# so the two training-loss curves must agree to float32 noise; then one setting at a time can be
# changed on both sides. The replay runs twice, in float32 and in float64: how far PyTorch
# float32 strays from float64 is the noise that float32 rounding makes (early training is
# chaotic, so one-ulp differences grow), and charnn should stray from PyTorch no further. Prints
# the curves' means per 100 steps, where they first part by more than a threshold, and the
# validation losses.
#
#   bash bench/controlled.sh [CORPUS] [STEPS] [-- options for both sides]
#   bash bench/controlled.sh ../shared/corpora/tinyshakespeare.txt 1000 --clip 0 --clip-norm 250 --warmup 100
#
# Options both sides take: --optim --lr --eps --clip --clip-norm --batch --seq --val-frac
# --lr-schedule --warmup --lr-floor (charnn's meanings). The model is charnn's 2x128 LSTM.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
corpus="${1:-$root/../shared/corpora/tinyshakespeare.txt}"
steps="${2:-1000}"
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
python="$(bash "$root/../shared/peers/torch-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

node "$root/bench/controlled_charnn.mjs" "$corpus" --init "$work/init.charnn" --steps "$steps" "$@" > "$work/charnn.json"
node "$root/bin/charnn.js" export -m "$work/init.charnn" "$work/init.safetensors" > /dev/null
# The replay's own flags: everything charnn's side takes except the model's shape and seed.
"$python" "$here/controlled_torch.py" "$work/init.safetensors" "$corpus" --steps "$steps" "$@" > "$work/torch.json"
"$python" "$here/controlled_torch.py" "$work/init.safetensors" "$corpus" --steps "$steps" --double "$@" > "$work/torch64.json"

python3 - "$work/charnn.json" "$work/torch.json" "$work/torch64.json" <<'PY'
import json, sys
a, b, c = (json.load(open(p)) for p in sys.argv[1:4])
A, B, C = a["losses"], b["losses"], c["losses"]
mean = lambda xs: sum(xs) / len(xs)
print("steps         charnn   PyTorch  PyTorch-f64   (mean training loss, nats/char)")
for k in range(0, len(A), 100):
    print(f"{k + 1:>5}-{min(k + 100, len(A)):<5} {mean(A[k:k+100]):9.4f} {mean(B[k:k+100]):9.4f} {mean(C[k:k+100]):12.4f}")
print("first step differing by more than:   charnn vs PyTorch   PyTorch vs PyTorch-f64")
for th in (1e-3, 1e-2, 0.05, 0.1):
    first = lambda X, Y: next((i + 1 for i in range(len(X)) if abs(X[i] - Y[i]) > th), None) or f"none in {len(X)}"
    print(f"{th:>34}   {str(first(A, B)):>17}   {str(first(B, C)):>20}")
print(f"validation (nats/char): charnn {a['valLoss']:.4f}, PyTorch {b['valLoss']:.4f}, PyTorch-f64 {c['valLoss']:.4f}")
PY

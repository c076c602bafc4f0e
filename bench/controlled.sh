#!/usr/bin/env bash
# The controlled comparison of charnn with PyTorch: the same initial weights (charnn's, handed to
# PyTorch through `charnn export`), the same batches, objective, clipping, optimizer and schedule,
# so the two training-loss curves must agree to float32 noise; then one setting at a time can be
# changed on both sides. Prints the curves' means per 100 steps, where they first part by more
# than a threshold, and both validation losses.
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

python3 - "$work/charnn.json" "$work/torch.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
A, B = a["losses"], b["losses"]
print("steps       charnn    PyTorch   (mean training loss, nats/char)")
for k in range(0, len(A), 100):
    print(f"{k + 1:>5}-{min(k + 100, len(A)):<5} {sum(A[k:k+100]) / len(A[k:k+100]):8.4f} {sum(B[k:k+100]) / len(B[k:k+100]):9.4f}")
for th in (1e-3, 1e-2, 0.05, 0.1):
    first = next((i + 1 for i in range(len(A)) if abs(A[i] - B[i]) > th), None)
    print(f"first step differing by more than {th}: {first if first else 'none in ' + str(len(A))}")
print(f"validation: charnn {a['valLoss']:.4f}, PyTorch {b['valLoss']:.4f} nats/char")
PY

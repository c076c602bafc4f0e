"""The PyTorch half of the controlled comparison (bench/controlled.sh): continues nothing, starts
from charnn's initial weights (a `charnn export` of iteration 0) and trains them on the same
batches with the same objective and optimizer as charnn's trainer, so that the two per-iteration
loss curves can be compared step by step.

What is replicated from charnn (src/data/batcher.ts, src/train/trainer.ts, src/train/optimizer.ts):
  - tokens: the model's own vocabulary over the corpus's code points;
  - split: the last floor(N * val_frac) tokens held out; B streams of floor(n_train / B) tokens,
    windows of T (+1) tokens walked in lockstep, state carried and reset at each epoch's start;
  - objective: cross-entropy summed over the window's T steps, averaged over the B streams;
  - clipping: elementwise at --clip, then global norm at --clip-norm (0 = off);
  - schedule: the same warm-up and decay (--lr-schedule, --warmup, --lr-floor) over --steps;
  - optimizers: Adagrad p -= lr g / sqrt(sum g^2 + eps) (eps inside the root), Adam, RMSprop, SGD;
  - one bias per gate (charnn's b = PyTorch's bias_ih; bias_hh stays 0 for LSTM and RNN).
Prints one JSON line: {"losses": [nats per token per iteration], "valLoss": ...}.
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from charnn_torch import load  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("init", help="safetensors from `charnn export` of the initial checkpoint")
ap.add_argument("corpus")
ap.add_argument("--steps", type=int, default=500)
ap.add_argument("--optim", choices=["adagrad", "adam", "rmsprop", "sgd"], default="adagrad")
ap.add_argument("--lr", type=float, default=None)
ap.add_argument("--eps", type=float, default=None)
ap.add_argument("--clip", type=float, default=5.0)
ap.add_argument("--clip-norm", type=float, default=0.0)
ap.add_argument("--batch", type=int, default=50)
ap.add_argument("--seq", type=int, default=50)
ap.add_argument("--val-frac", type=float, default=0.1)
ap.add_argument("--lr-schedule", choices=["constant", "cosine", "linear"], default="constant")
ap.add_argument("--warmup", type=int, default=0)
ap.add_argument("--lr-floor", type=float, default=0.1)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--double", action="store_true", help="train in float64 (to tell rounding from a real difference)")
args = ap.parse_args()
DEFAULT_LR = {"adagrad": 0.3, "adam": 2e-3, "rmsprop": 2e-3, "sgd": 1.0}  # charnn's (src/train/optimizer.ts)
DEFAULT_EPS = {"adagrad": 1e-8, "adam": 1e-8, "rmsprop": 1e-8, "sgd": 0.0}
lr = args.lr if args.lr is not None else DEFAULT_LR[args.optim]
eps = args.eps if args.eps is not None else DEFAULT_EPS[args.optim]
torch.set_num_threads(args.threads)

model, desc = load(args.init)
if args.double:
    model = model.double()
model.train()
vocab = desc["vocabulary"]
assert vocab["level"] == "char", "the comparison is character-level"
stoi = {t: i for i, t in enumerate(vocab["tokens"])}
with open(args.corpus, encoding="utf-8") as f:
    text = f.read()
if text.startswith("\ufeff"):
    text = text[1:]
ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
N = len(ids)
n_train = N - math.floor(N * args.val_frac)
B, T = args.batch, args.seq
segment = n_train // B
windows_per_epoch = (segment - 1) // T

# bias_hh of LSTM / RNN is not a charnn parameter: keep it at 0.
params = []
for name, p in model.named_parameters():
    if model.cell != "gru" and name.startswith("rnn.bias_hh"):
        p.requires_grad_(False)
    else:
        params.append(p)

# Optimizer state as charnn keeps it.
state = [dict(a=torch.zeros_like(p), b=torch.zeros_like(p)) for p in params]


def update(step, cur_lr):
    with torch.no_grad():
        for p, s in zip(params, state):
            g = p.grad
            if args.optim == "sgd":
                p -= cur_lr * g
            elif args.optim == "adagrad":
                s["a"] += g * g
                p -= cur_lr * g / torch.sqrt(s["a"] + eps)
            elif args.optim == "rmsprop":
                s["a"].mul_(0.95).add_(0.05 * g * g)
                p -= cur_lr * g / (torch.sqrt(s["a"]) + eps)
            else:
                b1, b2 = 0.9, 0.999
                s["a"].mul_(b1).add_((1 - b1) * g)
                s["b"].mul_(b2).add_((1 - b2) * g * g)
                mh = s["a"] / (1 - b1**step)
                vh = s["b"] / (1 - b2**step)
                p -= cur_lr * mh / (torch.sqrt(vh) + eps)


def schedule_factor(update):
    """charnn's src/train/schedule.ts: linear warm-up, then decay to the floor at --steps."""
    if args.warmup > 0 and update <= args.warmup:
        return update / args.warmup
    if args.lr_schedule == "constant":
        return 1.0
    span = args.steps - args.warmup
    progress = min(1.0, max(0.0, (update - args.warmup) / span)) if span > 0 else 1.0
    decayed = 0.5 * (1 + math.cos(math.pi * progress)) if args.lr_schedule == "cosine" else 1 - progress
    return args.lr_floor + (1 - args.lr_floor) * decayed


def detach(h):
    return None if h is None else tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()


losses = []
h = None
window = 0
for step in range(1, args.steps + 1):
    if window == 0:
        h = None  # each epoch starts with fresh state
    off = window * T
    x = torch.stack([ids[b * segment + off: b * segment + off + T] for b in range(B)], 1)  # [T, B]
    y = torch.stack([ids[b * segment + off + 1: b * segment + off + T + 1] for b in range(B)], 1)
    window = (window + 1) % windows_per_epoch
    h = detach(h)
    logits, h = model(x, h)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum") / B
    for p in params:
        p.grad = None
    loss.backward()
    losses.append(loss.item() / T)
    with torch.no_grad():
        if args.clip > 0:
            for p in params:
                p.grad.clamp_(-args.clip, args.clip)
        if args.clip_norm > 0:
            norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
            if norm > args.clip_norm:
                for p in params:
                    p.grad.mul_(args.clip_norm / (norm + 1e-6))
    update(step, lr * schedule_factor(step))



@torch.no_grad()
def validate():
    """charnn's evaluateRegion: B streams of S = floor((n - 1) / B) predictions over the held-out
    tail, state carried through the whole region."""
    model.eval()
    val = ids[n_train:]
    S = (len(val) - 1) // B
    if S < 1:
        return float("nan")
    x = torch.stack([val[b * S: b * S + S] for b in range(B)], 1)
    y = torch.stack([val[b * S + 1: b * S + S + 1] for b in range(B)], 1)
    h, total = None, 0.0
    for t in range(0, S, T):
        logits, h = model(x[t: t + T], h)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[t: t + T].reshape(-1), reduction="sum").item()
    model.train()
    return total / (S * B)


print(json.dumps({"trainer": "torch", "optim": args.optim, "lr": lr, "eps": eps, "losses": losses, "valLoss": validate()}))

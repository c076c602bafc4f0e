#!/usr/bin/env python3
"""PyTorch's side of the WikiText-2 word-level comparison (bench/wikitext2.sh runs both sides).

Trains the model `charnn train --level word --word-split space` trains, the way charnn trains
it, so that the two test perplexities compare implementations and nothing else:
- tokens: whitespace-separated words plus a "\\n" token per line break (WikiText's <eos>); the
  vocabulary is every token of the training file plus <unk> (a literal <unk> is that token);
- the last floor(n * val_frac) tokens of the training file are held out for validation;
- B contiguous streams of floor(n_train / B) tokens walked in lockstep, T steps a window,
  hidden state carried between windows and reset at each epoch;
- objective: cross-entropy summed over the window's T steps and averaged over the B streams
  (so --lr and --clip-norm mean what they mean to charnn); gradient-norm clipping as
  clip_grad_norm_; plain SGD, Adagrad or Adam; the learning rate times --plateau-decay after
  more than --plateau-patience validations in a row without a new best;
- charnn's initialisation: embedding U(+-0.1), weights U(+-1/sqrt(H)), LSTM forget-gate bias 1,
  other biases 0;
- evaluation as `charnn eval --unknown unk`: B contiguous streams of S = floor((n - 1) / B)
  predictions each, windows of T (a last shorter one), every prediction of every stream scored,
  with the best-validation weights (charnn's <out>.best.charnn).

Prints one JSON line: perplexities, losses, tokens, seconds.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
from charnn_torch import CharnnModel  # noqa: E402  (the module charnn's exports load into)


def read_tokens(path):
    """charnn's `--word-split space` tokens: whitespace-separated words, and "\\n" per line break."""
    with open(path, encoding='utf-8') as f:
        text = f.read().replace('\r\n', '\n').replace('\r', '\n')
    tokens = []
    lines = text.split('\n')
    for i, line in enumerate(lines):
        tokens.extend(line.split())
        if i < len(lines) - 1:
            tokens.append('\n')
    return tokens


def init_like_charnn(model, cell, hidden):
    """charnn's initial distributions (src/model/params.ts), so both sides start alike."""
    bound = 1 / math.sqrt(hidden)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith('encoder.'):
                p.uniform_(-0.1, 0.1)
            elif 'bias_hh' in name or name == 'decoder.bias':
                p.zero_()
            elif 'bias_ih' in name:
                p.zero_()
                if cell == 'lstm':
                    p[hidden:2 * hidden] = 1  # [i | f | g | o]: the forget gate
            else:
                p.uniform_(-bound, bound)


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def evaluate(model, ids, T, B):
    """Mean cross-entropy (nats) over ids as charnn's evaluateRegion scores it."""
    model.eval()
    S = (len(ids) - 1) // B
    streams = torch.stack([ids[b * S: b * S + S + 1] for b in range(B)], dim=1)  # [S + 1, B]
    total = 0.0
    state = None
    with torch.no_grad():
        for t0 in range(0, S, T):
            steps = min(T, S - t0)
            logits, state = model(streams[t0:t0 + steps], state)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), streams[t0 + 1:t0 + steps + 1].reshape(-1), reduction='sum').item()
    return total / (S * B)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--train', required=True)
    ap.add_argument('--test', required=True)
    ap.add_argument('--model', default='lstm', choices=['rnn', 'lstm', 'gru'])
    ap.add_argument('--hidden', type=int, default=200)
    ap.add_argument('--embed', type=int, default=200)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--dropout', type=float, default=0.0)
    ap.add_argument('--tie', action='store_true')
    ap.add_argument('--seq', type=int, default=35)
    ap.add_argument('--batch', type=int, default=20)
    ap.add_argument('--optim', default='sgd', choices=['sgd', 'adagrad', 'adam'])
    ap.add_argument('--lr', type=float, required=True)
    ap.add_argument('--clip-norm', type=float, default=0.0)
    ap.add_argument('--plateau-decay', type=float, default=1.0)
    ap.add_argument('--plateau-patience', type=int, default=0)
    ap.add_argument('--epochs', type=int, required=True)
    ap.add_argument('--eval-every', type=int, default=0, help='validate every N iterations [default: every epoch]')
    ap.add_argument('--expect-per-epoch', type=int, default=0, help='fail unless an epoch has this many windows')
    ap.add_argument('--val-frac', type=float, default=0.05)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    tokens = read_tokens(args.train)
    vocab = sorted(set(tokens) | {'<unk>'})
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[w] for w in tokens], dtype=torch.long)
    n_train = len(ids) - math.floor(len(ids) * args.val_frac)
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    test_ids = torch.tensor([index.get(w, index['<unk>']) for w in read_tokens(args.test)], dtype=torch.long)

    T, B = args.seq, args.batch
    segment = n_train // B
    per_epoch = (segment - 1) // T
    streams = train_ids[:segment * B].view(B, segment).t().contiguous()  # [segment, B]
    eval_every = args.eval_every or per_epoch
    if args.expect_per_epoch and per_epoch != args.expect_per_epoch:
        sys.exit(f'an epoch has {per_epoch} windows, not {args.expect_per_epoch}: the data differs from what was expected')

    model = CharnnModel({'model': {'cell': args.model, 'vocabSize': len(vocab), 'hidden': args.hidden, 'layers': args.layers,
                                   'embed': args.embed, 'dropout': args.dropout, 'tie': args.tie}})
    init_like_charnn(model, args.model, args.hidden)
    params = list(model.parameters())
    opt = {'sgd': lambda: torch.optim.SGD(params, lr=args.lr),
           'adagrad': lambda: torch.optim.Adagrad(params, lr=args.lr, eps=1e-8),
           'adam': lambda: torch.optim.Adam(params, lr=args.lr, eps=1e-8)}[args.optim]()

    val_B = min(B, len(val_ids) - 1)
    best, best_state, stalls, history = math.inf, None, 0, []
    lr = args.lr
    start = time.perf_counter()
    iteration = 0
    for epoch in range(args.epochs):
        state = None
        for w in range(per_epoch):
            model.train()
            x = streams[w * T:w * T + T]
            y = streams[w * T + 1:w * T + T + 1]
            logits, state = model(x, state)
            state = detach(state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction='sum') / B
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, args.clip_norm)
            opt.step()
            iteration += 1
            last = epoch == args.epochs - 1 and w == per_epoch - 1
            if iteration % eval_every == 0 or last:
                val = evaluate(model, val_ids, T, val_B)
                history.append([iteration, val])
                print(f'iter {iteration} | epoch {epoch + 1} | val loss {val:.4f} | lr {lr:.4g} | {time.perf_counter() - start:.0f} s', file=sys.stderr)
                if val < best:
                    best, stalls = val, 0
                    best_state = {k: v.clone() for k, v in model.state_dict().items()}
                elif args.plateau_decay < 1:
                    stalls += 1
                    if stalls > args.plateau_patience:
                        lr *= args.plateau_decay
                        stalls = 0
                        for g in opt.param_groups:
                            g['lr'] = lr
    train_seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    test = evaluate(model, test_ids, T, B)
    print(json.dumps({
        'peer': 'pytorch', 'torch': torch.__version__, 'threads': args.threads,
        'vocab': len(vocab), 'train_tokens': n_train, 'val_tokens': len(val_ids), 'test_tokens': len(test_ids),
        'iterations': iteration, 'train_seconds': round(train_seconds, 1),
        'best_val_loss': best, 'test_loss': test, 'test_ppl': math.exp(test), 'val_history': history,
    }))


if __name__ == '__main__':
    main()

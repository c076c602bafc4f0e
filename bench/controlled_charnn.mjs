// The charnn half of the controlled comparison with PyTorch (bench/controlled.sh): trains a fresh
// model for --steps iterations exactly as `charnn train` would, after writing its initial weights
// to --init (a charnn checkpoint, to be exported for the PyTorch replay), and prints the
// per-iteration training loss (nats per token, mean over the window) as one JSON line.
//
//   node bench/controlled_charnn.mjs CORPUS --init init.charnn --steps 500 [--optim adagrad]
//     [--lr X] [--clip 5] [--clip-norm 0] [--batch 50] [--seq 50] [--hidden 128] [--layers 2]
//     [--model lstm] [--seed 1] [--val-frac 0.1] [--backend auto] [--lr-schedule constant] [--warmup 0] [--lr-floor 0.1]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TrainingSession, defaultOptimizerConfig, selectBackend } from '../dist/index.js';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    init: { type: 'string' },
    steps: { type: 'string', default: '500' },
    optim: { type: 'string', default: 'adagrad' },
    lr: { type: 'string' },
    eps: { type: 'string' },
    clip: { type: 'string', default: '5' },
    'clip-norm': { type: 'string', default: '0' },
    batch: { type: 'string', default: '50' },
    seq: { type: 'string', default: '50' },
    hidden: { type: 'string', default: '128' },
    layers: { type: 'string', default: '2' },
    model: { type: 'string', default: 'lstm' },
    seed: { type: 'string', default: '1' },
    'val-frac': { type: 'string', default: '0.1' },
    backend: { type: 'string', default: 'auto' },
    'lr-schedule': { type: 'string', default: 'constant' },
    warmup: { type: 'string', default: '0' },
    'lr-floor': { type: 'string', default: '0.1' },
  },
});
const corpus = positionals[0];
if (!corpus || !o.init) throw new Error('usage: controlled_charnn.mjs CORPUS --init init.charnn [options]');
const optimizer = defaultOptimizerConfig(o.optim);
if (o.lr !== undefined) optimizer.lr = Number(o.lr);
if (o.eps !== undefined) optimizer.eps = Number(o.eps);
const steps = Number(o.steps);
const cacheDir = mkdtempSync(join(tmpdir(), 'charnn-controlled-'));
const { backend } = await selectBackend(o.backend, 'cpu');
const session = await TrainingSession.create({
  corpus,
  tokenizer: { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' },
  model: { cell: o.model, hidden: Number(o.hidden), layers: Number(o.layers), embed: 0, dropout: 0, tie: false },
  train: {
    batch: Number(o.batch),
    seq: Number(o.seq),
    optimizer,
    clip: Number(o.clip),
    clipNorm: Number(o['clip-norm']),
    lrDecay: 1,
    lrDecayEvery: 0,
    schedule: { kind: o['lr-schedule'], warmup: Number(o.warmup), floor: Number(o['lr-floor']) },
    seed: Number(o.seed),
    iters: steps,
    epochs: 0,
    timeSeconds: 0,
    evalEvery: 0,
    sampleLength: 0,
    saveEvery: 0,
    valFrac: Number(o['val-frac']),
  },
  out: o.init,
  cacheDir,
  backend,
});
await session.save('current'); // iteration 0: the initial weights
const losses = [];
let valLoss = NaN;
await session.trainer.run({
  step: (r) => losses.push(r.loss),
  eval: (r) => (valLoss = r.valLoss),
});
session.close();
rmSync(cacheDir, { recursive: true, force: true });
console.log(JSON.stringify({ trainer: 'charnn', backend: backend.name, optim: optimizer, losses, valLoss }));

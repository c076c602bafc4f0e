import { UsageError } from '../errors.js';
import type { OptimizerConfig } from './optimizer.js';

/** How to train: everything besides the model's shape and the data. Stored in checkpoints. */
export interface TrainConfig {
  /** Parallel streams per window (B); 1 is min-char-rnn. */
  batch: number;
  /** Truncated-BPTT window length (T). */
  seq: number;
  optimizer: OptimizerConfig;
  /** Elementwise gradient clip (min-char-rnn's 5); 0 = off. */
  clip: number;
  /** Global gradient-norm clip; 0 = off. */
  clipNorm: number;
  /** Multiply the learning rate by this ... */
  lrDecay: number;
  /** ... every this many iterations (0 = at every epoch end). */
  lrDecayEvery: number;
  seed: number;
  /** Stop after this many iterations / epochs / seconds (0 = no limit; at least one is set). */
  iters: number;
  epochs: number;
  timeSeconds: number;
  /** Validate (and print a sample) every this many iterations (0 = only at the end). */
  evalEvery: number;
  /** Tokens in the sample printed at each validation (0 = none). */
  sampleLength: number;
  /** Save a checkpoint every this many iterations (0 = only at the end and on interrupt). */
  saveEvery: number;
  /** Fraction of the corpus, at its end, held out for validation. */
  valFrac: number;
}

export function validateTrainConfig(c: TrainConfig): void {
  const positiveInts: Array<[string, number]> = [
    ['--batch', c.batch],
    ['--seq', c.seq],
  ];
  for (const [name, v] of positiveInts) {
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
  }
  const nonNegativeInts: Array<[string, number]> = [
    ['--iters', c.iters],
    ['--epochs', c.epochs],
    ['--eval-every', c.evalEvery],
    ['--save-every', c.saveEvery],
    ['--sample-length', c.sampleLength],
    ['--lr-decay-every', c.lrDecayEvery],
  ];
  for (const [name, v] of nonNegativeInts) {
    if (!Number.isInteger(v) || v < 0) throw new UsageError(`${name} must be a non-negative integer, got ${v}`);
  }
  const nonNegative: Array<[string, number]> = [
    ['--time', c.timeSeconds],
    ['--clip', c.clip],
    ['--clip-norm', c.clipNorm],
  ];
  for (const [name, v] of nonNegative) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new UsageError(`${name} must be a non-negative number, got ${v}`);
  }
  if (!(c.optimizer.lr > 0) || !Number.isFinite(c.optimizer.lr)) throw new UsageError(`--lr must be positive, got ${c.optimizer.lr}`);
  if (!(c.lrDecay > 0 && c.lrDecay <= 1)) throw new UsageError(`--lr-decay must be in (0, 1], got ${c.lrDecay}`);
  if (!(c.valFrac >= 0 && c.valFrac < 1)) throw new UsageError(`--val-frac must be in [0, 1), got ${c.valFrac}`);
  if (!Number.isInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) throw new UsageError(`--seed must be an integer in [0, 2^32), got ${c.seed}`);
}

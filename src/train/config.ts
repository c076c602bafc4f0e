import { UsageError } from '../errors.js';
import { requireNonNegativeInteger, requireNonNegativeNumber, requirePositiveInteger } from '../util/checks.js';
import type { OptimizerConfig } from './optimizer.js';
import { type LrSchedule, validateSchedule } from './schedule.js';

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
  /** Warm-up and decay of the learning rate over the run (see schedule.ts); absent (constant) in older files. */
  schedule?: LrSchedule;
  /** Multiply the learning rate by this ... */
  lrDecay: number;
  /** ... every this many iterations (0 = at every epoch end). */
  lrDecayEvery: number;
  /**
   * Multiply the learning rate by this when validation stops improving (1 = off) ... Absent
   * (off) in files written before it existed.
   */
  plateauDecay?: number;
  /** ... after this many validations in a row without a new best (0 = at the first). */
  plateauPatience?: number;
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
  /** Fraction of the corpus, at its end, held out for validation (0 with valFile). */
  valFrac: number;
  /**
   * Validate on this text file (read with the model's vocabulary, as `charnn eval` reads text)
   * instead of the corpus's tail; the whole corpus trains. Absent in files written before it
   * existed, and for runs that validate on the tail.
   */
  valFile?: string;
}

export function validateTrainConfig(c: TrainConfig): void {
  requirePositiveInteger('--batch', c.batch);
  requirePositiveInteger('--seq', c.seq);
  requireNonNegativeInteger('--iters', c.iters);
  requireNonNegativeInteger('--epochs', c.epochs);
  requireNonNegativeInteger('--eval-every', c.evalEvery);
  requireNonNegativeInteger('--save-every', c.saveEvery);
  requireNonNegativeInteger('--sample-length', c.sampleLength);
  requireNonNegativeInteger('--lr-decay-every', c.lrDecayEvery);
  requireNonNegativeNumber('--time', c.timeSeconds);
  requireNonNegativeNumber('--clip', c.clip);
  requireNonNegativeNumber('--clip-norm', c.clipNorm);
  if (!(c.optimizer.lr > 0) || !Number.isFinite(c.optimizer.lr)) throw new UsageError(`--lr must be positive, got ${c.optimizer.lr}`);
  if (!(c.lrDecay > 0 && c.lrDecay <= 1)) throw new UsageError(`--lr-decay must be in (0, 1], got ${c.lrDecay}`);
  const plateau = c.plateauDecay ?? 1;
  if (!(plateau > 0 && plateau <= 1)) throw new UsageError(`--plateau-decay must be in (0, 1], got ${plateau}`);
  requireNonNegativeInteger('--plateau-patience', c.plateauPatience ?? 0);
  if (c.schedule) validateSchedule(c.schedule);
  if (!(c.valFrac >= 0 && c.valFrac < 1)) throw new UsageError(`--val-frac must be in [0, 1), got ${c.valFrac}`);
  if (c.valFile !== undefined && c.valFrac > 0) throw valSourcesConflict();
  if (!Number.isInteger(c.seed) || c.seed < 0 || c.seed > 0xffffffff) throw new UsageError(`--seed must be an integer in [0, 2^32), got ${c.seed}`);
}

/** --val FILE and --val-frac both given: two ways to choose the validation data. */
export function valSourcesConflict(): UsageError {
  return new UsageError('--val and --val-frac cannot be used together', 'validate on a file of its own (--val FILE) or on the tail of the corpus (--val-frac F), not both');
}

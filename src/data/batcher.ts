import { CharnnError, UsageError } from '../errors.js';
import type { TokenReader } from './token-cache.js';

/** A stretch of a token sequence: [start, end). */
export type TokenRange = readonly [start: number, end: number];

/** Where a batcher stands, as saved in checkpoints: the window `next` returns next. */
export interface BatcherState {
  epoch: number;
  windowInEpoch: number;
}

export interface StreamBatcherOptions {
  /** The region [start, end) of the tokens to cover; default all of them. */
  start?: number;
  end?: number;
  /** B: parallel streams. */
  batch: number;
  /** T: time steps per window. */
  seq: number;
  /** What the region is, for error messages. */
  name?: string;
}

/**
 * Cuts a token region into B contiguous streams of floor(length / B) tokens and walks them in
 * lockstep, T steps per window, so that a model carrying hidden state from one window to the
 * next sees each stream as continuous text. A window reads T + 1 tokens per stream: inputs are
 * positions p .. p+T-1 and targets p+1 .. p+T. An epoch ends when a stream has no room for
 * another window; the next window starts the streams over, and the caller must reset carried
 * state then. With B = 1 this is exactly min-char-rnn's loop (p = 0 and hprev reset when
 * p + seq + 1 > len). The last (segment - 1) mod T targets of each stream and the
 * length mod B tokens at the region's end are never used.
 */
export class StreamBatcher {
  readonly batch: number;
  readonly seq: number;
  /** Tokens per stream. */
  readonly segmentLength: number;
  readonly windowsPerEpoch: number;
  private readonly start: number;
  private readonly stream: Int32Array;
  private position: BatcherState = { epoch: 0, windowInEpoch: 0 };

  constructor(
    private readonly tokens: TokenReader,
    options: StreamBatcherOptions,
  ) {
    const { batch, seq, name = 'the training data' } = options;
    const start = options.start ?? 0;
    const end = options.end ?? tokens.length;
    if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(seq) || seq < 1) throw new UsageError(`--seq must be a positive integer, got ${seq}`);
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= tokens.length)) {
      throw new RangeError(`region [${start}, ${end}) is not within the ${tokens.length} tokens`);
    }
    const needed = batch * (seq + 1);
    if (end - start < needed) {
      throw new CharnnError(
        `${name} has ${end - start} tokens, too few for --batch ${batch} × (--seq ${seq} + 1) = ${needed}`,
        'use a smaller --batch or --seq, or a larger corpus',
      );
    }
    this.batch = batch;
    this.seq = seq;
    this.start = start;
    this.segmentLength = Math.floor((end - start) / batch);
    this.windowsPerEpoch = Math.floor((this.segmentLength - 1) / seq);
    this.stream = new Int32Array(seq + 1);
  }

  get epoch(): number {
    return this.position.epoch;
  }

  /** Index within the epoch of the window `next` returns next. */
  get windowInEpoch(): number {
    return this.position.windowInEpoch;
  }

  /**
   * Fills the next window into time-major arrays of length T*B (element t*B + b is stream b at
   * step t) and returns true when it is the first window of an epoch, i.e. when the streams
   * start over and carried hidden state must be reset.
   */
  next(inputs: Int32Array, targets: Int32Array): boolean {
    const { batch, seq } = this;
    if (inputs.length !== seq * batch || targets.length !== seq * batch) {
      throw new RangeError(`window arrays must hold seq × batch = ${seq * batch} ids`);
    }
    const firstOfEpoch = this.position.windowInEpoch === 0;
    const offset = this.position.windowInEpoch * seq;
    for (let b = 0; b < batch; b++) {
      this.tokens.read(this.start + b * this.segmentLength + offset, seq + 1, this.stream);
      for (let t = 0; t < seq; t++) {
        inputs[t * batch + b] = this.stream[t]!;
        targets[t * batch + b] = this.stream[t + 1]!;
      }
    }
    if (++this.position.windowInEpoch === this.windowsPerEpoch) {
      this.position.epoch++;
      this.position.windowInEpoch = 0;
    }
    return firstOfEpoch;
  }

  state(): BatcherState {
    return { ...this.position };
  }

  /** Continues from a saved state, which must come from a batcher with the same region, batch and seq. */
  restore(state: BatcherState): void {
    const { epoch, windowInEpoch } = state;
    const valid =
      Number.isInteger(epoch) && epoch >= 0 && Number.isInteger(windowInEpoch) && windowInEpoch >= 0;
    if (!valid || windowInEpoch >= this.windowsPerEpoch) {
      throw new CharnnError(
        `cannot resume at window ${windowInEpoch} of epoch ${epoch}: an epoch here has ${this.windowsPerEpoch} windows`,
        'resume with the corpus, --batch, --seq and --val-frac the run started with',
      );
    }
    this.position = { epoch, windowInEpoch };
  }
}

/**
 * Splits `length` tokens into a training range [0, nTrain) and a validation range
 * [nTrain, length) holding the last floor(length × valFrac) tokens; valFrac 0 leaves the
 * validation range empty.
 */
export function splitTrainVal(length: number, valFrac: number): [train: TokenRange, validation: TokenRange] {
  if (!(valFrac >= 0 && valFrac < 1)) {
    throw new UsageError(`--val-frac must be at least 0 and below 1, got ${valFrac}`);
  }
  const nTrain = length - Math.floor(length * valFrac);
  return [
    [0, nTrain],
    [nTrain, length],
  ];
}

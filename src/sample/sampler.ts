import type { Model, WindowRunner } from '../model/model.js';
import { UsageError } from '../errors.js';
import type { Random } from '../util/random.js';

export interface SamplingOptions {
  /** Softmax temperature; 0 picks the most likely token (argmax). */
  temperature: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP: number;
}

export const DEFAULT_SAMPLING: SamplingOptions = { temperature: 1, topK: 0, topP: 1 };

export function validateSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new UsageError(`--temp must be >= 0, got ${o.temperature}`);
  if (!Number.isSafeInteger(o.topK) || o.topK < 0) throw new UsageError(`--top-k must be a non-negative integer, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${o.topP}`);
}

/**
 * Generates tokens one at a time from a model with batch 1, carrying state from token to token.
 * Feed a prime with `feed`, then call `next` repeatedly: each call picks a token from the
 * distribution after the last fed token and feeds it back.
 */
export class Sampler {
  private readonly runner: WindowRunner;
  private readonly probs;
  private readonly input = new Int32Array(1);
  private fed = false;

  constructor(readonly model: Model) {
    this.runner = model.runner(1, 1, { training: false });
    this.probs = model.backend.zeros([1, model.config.vocabSize]);
  }

  /** Condition on one more token. */
  feed(id: number): void {
    this.input[0] = id;
    this.runner.setWindow(this.input);
    this.runner.forward(false);
    this.fed = true;
  }

  /** Pick the next token (and feed it back). */
  async next(opts: SamplingOptions, rng: Random): Promise<number> {
    if (!this.fed) throw new Error('Sampler.next before any token was fed');
    const be = this.model.backend;
    let id: number;
    if (isArgmaxTemperature(opts.temperature)) {
      id = argmax(await be.read(this.runner.logits));
    } else {
      be.softmax(this.runner.logits, this.probs, opts.temperature);
      id = pick(await be.read(this.probs), opts, rng);
    }
    this.feed(id);
    return id;
  }
}

/**
 * Whether sampling at `temperature` is argmax. Backends divide logits by the temperature as a
 * float32 factor 1/T (the native addon and the GPU kernels do); below about 2.9e-39 that
 * factor overflows to Infinity and turns the softmax into NaN and garbage. Every T that small is
 * in the limit T -> 0 already (a float32 logit gap times 1/T is far beyond exp's range, so the
 * distribution is one-hot on the most likely token), so it is argmax on every backend, as 0 is.
 */
export function isArgmaxTemperature(temperature: number): boolean {
  return temperature === 0 || !Number.isFinite(Math.fround(1 / temperature));
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Draw from a probability vector after top-k / top-p truncation. */
export function pick(p: ArrayLike<number>, opts: SamplingOptions, rng: Random): number {
  const V = p.length;
  if (opts.topK === 1) return argmax(p);
  let ids: number[] | null = null;
  if ((opts.topK > 0 && opts.topK < V) || opts.topP < 1) {
    ids = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
    if (opts.topK > 0) ids.length = Math.min(ids.length, opts.topK);
    if (opts.topP < 1) {
      let acc = 0;
      let keep = 0;
      while (keep < ids.length && acc < opts.topP) acc += p[ids[keep++]];
      ids.length = Math.max(1, keep);
    }
  }
  const candidates = ids ?? null;
  let total = 0;
  if (candidates) for (const i of candidates) total += p[i];
  else for (let i = 0; i < V; i++) total += p[i];
  let u = rng.next() * total;
  if (candidates) {
    for (const i of candidates) {
      u -= p[i];
      if (u < 0) return i;
    }
    return candidates[candidates.length - 1];
  }
  for (let i = 0; i < V; i++) {
    u -= p[i];
    if (u < 0) return i;
  }
  return V - 1;
}

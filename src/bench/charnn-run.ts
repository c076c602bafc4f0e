import { join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import type { TokenizerConfig } from '../data/config.js';
import { type TrainConfig } from '../train/config.js';
import { defaultOptimizerConfig } from '../train/optimizer.js';
import { TrainingSession } from '../train/session.js';
import type { BenchConfig } from './configs.js';
import { flopsPerToken } from './flops.js';
import type { OpTimer } from './op-timer.js';
import { makeTempDir, removeTempDir } from '../util/temp-file.js';

export interface CharnnRunOptions {
  corpus: string;
  cacheDir: string;
  backend: Backend;
  /** Measured iterations (ignored when `seconds` > 0, which measures for that long instead). */
  iters: number;
  warmup: number;
  seconds: number;
  seed: number;
  /** Threads for this run, native or TypeScript (null = leave the pool as it is). */
  threads: number | null;
  /** Time every backend op of the measured iterations (`--profile`). */
  timer?: OpTimer;
}

export interface CharnnRunResult {
  /** Iterations measured (after warm-up) and the seconds they took. */
  iters: number;
  seconds: number;
  warmup: number;
  charsPerSecond: number;
  flopsPerChar: number;
  vocabSize: number;
  /** Mean loss of the last measured window, nats per char (a sanity check that it trained). */
  lastLoss: number;
  /** Threads used by the native pool or the TypeScript backend's GEMM (null on the gpu backend). */
  threads: number | null;
  /** With a timer: the per-op table of the measured iterations. */
  profile: string | null;
}

/** What a backend exposes to set its thread count (the native and TypeScript ones do). */
interface Threaded {
  setThreads(n: number): number;
  info: { threads: number };
}

function threaded(b: Backend): Threaded | null {
  const t = b as Partial<Threaded>;
  return typeof t.setThreads === 'function' && t.info ? (t as Threaded) : null;
}

/**
 * Train one configuration in this process, through the same TrainingSession and Trainer that
 * `charnn train` uses (no validation, samples or checkpoints), and time the measured
 * iterations: from the end of the last warm-up step to the end of the last step, so corpus
 * tokenization, model set-up and JIT warm-up stay outside the measurement.
 */
export async function runCharnn(cfg: BenchConfig, o: CharnnRunOptions): Promise<CharnnRunResult> {
  const tokenizer: TokenizerConfig = { level: 'char', invalidUtf8: 'replace', wordSplit: 'punct' };
  const optimizer = { ...defaultOptimizerConfig(cfg.optimizer), lr: cfg.lr };
  const byTime = o.seconds > 0;
  const train: TrainConfig = {
    batch: cfg.batch,
    seq: cfg.seq,
    optimizer,
    clip: cfg.clip,
    clipNorm: cfg.clipNorm,
    lrDecay: 1,
    lrDecayEvery: 0,
    seed: o.seed,
    // By time: a cap far beyond reach; the step observer stops the run.
    iters: o.warmup + (byTime ? 1e9 : o.iters),
    epochs: 0,
    timeSeconds: 0,
    evalEvery: 0,
    sampleLength: 0,
    saveEvery: 0,
    valFrac: 0,
  };
  // Nothing is saved (the observer has no `save`), but a session names an output path.
  const scratch = makeTempDir('charnn-bench-');
  const pool = threaded(o.backend);
  const threadsBefore = pool ? pool.info.threads : null;
  let session: TrainingSession | null = null;
  try {
    session = await TrainingSession.create({
      corpus: o.corpus,
      tokenizer,
      model: { cell: cfg.cell, hidden: cfg.hidden, layers: cfg.layers, embed: cfg.embed, dropout: 0 },
      train,
      out: join(scratch, 'bench.charnn'),
      cacheDir: o.cacheDir,
      backend: o.timer ? o.timer.wrap(o.backend) : o.backend,
    });
    const tr = session.trainer;
    if (pool && o.threads !== null) pool.setThreads(o.threads);
    const threads = pool ? (o.threads ?? threadsBefore) : null;
    const start = performance.now();
    let t0 = o.warmup === 0 ? start : NaN;
    if (o.timer) {
      o.timer.reset();
      o.timer.enabled = o.warmup === 0;
    }
    let tEnd = start;
    let last = 0;
    let lastLoss = NaN;
    await tr.run({
      step: (r) => {
        const now = performance.now();
        if (r.iteration === o.warmup) {
          t0 = now;
          if (o.timer) o.timer.enabled = true;
        }
        if (r.iteration > o.warmup) {
          tEnd = now;
          last = r.iteration;
          lastLoss = r.loss;
          if (byTime && (now - t0) / 1000 >= o.seconds) tr.requestStop('bench');
          if (o.timer && r.iteration === tr.config.iters) o.timer.enabled = false;
        }
      },
    });
    const iters = Math.max(0, last - o.warmup);
    const seconds = iters > 0 ? (tEnd - t0) / 1000 : 0;
    const vocabSize = tr.model.config.vocabSize;
    if (o.timer) o.timer.enabled = false;
    return {
      iters,
      seconds,
      warmup: o.warmup,
      charsPerSecond: seconds > 0 ? (iters * cfg.batch * cfg.seq) / seconds : 0,
      flopsPerChar: flopsPerToken(tr.model.config),
      vocabSize,
      lastLoss,
      threads,
      profile: o.timer && iters > 0 ? o.timer.format(tEnd - t0, iters) : null,
    };
  } finally {
    session?.close();
    if (pool && threadsBefore !== null) pool.setThreads(threadsBefore);
    removeTempDir(scratch);
  }
}

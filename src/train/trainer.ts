import type { Backend } from '../backend/backend.js';
import type { StreamBatcher } from '../data/batcher.js';
import type { TokenCache } from '../data/token-cache.js';
import type { Model, WindowRunner } from '../model/model.js';
import { ParamSet } from '../model/params.js';
import { Sampler } from '../sample/sampler.js';
import { Random } from '../util/random.js';
import type { TrainConfig } from './config.js';
import { evaluateRegion } from './evaluate.js';
import { Optimizer, clipGradients } from './optimizer.js';

/** The part of training that changes every iteration; all of it goes into checkpoints. */
export interface TrainState {
  iteration: number;
  epoch: number;
  /** Learning rate now (after decay). */
  lr: number;
  /** min-char-rnn's smoothed loss: EMA (0.999) of the window loss summed over T, averaged over B. */
  smoothLoss: number;
  bestValLoss: number;
  bestValIteration: number;
  tokensSeen: number;
  /** Training seconds, summed over every run that continued this one. */
  elapsedSeconds: number;
  rng: number[];
  history: { train: Array<[number, number]>; val: Array<[number, number]> };
}

export interface StepReport {
  iteration: number;
  epoch: number;
  /** Fractional epochs done. */
  progress: number;
  /** This window's mean loss, nats per token. */
  loss: number;
  smoothLoss: number;
  /** smoothLoss / T: nats per token. */
  smoothLossPerToken: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface EvalReport {
  iteration: number;
  valLoss: number;
  valTokens: number;
  best: boolean;
  sample: string;
}

export type StopReason = 'done' | 'interrupted' | 'diverged';

/** What the trainer tells the outside world (the CLI renders it; tests record it). */
export interface TrainObserver {
  step?(r: StepReport): void;
  eval?(r: EvalReport): void;
  /** A checkpoint is due; `best` marks a new best validation loss. Awaited before training goes on. */
  save?(why: 'periodic' | 'best' | 'final', trainer: Trainer): Promise<void>;
  diverged?(message: string): void;
}

export interface TrainerData {
  cache: TokenCache;
  batcher: StreamBatcher;
  /** Validation region [valStart, valEnd) of the cache; empty when valFrac is 0. */
  valStart: number;
  valEnd: number;
  /** Turns sampled ids back into text for the progress sample. */
  decode(ids: number[]): string;
  /** Token fed first when sampling without a prime. */
  sampleStartId: number;
}

/**
 * The training loop: truncated BPTT over B parallel streams with carried state, gradient
 * clipping, an optimizer step, periodic validation, samples and checkpoints. Everything it
 * needs to continue exactly (weights, optimizer slots, carried states, data positions, RNG)
 * is reachable from it, which is what checkpoints store.
 */
export class Trainer {
  readonly runner: WindowRunner;
  readonly grads: ParamSet;
  readonly rng: Random;
  private readonly inputs: Int32Array;
  private readonly targets: Int32Array;
  private stopRequested: string | null = null;

  constructor(
    readonly model: Model,
    readonly config: TrainConfig,
    readonly data: TrainerData,
    readonly optimizer: Optimizer,
    readonly state: TrainState,
  ) {
    const { seq: T, batch: B } = config;
    this.runner = model.runner(T, B, { training: true });
    this.grads = ParamSet.zeros(model.backend, model.params.specs);
    this.rng = new Random(state.rng);
    this.inputs = new Int32Array(T * B);
    this.targets = new Int32Array(T * B);
  }

  /** A trainer for a fresh model, its state at iteration 0. */
  static fresh(model: Model, config: TrainConfig, data: TrainerData): Trainer {
    const optimizer = new Optimizer(model.backend, config.optimizer, model.params);
    const state: TrainState = {
      iteration: 0,
      epoch: 0,
      lr: config.optimizer.lr,
      smoothLoss: -Math.log(1 / model.config.vocabSize) * config.seq,
      bestValLoss: Infinity,
      bestValIteration: 0,
      tokensSeen: 0,
      elapsedSeconds: 0,
      rng: new Random(config.seed ^ 0x5eed).state(),
      history: { train: [], val: [] },
    };
    return new Trainer(model, config, data, optimizer, state);
  }

  get backend(): Backend {
    return this.model.backend;
  }

  /** Ask the loop to stop after the current step (and save). Safe to call from a signal handler. */
  requestStop(why: string): void {
    this.stopRequested = why;
  }

  /** Train until a stop condition, an interrupt or divergence. */
  async run(observer: TrainObserver = {}): Promise<StopReason> {
    const c = this.config;
    const s = this.state;
    const T = c.seq;
    const B = c.batch;
    const startTime = performance.now();
    const startElapsed = s.elapsedSeconds;
    const startIteration = s.iteration;
    const itersPerEpoch = this.data.batcher.windowsPerEpoch;
    let lastYield = startTime;
    let lastTrainRecord = s.iteration;

    const elapsed = () => startElapsed + (performance.now() - startTime) / 1000;
    const finished = () =>
      (c.iters > 0 && s.iteration >= c.iters) ||
      (c.epochs > 0 && s.iteration >= c.epochs * itersPerEpoch) ||
      (c.timeSeconds > 0 && elapsed() - startElapsed >= c.timeSeconds);

    while (!finished()) {
      if (this.stopRequested) {
        s.elapsedSeconds = elapsed();
        await observer.save?.('final', this);
        return 'interrupted';
      }
      const newEpoch = this.data.batcher.next(this.inputs, this.targets);
      if (newEpoch && s.iteration > 0) {
        this.runner.resetState();
        s.epoch++;
        if (c.lrDecay < 1 && c.lrDecayEvery === 0) s.lr *= c.lrDecay;
      }
      this.runner.setWindow(this.inputs, this.targets);
      // The objective is min-char-rnn's: the loss summed over the window's T steps, averaged
      // over the B streams. Its scale matters: clip thresholds apply to this gradient, and with
      // a per-token mean instead, Adagrad's epsilon would swamp the small early gradients of Wh.
      this.runner.trainStep(this.grads, 1 / B, this.rng.nextU32());
      const losses = await this.backend.read(this.runner.losses);
      let sum = 0;
      for (let i = 0; i < losses.length; i++) sum += losses[i];
      if (!Number.isFinite(sum)) {
        const msg = `training diverged at iteration ${s.iteration + 1}: the loss is ${sum} (lower --lr, or clip with --clip / --clip-norm)`;
        observer.diverged?.(msg);
        return 'diverged';
      }
      const gradNorm = await clipGradients(this.backend, this.grads, c.clip, c.clipNorm);
      this.optimizer.update(this.model.params, this.grads, s.lr);
      s.iteration++;
      s.tokensSeen += T * B;
      const windowLoss = sum / B; // summed over T, as min-char-rnn prints
      s.smoothLoss = s.smoothLoss * 0.999 + windowLoss * 0.001;
      if (c.lrDecay < 1 && c.lrDecayEvery > 0 && s.iteration % c.lrDecayEvery === 0) s.lr *= c.lrDecay;

      const now = performance.now();
      const seconds = (now - startTime) / 1000;
      observer.step?.({
        iteration: s.iteration,
        epoch: s.epoch,
        progress: s.iteration / itersPerEpoch,
        loss: sum / (T * B),
        smoothLoss: s.smoothLoss,
        smoothLossPerToken: s.smoothLoss / T,
        lr: s.lr,
        gradNorm,
        tokensPerSecond: seconds > 0 ? ((s.iteration - startIteration) * T * B) / seconds : 0,
        elapsedSeconds: elapsed(),
      });
      if (s.iteration - lastTrainRecord >= Math.max(1, c.evalEvery || 100)) {
        s.history.train.push([s.iteration, s.smoothLoss / T]);
        lastTrainRecord = s.iteration;
      }
      if (c.evalEvery > 0 && s.iteration % c.evalEvery === 0 && !finished()) {
        s.elapsedSeconds = elapsed();
        await this.validate(observer);
      }
      if (c.saveEvery > 0 && s.iteration % c.saveEvery === 0) {
        s.elapsedSeconds = elapsed();
        await observer.save?.('periodic', this);
      }
      // Let signal handlers and timers run: every await above may resolve without yielding to
      // the event loop, which would leave Ctrl-C unnoticed until training ends.
      if (now - lastYield > 50) {
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
    s.elapsedSeconds = elapsed();
    if (s.history.train.at(-1)?.[0] !== s.iteration) s.history.train.push([s.iteration, s.smoothLoss / T]);
    await this.validate(observer);
    await observer.save?.('final', this);
    return 'done';
  }

  /** Validation loss and a short sample, reported to the observer; saves a best checkpoint. */
  async validate(observer: TrainObserver): Promise<EvalReport | null> {
    const s = this.state;
    const { valStart, valEnd, cache } = this.data;
    let valLoss = NaN;
    let valTokens = 0;
    if (valEnd - valStart > 1) {
      const r = await evaluateRegion(this.model, cache, valStart, valEnd, this.config.seq, Math.min(this.config.batch, valEnd - valStart - 1));
      valLoss = r.loss;
      valTokens = r.tokens;
    }
    const best = Number.isFinite(valLoss) && valLoss < s.bestValLoss;
    if (best) {
      s.bestValLoss = valLoss;
      s.bestValIteration = s.iteration;
    }
    if (Number.isFinite(valLoss)) s.history.val.push([s.iteration, valLoss]);
    const sample = this.config.sampleLength > 0 ? await this.sample(this.config.sampleLength) : '';
    const report: EvalReport = { iteration: s.iteration, valLoss, valTokens, best, sample };
    observer.eval?.(report);
    if (best) await observer.save?.('best', this);
    return report;
  }

  /** A short sample at temperature 1, from its own RNG so it does not disturb training's. */
  private async sample(length: number): Promise<string> {
    const sampler = new Sampler(this.model);
    const rng = new Random((this.config.seed + this.state.iteration) >>> 0);
    sampler.feed(this.data.sampleStartId);
    const ids: number[] = [];
    for (let i = 0; i < length; i++) ids.push(await sampler.next({ temperature: 1, topK: 0, topP: 1 }, rng));
    return this.data.decode(ids);
  }
}


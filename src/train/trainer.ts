import type { Backend } from '../backend/backend.js';
import type { StreamBatcher } from '../data/batcher.js';
import type { TokenReader } from '../data/token-cache.js';
import type { Model, WindowRunner } from '../model/model.js';
import type { ParamSet } from '../model/params.js';
import { Sampler } from '../sample/sampler.js';
import { Random } from '../util/random.js';
import type { TrainConfig } from './config.js';
import { evaluateRegion } from './evaluate.js';
import { Optimizer, clipGradients, updatesRowsIndependently } from './optimizer.js';
import { CONSTANT_SCHEDULE, estimateHorizon, scheduleFactor } from './schedule.js';

/** The part of training that changes every iteration; all of it goes into checkpoints. */
export interface TrainState {
  iteration: number;
  epoch: number;
  /** The base learning rate now (after --lr-decay and --plateau-decay steps); each update uses it times the schedule's factor. */
  lr: number;
  /**
   * A time-limited run's schedule horizon: the update at which its decay ends, estimated from
   * its pace early on and kept from then on (so a resumed run goes on with the same schedule).
   * Absent until estimated, and in files written before schedules existed.
   */
  scheduleEnd?: number;
  /** min-char-rnn's smoothed loss: EMA (0.999) of the window loss summed over T, averaged over B. */
  smoothLoss: number;
  bestValLoss: number;
  bestValIteration: number;
  /** Validations in a row that did not improve on bestValLoss (for --plateau-decay). */
  evalsWithoutImprovement?: number;
  tokensSeen: number;
  /** Training seconds, summed over every run that continued this one. */
  elapsedSeconds: number;
  /** The training RNG (dropout masks), as of the last completed iteration. */
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
  /** The learning rate this update used (the base rate times the schedule's factor). */
  lr: number;
  gradNorm: number;
  /** Tokens per second in this invocation (a resumed run counts from where it resumed). */
  tokensPerSecond: number;
  /** Training seconds over the whole run, every resumed part included. */
  elapsedSeconds: number;
  /** Seconds since this invocation's `run` started: what --time limits. */
  runSeconds: number;
}

export interface EvalReport {
  iteration: number;
  valLoss: number;
  valTokens: number;
  best: boolean;
  sample: string;
}

export type StopReason = 'done' | 'interrupted' | 'diverged';

/** Why and where training diverged (the observer's second argument). */
export interface Divergence {
  /** The iteration whose window showed it (1-based, as progress lines count). */
  iteration: number;
  /** What was seen, e.g. "the loss is NaN". */
  why: string;
  /** What to try instead. */
  hint: string;
}

/**
 * The 'exploding' rule: a run whose window loss stays above EXPLODING_FACTOR times the loss of
 * uniform guessing, ln V nats per token (taken as at least 1 nat, so tiny vocabularies get room),
 * for EXPLODING_WINDOWS consecutive iterations has left any useful region and is stopped as
 * diverged. A fresh model starts at about ln V; a healthy run may spike above it, but a model
 * that puts, on average over a whole window, V^-4 probability on the right token ten windows
 * in a row has blown up.
 */
export const EXPLODING_FACTOR = 4;
export const EXPLODING_WINDOWS = 10;

/** Per-token window loss above which a window counts towards the exploding rule. */
export function explodingThreshold(vocabSize: number): number {
  return EXPLODING_FACTOR * Math.max(Math.log(vocabSize), 1);
}

const DIVERGED_HINT = 'lower --lr, or clip with --clip / --clip-norm';

/** What the trainer tells the outside world (the CLI renders it; tests record it). */
export interface TrainObserver {
  step?(r: StepReport): void;
  eval?(r: EvalReport): void;
  /** A checkpoint is due; `best` marks a new best validation loss. Awaited before training goes on. */
  save?(why: 'periodic' | 'best' | 'final', trainer: Trainer): Promise<void>;
  /** Training stopped on divergence: `message` is the whole story in one line, `d` its parts. */
  diverged?(message: string, d: Divergence): void;
}

export interface TrainerData {
  /** The corpus's token ids, in the model's vocabulary. */
  cache: TokenReader;
  batcher: StreamBatcher;
  /** Validation region [valStart, valEnd) of `valReader`; empty when there is no validation. */
  valStart: number;
  valEnd: number;
  /** Where validation reads: a text of its own (--val FILE), or when absent the corpus (`cache`). */
  valReader?: TokenReader;
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
    this.runner = model.runner(T, B, { training: true, sparseEmbeddingGrad: updatesRowsIndependently(config.optimizer.name) });
    this.grads = this.runner.gradients();
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

  /**
   * The update at which the learning-rate schedule's decay ends: the run's --iters or --epochs
   * (the nearer), or for a --time run the estimated `scheduleEnd`; null while unknown.
   */
  scheduleHorizon(): number | null {
    const c = this.config;
    const ends: number[] = [];
    if (c.iters > 0) ends.push(c.iters);
    if (c.epochs > 0) ends.push(c.epochs * this.data.batcher.windowsPerEpoch);
    if (c.timeSeconds > 0 && this.state.scheduleEnd !== undefined) ends.push(this.state.scheduleEnd);
    return ends.length > 0 ? Math.min(...ends) : null;
  }

  /** Whether --iters or --epochs is already reached (so `run` would only validate and save). */
  reachedStop(): boolean {
    const c = this.config;
    const s = this.state;
    return (c.iters > 0 && s.iteration >= c.iters) || (c.epochs > 0 && s.iteration >= c.epochs * this.data.batcher.windowsPerEpoch);
  }

  /** Ask the loop to stop after the current step (and save). Safe to call from a signal handler. */
  requestStop(why: string): void {
    this.stopRequested = why;
  }

  /**
   * Train until a stop condition, an interrupt or divergence. Continues from `state`, so a
   * trainer rebuilt from a checkpoint goes on exactly as the run that wrote it would have:
   * nothing here depends on where an invocation started except --time and tokens/s.
   */
  async run(observer: TrainObserver = {}): Promise<StopReason> {
    const c = this.config;
    const s = this.state;
    const T = c.seq;
    const B = c.batch;
    const startTime = performance.now();
    const startElapsed = s.elapsedSeconds;
    const startIteration = s.iteration;
    const itersPerEpoch = this.data.batcher.windowsPerEpoch;
    const historyEvery = Math.max(1, c.evalEvery || 100);
    const threshold = explodingThreshold(this.model.config.vocabSize);
    let lastYield = startTime;
    // Windows in a row above the exploding threshold, and a periodic save held back meanwhile
    // (so the checkpoint on disk is always one from before the trouble started).
    let hot = 0;
    let savePending = false;
    const schedule = c.schedule ?? CONSTANT_SCHEDULE;
    let horizon = this.scheduleHorizon();
    // A --time run learns its horizon from its pace, once a few updates and 3% of the budget
    // have gone by (the first updates include warm-up costs that would skew the rate).
    const estimating = () => schedule.kind !== 'constant' && c.timeSeconds > 0 && s.scheduleEnd === undefined;

    const runSeconds = () => (performance.now() - startTime) / 1000;
    const elapsed = () => startElapsed + runSeconds();
    const finished = () => this.reachedStop() || (c.timeSeconds > 0 && runSeconds() >= c.timeSeconds);
    const diverge = (iteration: number, why: string): StopReason => {
      const d: Divergence = { iteration, why, hint: DIVERGED_HINT };
      s.elapsedSeconds = elapsed();
      observer.diverged?.(`training diverged at iteration ${d.iteration}: ${d.why} (${d.hint})`, d);
      return 'diverged';
    };

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
      const grads = this.runner.trainStep(this.grads, 1 / B, this.rng.nextU32());
      const losses = await this.backend.read(this.runner.losses);
      let sum = 0;
      for (let i = 0; i < losses.length; i++) sum += losses[i];
      // NaN or infinity: stop before the update, which would spread it into every weight.
      if (!Number.isFinite(sum)) return diverge(s.iteration + 1, `the loss is ${sum}`);
      const gradNorm = await clipGradients(this.backend, grads, c.clip, c.clipNorm);
      if (estimating() && s.iteration - startIteration >= 10 && runSeconds() >= 0.03 * c.timeSeconds) {
        s.scheduleEnd = estimateHorizon(s.iteration, s.iteration - startIteration, runSeconds(), c.timeSeconds);
        horizon = this.scheduleHorizon();
      }
      const lr = s.lr * scheduleFactor(schedule, s.iteration + 1, horizon);
      this.optimizer.update(this.model.params, grads, lr);
      s.iteration++;
      s.tokensSeen += T * B;
      s.rng = this.rng.state();
      const windowLoss = sum / B; // summed over T, as min-char-rnn prints
      const tokenLoss = sum / (T * B);
      s.smoothLoss = s.smoothLoss * 0.999 + windowLoss * 0.001;
      if (c.lrDecay < 1 && c.lrDecayEvery > 0 && s.iteration % c.lrDecayEvery === 0) s.lr *= c.lrDecay;

      hot = tokenLoss > threshold ? hot + 1 : 0;
      if (hot >= EXPLODING_WINDOWS) {
        return diverge(
          s.iteration,
          `the loss has exploded: above ${threshold.toFixed(2)} nats per token (${EXPLODING_FACTOR} × ln V) ` +
            `for ${EXPLODING_WINDOWS} iterations in a row, ${tokenLoss.toFixed(2)} now`,
        );
      }

      const now = performance.now();
      const seconds = (now - startTime) / 1000;
      observer.step?.({
        iteration: s.iteration,
        epoch: s.epoch,
        progress: s.iteration / itersPerEpoch,
        loss: tokenLoss,
        smoothLoss: s.smoothLoss,
        smoothLossPerToken: s.smoothLoss / T,
        lr,
        gradNorm,
        tokensPerSecond: seconds > 0 ? ((s.iteration - startIteration) * T * B) / seconds : 0,
        elapsedSeconds: startElapsed + seconds,
        runSeconds: seconds,
      });
      // At fixed iterations, so that a resumed run records the same history as an unbroken one.
      if (s.iteration % historyEvery === 0) s.history.train.push([s.iteration, s.smoothLoss / T]);
      if (c.evalEvery > 0 && s.iteration % c.evalEvery === 0 && !finished()) {
        s.elapsedSeconds = elapsed();
        await this.validate(observer);
      }
      if (c.saveEvery > 0 && s.iteration % c.saveEvery === 0) savePending = true;
      if (savePending && hot === 0) {
        savePending = false;
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
    const { valStart, valEnd, cache, valReader = cache } = this.data;
    let valLoss = NaN;
    let valTokens = 0;
    if (valEnd - valStart > 1) {
      const r = await evaluateRegion(this.model, valReader, valStart, valEnd, this.config.seq, Math.min(this.config.batch, valEnd - valStart - 1));
      valLoss = r.loss;
      valTokens = r.tokens;
    }
    const best = Number.isFinite(valLoss) && valLoss < s.bestValLoss;
    if (best) {
      s.bestValLoss = valLoss;
      s.bestValIteration = s.iteration;
      s.evalsWithoutImprovement = 0;
    } else if (Number.isFinite(valLoss)) {
      this.onPlateau();
    }
    if (Number.isFinite(valLoss)) s.history.val.push([s.iteration, valLoss]);
    const sample = this.config.sampleLength > 0 ? await this.sample(this.config.sampleLength) : '';
    const report: EvalReport = { iteration: s.iteration, valLoss, valTokens, best, sample };
    observer.eval?.(report);
    if (best) await observer.save?.('best', this);
    return report;
  }

  /**
   * A validation that did not improve: after more than --plateau-patience of them in a row,
   * multiply the learning rate by --plateau-decay (as PyTorch's word_language_model divides
   * it by 4 whenever validation stalls).
   */
  private onPlateau(): void {
    const s = this.state;
    const decay = this.config.plateauDecay ?? 1;
    if (decay >= 1) return;
    s.evalsWithoutImprovement = (s.evalsWithoutImprovement ?? 0) + 1;
    if (s.evalsWithoutImprovement > (this.config.plateauPatience ?? 0)) {
      s.lr *= decay;
      s.evalsWithoutImprovement = 0;
    }
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


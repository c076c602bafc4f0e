import cliProgress from 'cli-progress';
import type { EvalReport, StepReport, TrainObserver } from '../train/trainer.js';

export interface ProgressOptions {
  quiet: boolean;
  json: boolean;
  /** Plain (non-TTY) mode: a line every this many iterations. */
  printEvery: number;
  /** Iterations the run will take, when known (for the bar and ETA). */
  totalIterations: number | null;
  /** Seconds the run may take (--time), when set. */
  totalSeconds: number | null;
  /** Window length T, to print min-char-rnn's summed loss beside the per-token one. */
  seq: number;
  /** Iteration the run starts from (a resumed run's bar starts where it stopped). */
  startIteration?: number;
}

/** A log line on stderr that does not tear an animated bar. */
export type LogFn = (line: string) => void;

/**
 * Renders training feedback on stderr: an animated cli-progress bar when stderr is a TTY,
 * otherwise a plain line every `printEvery` iterations; JSON lines with --log-json; nothing
 * but errors with --quiet.
 */
export class TrainProgress implements Pick<TrainObserver, 'step' | 'eval' | 'diverged'> {
  private readonly multibar: cliProgress.MultiBar | null = null;
  private readonly bar: cliProgress.SingleBar | null = null;
  private last: StepReport | null = null;
  /** Window losses since the last printed line: what the line reports as "loss". */
  private recentSum = 0;
  private recentCount = 0;

  constructor(private readonly o: ProgressOptions) {
    const animated = !o.quiet && !o.json && process.stderr.isTTY === true;
    if (animated) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: ' {bar} {percentage}% | iter {iteration} | epoch {epoch} | loss {loss} | {speed} tok/s | ETA {eta_formatted}',
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      const start = o.totalIterations ? Math.min(o.startIteration ?? 0, o.totalIterations) : 0;
      this.bar = this.multibar.create(o.totalIterations ?? Math.max(1, Math.round(o.totalSeconds ?? 1)), start, this.payload(null));
    }
  }

  private payload(r: StepReport | null): Record<string, string> {
    return {
      iteration: r ? String(r.iteration) : String(this.o.startIteration ?? 0),
      epoch: r ? r.progress.toFixed(2) : '0.00',
      loss: r ? r.smoothLossPerToken.toFixed(4) : '-',
      speed: r ? Math.round(r.tokensPerSecond).toLocaleString('en-US') : '-',
    };
  }

  /** Write a message line (above the bar when animated). */
  readonly log: LogFn = (line: string) => {
    if (this.o.quiet) return;
    if (this.o.json) return this.json({ event: 'log', message: line });
    if (this.multibar) this.multibar.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  };

  private json(obj: Record<string, unknown>): void {
    process.stderr.write(`${JSON.stringify(obj)}\n`);
  }

  step(r: StepReport): void {
    this.last = r;
    this.recentSum += r.loss;
    this.recentCount++;
    if (this.o.quiet) return;
    if (this.bar) {
      // --time limits this invocation, so a time bar shows its seconds, not the whole run's.
      const value = this.o.totalIterations ? r.iteration : Math.min(r.runSeconds, this.o.totalSeconds ?? r.runSeconds);
      this.bar.update(Math.round(value), this.payload(r));
      return;
    }
    if (r.iteration % this.o.printEvery !== 0) return;
    const recent = this.recentSum / this.recentCount;
    this.recentSum = 0;
    this.recentCount = 0;
    if (this.o.json) {
      this.json({ event: 'step', ...r, recentLoss: recent });
      return;
    }
    // "loss": mean nats per token over the windows since the last line. "smooth": min-char-rnn's
    // slow EMA of the loss summed over a window of T tokens, comparable with its printout.
    process.stderr.write(
      `iter ${r.iteration} | epoch ${r.progress.toFixed(2)} | loss ${recent.toFixed(4)} | ` +
        `smooth ${r.smoothLoss.toFixed(3)} per ${this.o.seq} | lr ${r.lr.toPrecision(3)} | ` +
        `${Math.round(r.tokensPerSecond)} tok/s | ${formatSeconds(r.elapsedSeconds)}\n`,
    );
  }

  eval(r: EvalReport): void {
    if (this.o.quiet) return;
    if (this.o.json) {
      this.json({ event: 'eval', ...r });
      return;
    }
    const val = Number.isFinite(r.valLoss) ? `val loss ${r.valLoss.toFixed(4)} nats/token over ${r.valTokens} tokens${r.best ? ' (best)' : ''}` : 'no validation data';
    const sample = r.sample ? `\n----\n${r.sample}\n----` : '';
    this.log(`iter ${r.iteration} | ${val}${sample}`);
  }

  /** Print the divergence line (`message`, without the `charnn: ` prefix) after stopping the bar. */
  diverged(message: string): void {
    this.stop();
    process.stderr.write(`charnn: ${message}\n`);
  }

  /** Stop animating (before the final summary). */
  stop(): void {
    this.multibar?.stop();
  }

  get lastStep(): StepReport | null {
    return this.last;
  }
}

function formatSeconds(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

import { removeAllOwnTempFiles, removeOwnTempFiles } from '../util/temp-file.js';
import { EXIT } from './exit-codes.js';

/** The exit code of a run stopped by `signal` after it saved. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
}

/**
 * Ctrl-C and SIGTERM for a long run that saves files. Listening starts when the run starts:
 * until `arm` (while the options are checked and the corpus is read and tokenized), a signal
 * exits at once (130 or 143) after removing the temp files this process named (a token cache
 * being built). Once armed, the first signal asks the run to stop at the end of its step
 * (`requestStop`, after `announce` has said so); a second exits at once after removing this
 * process's temp files (beside `outputs`, and any other it named), leaving each output as it
 * was (its writes are atomic, so it is whole).
 */
export class StopSignals {
  private received: NodeJS.Signals | null = null;
  private outputs: readonly string[] = [];
  private stopper: { announce: (signal: NodeJS.Signals) => void; requestStop: (signal: NodeJS.Signals) => void } | null = null;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.received || !this.stopper) {
      for (const path of this.outputs) removeOwnTempFiles(path);
      removeAllOwnTempFiles();
      process.exit(signalExitCode(signal));
    }
    this.received = signal;
    this.stopper.announce(signal);
    this.stopper.requestStop(signal);
  };

  constructor() {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** From now on the first signal stops the run at the end of its step, which then saves `outputs`. */
  arm(outputs: readonly string[], announce: (signal: NodeJS.Signals) => void, requestStop: (signal: NodeJS.Signals) => void): void {
    this.outputs = outputs;
    this.stopper = { announce, requestStop };
  }

  /** The first signal received after `arm`, if any. */
  get signal(): NodeJS.Signals | null {
    return this.received;
  }

  /** Stop listening (the run is over). */
  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

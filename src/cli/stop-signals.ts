import { removeOwnTempFiles } from '../util/temp-file.js';
import { EXIT } from './exit-codes.js';

/** The exit code of a run stopped by `signal` after it saved. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
}

/**
 * Ctrl-C and SIGTERM for a long run that saves files: the first signal asks the run to stop at
 * the end of its step (`requestStop`, after `announce` has said so); a second exits at once
 * (130 or 143) after removing this process's temp files beside `outputs`, leaving each output as
 * it was (its writes are atomic, so it is whole).
 */
export class StopSignals {
  private received: NodeJS.Signals | null = null;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.received) {
      for (const path of this.outputs) removeOwnTempFiles(path);
      process.exit(signalExitCode(signal));
    }
    this.received = signal;
    this.announce(signal);
    this.requestStop(signal);
  };

  constructor(
    private readonly outputs: readonly string[],
    private readonly announce: (signal: NodeJS.Signals) => void,
    private readonly requestStop: (signal: NodeJS.Signals) => void,
  ) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** The first signal received, if any. */
  get signal(): NodeJS.Signals | null {
    return this.received;
  }

  /** Stop listening (the run is over). */
  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

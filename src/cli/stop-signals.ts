import { removeAllOwnTempFiles } from '../util/temp-file.js';
import { EXIT } from './exit-codes.js';

/** The exit code of a run stopped by `signal` after it saved. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted;
}

/**
 * Ctrl-C and SIGTERM, for every command (main installs the one instance, stopSignals()). Until a
 * run arms it, a signal exits at once (130 or 143) after removing the temp files and
 * directories this process named (a token cache being built, the ids of a text eval reads, a
 * checkpoint being written): a command cut short leaves nothing behind. Once `arm`ed by a long
 * run that saves, the first signal asks the run to stop at the end of its step (`requestStop`,
 * after `announce` has said so); a second exits at once after removing this process's temp
 * files (every writer names them through util/temp-file.ts, checkpoints' included), leaving each
 * output as it was (its writes are atomic, so it is whole).
 */
export class StopSignals {
  private received: NodeJS.Signals | null = null;
  private stopper: { announce: (signal: NodeJS.Signals) => void; requestStop: (signal: NodeJS.Signals) => void } | null = null;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.received || !this.stopper) {
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

  /** From now on the first signal stops the run at the end of its step, which then saves. */
  arm(announce: (signal: NodeJS.Signals) => void, requestStop: (signal: NodeJS.Signals) => void): void {
    this.stopper = { announce, requestStop };
    this.received = null;
  }

  /** Back to exiting at once on a signal (the run is over). */
  disarm(): void {
    this.stopper = null;
    this.received = null;
  }

  /** The first signal received since `arm`, if any. */
  get signal(): NodeJS.Signals | null {
    return this.received;
  }

  /** Stop listening: signals have their default effect again. */
  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
    if (installed === this) installed = null;
  }
}

let installed: StopSignals | null = null;

/** The process's StopSignals, listening from the first call on. */
export function stopSignals(): StopSignals {
  return (installed ??= new StopSignals());
}

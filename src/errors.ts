/**
 * Errors a user can act on. The CLI prints them as one line, `charnn: <message> (<hint>)`,
 * and exits with `exitCode`; any other exception is a bug and shows its stack only with
 * CHARNN_DEBUG=1.
 */
export class CharnnError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** 1 = runtime failure, 2 = usage error (bad option or input the user chose). */
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'CharnnError';
  }
}

/** A bad option value or a combination of options that cannot work. */
export class UsageError extends CharnnError {
  constructor(message: string, hint?: string) {
    super(message, hint, 2);
    this.name = 'UsageError';
  }
}

/** charnn's exit codes (the README has the same table). */
export const EXIT = {
  ok: 0,
  /** Runtime failure: unreadable input, a bad checkpoint, divergence, a full disk. */
  failure: 1,
  /** Usage error: unknown option, bad value. */
  usage: 2,
  /** Stopped by SIGINT (Ctrl-C) after saving. */
  interrupted: 130,
  /** Stopped by SIGTERM after saving. */
  terminated: 143,
} as const;

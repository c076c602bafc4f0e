import { closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { CharnnError } from '../errors.js';

/** Where a command's data goes: stdout (`-` or no path) or a file; messages never go here. */
export interface DataOut {
  /** `stdout` or the path. */
  readonly name: string;
  write(data: string | Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** stdout (waiting for the pipe to drain, so memory stays flat) or a file written in order. */
export function openDataOut(path: string | undefined): DataOut {
  if (path === undefined || path === '-') {
    return {
      name: 'stdout',
      async write(data) {
        if (!process.stdout.write(data)) await new Promise((r) => process.stdout.once('drain', r));
      },
      async close() {},
    };
  }
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (err) {
    throw fileError(path, err);
  }
  return {
    name: path,
    async write(data) {
      try {
        writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      } catch (err) {
        throw fileError(path, err);
      }
    },
    async close() {
      closeSync(fd);
    },
  };
}

/** Creates (if needed) a directory for a dump's files; a path that is a file is an error. */
export function ensureDirectory(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    throw fileError(path, err);
  }
  if (!statSync(path).isDirectory()) throw new CharnnError(`${path} is not a directory`, 'pass a directory for --out');
}

export function fileError(path: string, err: unknown): CharnnError {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return new CharnnError(`cannot write ${path}: its directory does not exist`, 'create the directory first');
    case 'EACCES':
    case 'EPERM':
      return new CharnnError(`cannot write ${path}: permission denied`, 'choose another --out');
    case 'ENOSPC':
      return new CharnnError(`cannot write ${path}: the disk is full`);
    case 'EEXIST':
    case 'ENOTDIR':
      return new CharnnError(`cannot write ${path}: a file is in the way`, 'choose another --out');
    default:
      return new CharnnError(`cannot write ${path}: ${e.message}`);
  }
}

/**
 * The shortest decimal that reads back as the same float32 (so JSON stays small and exact);
 * non-finite values become null.
 */
export function formatF32(v: number): string {
  if (!Number.isFinite(v)) return 'null';
  if (v === 0) return '0';
  for (let p = 6; p < 9; p++) {
    const n = Number(v.toPrecision(p));
    if (Math.fround(n) === v) return String(n);
  }
  return String(Number(v.toPrecision(9)));
}

/** A float32 vector as a JSON array. */
export function f32ArrayJSON(a: ArrayLike<number>, start: number, end: number): string {
  let s = '[';
  for (let i = start; i < end; i++) {
    if (i > start) s += ',';
    s += formatF32(a[i]);
  }
  return s + ']';
}

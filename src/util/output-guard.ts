import { closeSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { MAGIC, startsLikeMagic } from '../checkpoint/format.js';
import { CharnnError, UsageError } from '../errors.js';

/**
 * The one check every command runs on the files it is about to write, before it writes (or
 * reads) anything: an output must not be one of the command's inputs (its text, a checkpoint
 * or safetensors file it reads, a description or prime file), compared by file identity
 * (device and inode, after symlinks) so that `./x`, a symlink or a hard link to an input is
 * caught; and an existing output must be a file of the kind the command writes (a previous
 * checkpoint, dump, page...), never someone's notes that a slip of `-o` named.
 */

/** What a command writes, each with a test that recognises an earlier file of the same kind. */
export const OUTPUT_KINDS = {
  checkpoint: { noun: 'a charnn checkpoint', test: (head: Buffer) => head.length >= MAGIC.length && startsLikeMagic(head) },
  safetensors: { noun: 'a safetensors file', test: (head: Buffer) => head.length > 8 && head[8] === 0x7b /* { */ },
  'torch-description': { noun: 'a charnn export description', test: (head: Buffer) => /"kind":\s*"charnn-torch"/.test(head.toString('utf8')) },
  jsonl: { noun: 'a charnn dump (JSON lines)', test: (head: Buffer) => head.toString('utf8').startsWith('{"t":') },
  html: { noun: 'a charnn dump page', test: (head: Buffer) => /^<!doctype html>[^]*<title>charnn: /i.test(head.toString('utf8')) },
  svg: { noun: 'a charnn loss plot', test: (head: Buffer) => /^<svg[^]*loss \(nats\/token\)/.test(head.toString('utf8')) },
  npy: { noun: 'a NumPy file', test: (head: Buffer) => head.subarray(0, 6).equals(Buffer.from('\x93NUMPY', 'latin1')) },
  'npy-manifest': { noun: 'a charnn dump manifest', test: (head: Buffer) => /"kind":\s*"charnn-dump"/.test(head.toString('utf8')) },
  hdf5: { noun: 'an HDF5 file', test: (head: Buffer) => head.subarray(0, 8).equals(Buffer.from('\x89HDF\r\n\x1a\n', 'latin1')) },
  'lstmvis-dict': { noun: 'an LSTMVis dictionary', test: (head: Buffer) => /^[^\n]* \d+\n/.test(head.toString('utf8')) },
  'lstmvis-config': { noun: 'a charnn LSTMVis project file', test: (head: Buffer) => head.toString('utf8').startsWith('# LSTMVis project written by charnn') },
  /** A folder of outputs (dump --format npy or lstmvis): its files are guarded one by one. */
  directory: { noun: 'a directory', test: () => false },
} as const;

export type OutputKind = keyof typeof OUTPUT_KINDS;

export interface GuardedInput {
  /** A path as given; `-` (stdin) and undefined are skipped. */
  path: string | undefined;
  /** What it is to the command, for messages: `corpus`, `model`, `text`, `prime file`... */
  role: string;
}

export interface GuardedOutput {
  /** A path as given; `-` (stdout) and undefined are skipped. */
  path: string | undefined;
  kind: OutputKind;
  /** An input this output replaces by design (train --resume writes back to the checkpoint it continues). */
  replaces?: string;
}

/** Bytes read from an existing output to recognise its kind. */
const SNIFF_BYTES = 1024;

/**
 * Refuses, in one line, to write any of `outputs` when it is one of `inputs` (usage error, exit
 * 2) or an existing non-empty file of another kind than it would become (exit 1). Call it before
 * anything is written. A missing output, or one that cannot be statted, is left to the writer.
 *
 * @param command the command's name, for messages (`dump`, `export`...)
 */
export function guardOutputs(command: string, inputs: readonly GuardedInput[], outputs: readonly GuardedOutput[]): void {
  const known = inputs.flatMap((i) => {
    const st = identity(i.path);
    return st ? [{ ...i, st }] : [];
  });
  for (const out of outputs) {
    const st = identity(out.path);
    if (!st) continue;
    const replaced = identity(out.replaces);
    for (const input of known) {
      if (!sameFile(st, input.st) || (replaced && sameFile(st, replaced))) continue;
      const alias = out.path === input.path ? '' : ` (the same file as ${input.path})`;
      throw new UsageError(`${out.path} is the ${input.role} ${command} reads${alias}; writing it would destroy it`, 'choose another output path');
    }
    if (out.kind === 'directory') {
      if (!st.isDirectory()) throw new CharnnError(`${out.path} exists and is not a directory`, 'pass a directory for --out');
      continue;
    }
    if (st.isDirectory()) throw new CharnnError(`cannot write ${out.path}: it is a directory`, 'pass a file path');
    const kind = OUTPUT_KINDS[out.kind];
    if (st.isFile() && st.size > 0 && !kind.test(head(out.path!))) {
      throw new CharnnError(`${out.path} exists and is not ${kind.noun}; ${command} would overwrite it`, 'choose another output path, or move the file away');
    }
  }
}

/** The file a path names, symlinks followed; null for stdin/stdout, undefined, or a path that does not exist. */
function identity(path: string | undefined): Stats | null {
  if (path === undefined || path === '-') return null;
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function head(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    // Unreadable: the writer will report what is wrong; nothing here can be recognised.
    return Buffer.alloc(0);
  }
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    return buf.subarray(0, readSync(fd, buf, 0, SNIFF_BYTES, 0));
  } finally {
    closeSync(fd);
  }
}

import { accessSync, constants, createReadStream, statSync, type Stats } from 'node:fs';
import { CharnnError, UsageError } from '../errors.js';

/** Read size for corpus files: big enough that per-chunk overhead vanishes, small enough to stream. */
export const CORPUS_CHUNK_BYTES = 1 << 20;

/** A corpus as a stream of byte chunks, plus what messages and progress bars need to know. */
export interface Corpus extends AsyncIterable<Uint8Array> {
  /** The path as given, or `stdin`. */
  readonly description: string;
  /** Size in bytes for files; undefined for stdin, whose length is unknown until it ends. */
  readonly size: number | undefined;
}

/**
 * Opens a corpus file, or stdin when `path` is `-`, checking up front that it can be read so
 * that a bad path fails before any work starts. A file corpus can be iterated more than once
 * (each pass reopens it); stdin can be iterated once.
 */
export function openCorpus(path: string, role = 'corpus'): Corpus {
  if (path === '-') return stdinCorpus(role);
  const stats = statCorpusFile(path, role);
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw corpusFileError(path, err, role);
  }
  return {
    description: path,
    size: stats.size,
    async *[Symbol.asyncIterator]() {
      const stream = createReadStream(path, { highWaterMark: CORPUS_CHUNK_BYTES });
      try {
        for await (const chunk of stream) yield chunk as Buffer;
      } catch (err) {
        throw corpusFileError(path, err, role);
      }
    },
  };
}

/**
 * Stats a corpus file, turning the ways a user can name a wrong path into CharnnErrors.
 * `role` names the file in messages (`corpus`, `prime`).
 */
export function statCorpusFile(path: string, role = 'corpus'): Stats {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    throw corpusFileError(path, err, role);
  }
  if (stats.isDirectory()) {
    throw new UsageError(
      `${path} is a directory, not a ${role} file`,
      role === 'corpus' ? 'pass one text file; to train on several, concatenate them: cat a.txt b.txt | charnn train -' : 'pass one text file',
    );
  }
  return stats;
}

/** The name to use for a byte source in messages: a Corpus's description, or a generic one. */
export function describeSource(source: AsyncIterable<Uint8Array>): string {
  const description = (source as Partial<Corpus>).description;
  return typeof description === 'string' ? description : 'the corpus';
}

function stdinCorpus(role: string): Corpus {
  if (process.stdin.isTTY) {
    throw new UsageError(`the ${role} is stdin (-), but stdin is a terminal`, 'pipe the text in, e.g. charnn train - < corpus.txt');
  }
  return {
    description: 'stdin',
    size: undefined,
    async *[Symbol.asyncIterator]() {
      for await (const chunk of process.stdin) yield chunk as Buffer;
    },
  };
}

function corpusFileError(path: string, err: unknown, role: string): CharnnError {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new CharnnError(`${role} file not found: ${path}`, 'check the path, or pass - to read stdin');
    case 'EACCES':
    case 'EPERM':
      return new CharnnError(`cannot read ${path}: permission denied`, 'check the file permissions');
    default:
      return new CharnnError(
        `cannot read ${path}: ${(err as Error).message}`,
        'check that the file is a readable regular file',
      );
  }
}

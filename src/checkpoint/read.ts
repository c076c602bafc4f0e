import { closeSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { CharnnError } from '../errors.js';
import { checkLayout, decodeCheckpoint, impliedFileSize, parseHeader, parsePreamble } from './decode.js';
import { CHECKSUM_BYTES, MAGIC, PREAMBLE_BYTES, startsLikeMagic } from './format.js';
import { FormatErrors } from './format-error.js';
import { describeFsError, errorCode } from '../util/fs-errors.js';
import type { Checkpoint, CheckpointHeader } from './types.js';

/**
 * Loads and fully validates a checkpoint (see decodeCheckpoint). Every failure, from a missing
 * file to a bad checksum, is a CharnnError whose message names the path.
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  return withFile(path, async (handle, fileSize) => {
    // Check the preamble first so a wrong file (say, a large corpus) fails before it is loaded.
    const head = await readAt(handle, path, 0, Math.min(PREAMBLE_BYTES, fileSize));
    parsePreamble(head, fileSize, new FormatErrors(path));
    const bytes = await readAt(handle, path, 0, fileSize);
    // The buffer is ours alone, so tensors may view it rather than copy it.
    return decodeCheckpoint(bytes, { source: path, shareMemory: true });
  });
}

/**
 * Reads only the header (metadata and tensor names and shapes), touching just the first bytes
 * of the file: cheap even for a large model, for commands that describe a checkpoint.
 *
 * It validates magic, version, header and tensor table, and that the file is long enough for
 * every tensor the table lists, but it does NOT verify the checksum (that needs every byte):
 * a file damaged in its data section passes here and fails readCheckpoint.
 */
export async function readCheckpointMeta(path: string): Promise<CheckpointHeader> {
  return withFile(path, async (handle, fileSize) => {
    const errors = new FormatErrors(path);
    const head = await readAt(handle, path, 0, Math.min(PREAMBLE_BYTES, fileSize));
    const { headerLength, dataStart } = parsePreamble(head, fileSize, errors);
    // parsePreamble checked that the header fits in the file, so this read is bounded by it.
    const headerBytes = await readAt(handle, path, PREAMBLE_BYTES, headerLength);
    const { meta, entries } = parseHeader(headerBytes, errors);
    // Without the checksum a too-short file cannot be told from a forged table; truncation is
    // by far the likelier cause, so it is checked, and reported, first.
    const expected = impliedFileSize(entries, dataStart);
    if (expected > fileSize) throw errors.truncated(expected, fileSize);
    checkLayout(entries, fileSize - CHECKSUM_BYTES - dataStart, errors);
    return {
      meta,
      tensors: entries.map(({ name, shape, length }) => ({ name, shape, length })),
    };
  });
}

/**
 * Whether `path` is a readable file that starts with the checkpoint magic. A quick sniff for
 * telling a checkpoint argument from a corpus: it reads 8 bytes and validates nothing else.
 */
export function isCheckpointFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = new Uint8Array(MAGIC.length);
    const read = readSync(fd, head, 0, head.length, 0);
    return read === MAGIC.length && startsLikeMagic(head);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Opens `path` for reading, refusing directories, and runs `use` with the file and its size. */
async function withFile<T>(path: string, use: (handle: FileHandle, fileSize: number) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  let fileSize: number;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw readError(path, error);
  }
  try {
    try {
      const stats = await handle.stat();
      // Opening a directory for reading succeeds on Linux; reading it would fail less clearly.
      if (stats.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      fileSize = stats.size;
    } catch (error) {
      throw readError(path, error);
    }
    return await use(handle, fileSize);
  } finally {
    await handle.close();
  }
}

/** Exactly `length` bytes at `position`; the caller has checked they lie within the file. */
async function readAt(handle: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  let done = 0;
  try {
    // Unpooled and unzeroed: every byte is overwritten, and offset 0 keeps tensors alignable.
    const bytes = Buffer.allocUnsafeSlow(length);
    while (done < length) {
      const { bytesRead } = await handle.read(bytes, done, length - done, position + done);
      // The file shrank after stat (being rewritten in place by something else).
      if (bytesRead === 0) throw new CharnnError(`checkpoint ${path} changed while being read`, 'try again');
      done += bytesRead;
    }
    return bytes;
  } catch (error) {
    throw error instanceof CharnnError ? error : readError(path, error);
  }
}

function readError(path: string, error: unknown): CharnnError {
  switch (errorCode(error)) {
    case 'ENOENT':
      return new CharnnError(`checkpoint ${path} does not exist`, 'check the path, or train a model first with charnn train');
    case 'EISDIR':
      return new CharnnError(`${path} is a directory, not a checkpoint file`, 'pass the path of a .charnn file');
    default:
      return new CharnnError(`cannot read checkpoint ${path}: ${describeFsError(error)}`, 'check the path and its permissions');
  }
}

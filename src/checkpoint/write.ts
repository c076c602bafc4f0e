import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { CharnnError } from '../errors.js';
import { type AtomicFileSystem, nodeFileSystem, writeFileAtomically } from './atomic-file.js';
import { checkpointChunks, planCheckpoint } from './encode.js';
import { describeFsError, errorCode } from '../util/fs-errors.js';
import type { Checkpoint } from './types.js';

/**
 * Saves a checkpoint atomically and durably: after a crash or a failed write the file at
 * `path` is either the previous checkpoint, untouched, or the complete new one. Tensors are
 * streamed from their own memory, checksummed on the way, never copied into one big buffer.
 * File-system failures (full disk, no permission, missing directory) become a CharnnError
 * naming the path and the cause; an invalid checkpoint object is a bug and throws a plain Error
 * before anything is written.
 */
export function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  return writeCheckpointWith(nodeFileSystem, path, checkpoint);
}

/** writeCheckpoint on a given file system: the seam tests use to make writes fail. */
export async function writeCheckpointWith(
  fs: AtomicFileSystem,
  path: string,
  checkpoint: Checkpoint,
): Promise<void> {
  const plan = planCheckpoint(checkpoint);
  try {
    await writeFileAtomically(path, checkpointChunks(plan), fs);
  } catch (error) {
    // Errors without a code did not come from the file system: they are bugs, keep them raw.
    throw errorCode(error) === undefined ? error : writeError(path, error);
  }
}

function writeError(path: string, error: unknown): CharnnError {
  const code = errorCode(error);
  // ENOENT almost always means a missing directory; say so, but only when it is true (the temp
  // file could also have been deleted from under us).
  const cause =
    code === 'ENOENT' && !existsSync(dirname(path))
      ? `directory ${dirname(path)} does not exist`
      : describeFsError(error);
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'free some disk space or save the checkpoint somewhere else'
      : 'check that the directory exists and is writable';
  return new CharnnError(`cannot write checkpoint ${path}: ${cause}`, hint);
}

import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorCode } from '../util/fs-errors.js';
import { tempPathFor } from '../util/temp-file.js';

/** A file being written: `write` writes all of the chunk or throws. */
export interface WritableFile {
  write(chunk: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file-system operations an atomic write needs. Production uses nodeFileSystem; tests
 * substitute one that fails part-way (a full disk cannot be staged portably, and tests run as
 * root, which ignores read-only permissions).
 */
export interface AtomicFileSystem {
  /** Creates `path`, failing if it exists. */
  createNew(path: string): Promise<WritableFile>;
  rename(from: string, to: string): Promise<void>;
  /** Removes `path`; no error if it is already gone. */
  remove(path: string): Promise<void>;
  /** Makes a rename inside `dir` durable. */
  syncDirectory(dir: string): Promise<void>;
}

export const nodeFileSystem: AtomicFileSystem = {
  async createNew(path) {
    const handle = await open(path, 'wx');
    return {
      async write(chunk) {
        // A write may be partial (the OS may stop early); loop until the chunk is out.
        let done = 0;
        while (done < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, done, chunk.length - done);
          done += bytesWritten;
        }
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  },
  rename,
  remove: (path) => rm(path, { force: true }),
  async syncDirectory(dir) {
    let handle;
    try {
      handle = await open(dir, 'r');
      await handle.sync();
    } catch (error) {
      // Some platforms (Windows) and file systems cannot open or fsync a directory; there the
      // rename is as durable as the OS makes it, and the write itself did succeed.
      if (!DIRECTORY_SYNC_UNSUPPORTED.has(errorCode(error) ?? '')) throw error;
    } finally {
      await handle?.close();
    }
  },
};

const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EACCES']);

/**
 * Writes `chunks` to `path` so that readers, and the disk after a crash, see either the old
 * file or the complete new one, never a mix: write a new temp file in the same directory
 * (rename is atomic only within a file system), fsync it, rename it over `path`, then fsync the
 * directory so the rename itself survives a crash. On failure the temp file is removed,
 * `path` is left as it was and the underlying error (with its code) is rethrown.
 *
 * Chunks are pulled one at a time, so a generator can stream a large file without building it
 * in memory. If `path` is a symbolic link, the link itself is replaced.
 */
export async function writeFileAtomically(
  path: string,
  chunks: Iterable<Uint8Array>,
  fs: AtomicFileSystem = nodeFileSystem,
): Promise<void> {
  const tempPath = tempPathFor(path);
  const file = await fs.createNew(tempPath);
  let isOpen = true;
  try {
    for (const chunk of chunks) await file.write(chunk);
    await file.sync();
    isOpen = false;
    await file.close();
    await fs.rename(tempPath, path);
  } catch (error) {
    // Cleanup failures are dropped: the original error is the one the user can act on.
    if (isOpen) await file.close().catch(() => {});
    await fs.remove(tempPath).catch(() => {});
    throw error;
  }
  await fs.syncDirectory(dirname(path));
}

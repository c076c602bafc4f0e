import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/**
 * Temporary files written beside a file that is being replaced: `<name>.tmp-<pid>-<tag>`. The
 * pid keeps processes apart; ".tmp" after the name
 * matches the project's ignore pattern for stray checkpoint temp files ("*.charnn.tmp*").
 * Every writer of such files names them here.
 */

/** The name prefix of this process's temp files for `path` (a directory entry beside it). */
function ownPrefix(path: string): string {
  return `${basename(path)}.tmp-${process.pid}-`;
}

/**
 * Every temp path this process has named, wherever it is (beside a checkpoint, in the token
 * cache): what removeAllOwnTempFiles deletes when a signal ends the process mid-write. A path
 * stays listed after its file was renamed or removed; deleting a missing file is a no-op.
 */
const named = new Set<string>();

/** A fresh temp file path beside `path`; the random tag keeps concurrent writers of this process apart. */
export function tempPathFor(path: string): string {
  return tempPathTagged(path, randomBytes(6).toString('hex'));
}

/** The temp path beside `path` with a fixed tag (`probe`: the check that the directory is writable). */
export function tempPathTagged(path: string, tag: string): string {
  const temp = join(dirname(path), `${ownPrefix(path)}${tag}`);
  named.add(temp);
  return temp;
}

/**
 * A fresh scratch directory in `parent` (the system's temp directory; `<prefix>XXXXXX`, as mkdtemp),
 * listed for removeAllOwnTempFiles; the caller removes it when done (removeTempDir).
 */
export function makeTempDir(prefix: string, parent: string = tmpdir()): string {
  const dir = mkdtempSync(join(parent, prefix));
  named.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir, with what it holds. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  named.delete(dir);
}

/**
 * Removes every temp file and directory this process named (tempPathFor, tempPathTagged,
 * makeTempDir) that still exists: for a process that a signal ends before its writes
 * finished. Best effort.
 */
export function removeAllOwnTempFiles(): void {
  for (const temp of named) {
    try {
      rmSync(temp, { recursive: true, force: true });
    } catch {
      // Best effort.
    }
  }
  named.clear();
}

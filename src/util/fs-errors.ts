/** Plain-words causes for the file-system errors a user can meet and fix. */
const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'it is a directory',
  ENOTEMPTY: 'it is a non-empty directory',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EXDEV: 'cross-device rename',
  ERR_FS_FILE_TOO_LARGE: 'file is too large to read into memory',
};

/** The error's code (e.g. "ENOSPC"), if it has one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A short, one-line cause for an error thrown by node:fs. */
export function describeFsError(error: unknown): string {
  const code = errorCode(error);
  if (code !== undefined && Object.hasOwn(CAUSES, code)) return CAUSES[code];
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}

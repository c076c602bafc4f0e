import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { CACHE_FORMAT_VERSION } from './cache-format.js';
import { canonicalTokenizerConfig, type TokenizerConfig } from './config.js';
import { statCorpusFile } from './source.js';

/**
 * Where token caches live: `$XDG_CACHE_HOME/charnn`, or `~/.cache/charnn` when XDG_CACHE_HOME
 * is unset (the XDG spec says to ignore a relative value, too). Caches are disposable: deleting
 * the folder only costs a re-tokenization.
 */
export function defaultCacheDir(home = homedir()): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return xdg && isAbsolute(xdg) ? join(xdg, 'charnn') : join(home, '.cache', 'charnn');
}

/**
 * A file name stem for the cache of a corpus file under a tokenizer config: the corpus's name
 * plus a hash of its absolute path, size, modification time, the tokenizer config and the cache
 * format. An edited file, another config or a new format gives a new key. The key only finds a
 * candidate: a file changed without changing size or mtime (`cp -p`, `rsync -t`) keeps its key,
 * so the cache is reused only if its recorded content hash matches (see prepareCorpus).
 * (stdin has no key: it cannot be recognized next time.)
 */
export function cacheKeyFor(corpusPath: string, config: TokenizerConfig): string {
  const stats = statCorpusFile(corpusPath);
  const identity = JSON.stringify({
    format: CACHE_FORMAT_VERSION,
    path: resolve(corpusPath),
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    tokenizer: canonicalTokenizerConfig(config),
  });
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  const name = basename(corpusPath).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 48);
  return `${name}-${hash}`;
}

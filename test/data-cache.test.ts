import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildTokenCache,
  cacheKeyFor,
  CORPUS_CHUNK_BYTES,
  defaultCacheDir,
  openCorpus,
  openTokenCache,
  type TokenCache,
  type TokenizerConfig,
} from '../src/data/index.js';
import { CharnnError, UsageError } from '../src/errors.js';
import { prepareCorpus } from '../src/train/session.js';

const CHAR: TokenizerConfig = { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' };
const WORD: TokenizerConfig = { level: 'word', invalidUtf8: 'error', wordSplit: 'punct' };

const dir = mkdtempSync(join(tmpdir(), 'charnn-data-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fixtures = 0;

function fixture(content: string | Uint8Array): string {
  const path = join(dir, `corpus-${fixtures++}.txt`);
  writeFileSync(path, content);
  return path;
}

function cachePath(): string {
  return join(dir, 'caches', `cache-${fixtures++}.ids`);
}

async function* inChunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

function readAll(cache: TokenCache): Int32Array {
  const ids = new Int32Array(cache.length);
  cache.read(0, cache.length, ids);
  return ids;
}

async function rejection(promise: Promise<unknown>): Promise<CharnnError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CharnnError);
  return err as CharnnError;
}

describe('openCorpus', () => {
  it('streams a file in chunks of at most 1 MiB', async () => {
    const content = Buffer.alloc(CORPUS_CHUNK_BYTES * 2 + 123, 'abc\n');
    const corpus = openCorpus(fixture(content));
    expect(corpus.size).toBe(content.length);
    const sizes: number[] = [];
    for await (const chunk of corpus) sizes.push(chunk.length);
    expect(sizes.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(CORPUS_CHUNK_BYTES);
    expect(sizes.reduce((a, b) => a + b)).toBe(content.length);
  });

  it('reports a missing file as a runtime error (exit 1) and a directory as a usage error (exit 2)', () => {
    const missing = (() => {
      try {
        openCorpus(join(dir, 'nope.txt'));
      } catch (err) {
        return err;
      }
    })();
    expect(missing).toBeInstanceOf(CharnnError);
    expect(missing).not.toBeInstanceOf(UsageError);
    expect((missing as CharnnError).message).toMatch(/not found/);
    expect((missing as CharnnError).exitCode).toBe(1);
    expect(() => openCorpus(dir)).toThrow(UsageError);
    expect(() => openCorpus(dir)).toThrow(/is a directory/);
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file', () => {
    const path = fixture('secret');
    chmodSync(path, 0o000);
    expect(() => openCorpus(path)).toThrow(/permission denied/);
  });
});

describe('buildTokenCache', () => {
  it('builds a character cache from a file, 1 byte per id, that reads back as the text', async () => {
    const text = 'hello world\r\nhéllo 😀\n';
    const path = fixture(text);
    const progress: number[] = [];
    const cache = await buildTokenCache(openCorpus(path), CHAR, cachePath(), (bytes) => progress.push(bytes));
    expect(cache.length).toBe(Array.from(text).length);
    expect(cache.width).toBe(1);
    expect(cache.source).toBe(path);
    expect(cache.vocab.tokens).toEqual(Array.from(new Set(text)).sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    expect(cache.vocab.decode(readAll(cache))).toBe(text);
    expect(progress.at(-1)).toBe(Buffer.byteLength(text));
    cache.close();
  });

  it('builds from a one-shot in-memory stream, in any chunking, reading it once', async () => {
    const text = 'The cat sat. The cat ran!\r\nA dog? The end';
    let reference: number[] | undefined;
    for (let size = 1; size <= 7; size++) {
      const cache = await buildTokenCache(inChunks(Buffer.from(text), size), WORD, cachePath());
      expect(cache.source).toBe('the corpus');
      const ids = Array.from(readAll(cache));
      reference ??= ids;
      expect(ids, `chunk size ${size}`).toEqual(reference);
      expect(cache.vocab.decode(ids)).toBe('The cat sat. The cat ran!\nA dog? The end');
      cache.close();
    }
  });

  it('maps words outside the capped vocabulary to <unk> in the cache', async () => {
    const cache = await buildTokenCache(inChunks(Buffer.from('a a a b b c d\n'), 4), { ...WORD, vocabSize: 3 }, cachePath());
    // a(3) and b(2) are kept; c, d and the newline (once each) become <unk>, which then counts 3
    // and sorts first: count ties go by token string, and '<' < 'a'.
    expect(cache.vocab.tokens).toEqual(['<unk>', 'a', 'b']);
    expect(Array.from(readAll(cache))).toEqual([1, 1, 1, 2, 2, 0, 0, 0]);
    cache.close();
  });

  it('uses 2-byte ids above 256 tokens and 4-byte ids above 65536', async () => {
    for (const [distinct, width] of [
      [300, 2],
      [70_000, 4],
    ] as const) {
      // Distinct code points from U+0100 up, skipping surrogates, each used once, then the first again.
      const codePoints: number[] = [];
      for (let cp = 0x100; codePoints.length < distinct; cp++) if (cp < 0xd800 || cp > 0xdfff) codePoints.push(cp);
      codePoints.push(0x100);
      const text = String.fromCodePoint(...codePoints);
      const cache = await buildTokenCache(openCorpus(fixture(text)), CHAR, cachePath());
      expect(cache.width).toBe(width);
      expect(cache.vocab.size).toBe(distinct);
      const ids = readAll(cache);
      expect(ids[0]).toBe(0);
      expect(ids[distinct - 1]).toBe(distinct - 1);
      expect(ids[distinct]).toBe(0);
      expect(cache.vocab.decode(ids)).toBe(text);
      cache.close();
    }
  });

  it('reads any range into any offset of the output array', async () => {
    const text = 'abcdefghijklmnopqrstuvwxyz';
    const cache = await buildTokenCache(openCorpus(fixture(text)), CHAR, cachePath());
    const out = new Int32Array(10).fill(-1);
    cache.read(20, 6, out, 3);
    expect(Array.from(out)).toEqual([-1, -1, -1, 20, 21, 22, 23, 24, 25, -1]);
    cache.read(0, 0, out);
    expect(() => cache.read(21, 6, out)).toThrow(RangeError);
    expect(() => cache.read(0, 11, out)).toThrow(RangeError);
    cache.close();
  });

  it('rejects an empty corpus, a whitespace-only word corpus and a single distinct token', async () => {
    expect((await rejection(buildTokenCache(openCorpus(fixture('')), CHAR, cachePath()))).message).toContain(
      'contains no tokens',
    );
    expect((await rejection(buildTokenCache(openCorpus(fixture(' \t ')), WORD, cachePath()))).message).toContain(
      'contains no tokens',
    );
    const single = await rejection(buildTokenCache(openCorpus(fixture('aaaa')), CHAR, cachePath()));
    expect(single.message).toContain('only one distinct token, "a"');
  });

  it('rejects tokenizer settings that cannot work before reading anything', async () => {
    const bad: TokenizerConfig[] = [
      { ...CHAR, vocabSize: 100 },
      { ...CHAR, minCount: 2 },
      { ...WORD, vocabSize: 1 },
      { ...WORD, vocabSize: 2.5 },
      { ...WORD, minCount: 0 },
    ];
    for (const config of bad) {
      const err = await rejection(buildTokenCache(inChunks(Buffer.from('a b'), 1), config, cachePath()));
      expect(err, JSON.stringify(config)).toBeInstanceOf(UsageError);
    }
  });

  it('leaves neither a cache nor temporary files behind when a build fails', async () => {
    const target = join(dir, 'failing', 'cache.ids');
    const bytes = Buffer.concat([Buffer.alloc(100_000, 'text '), Buffer.from([0xff])]);
    await rejection(buildTokenCache(inChunks(bytes, 4096), CHAR, target));
    expect(readdirSync(join(dir, 'failing'))).toEqual([]);
  });

  it('replaces an existing cache atomically on rebuild', async () => {
    const target = cachePath();
    (await buildTokenCache(inChunks(Buffer.from('ab'), 1), CHAR, target)).close();
    const rebuilt = await buildTokenCache(inChunks(Buffer.from('xyz'), 1), CHAR, target);
    expect(rebuilt.vocab.decode(readAll(rebuilt))).toBe('xyz');
    rebuilt.close();
  });
});

describe('openTokenCache', () => {
  it('reopens a cache with its vocabulary, tokenizer config and ids', async () => {
    const target = cachePath();
    const built = await buildTokenCache(openCorpus(fixture('one two, three.\n')), { ...WORD, minCount: 1 }, target);
    const expected = readAll(built);
    built.close();
    const reopened = openTokenCache(target);
    expect(reopened.tokenizer).toEqual({ level: 'word', invalidUtf8: 'error', wordSplit: 'punct' });
    expect(readAll(reopened)).toEqual(expected);
    expect(reopened.vocab.decode(expected)).toBe('one two, three.\n');
    reopened.close();
    expect(() => reopened.read(0, 1, new Int32Array(1))).toThrow(/closed/);
  });

  it('refuses truncated caches and files that are not caches', async () => {
    const target = cachePath();
    (await buildTokenCache(openCorpus(fixture('abcabc')), CHAR, target)).close();
    const size = readFileSync(target).length;
    truncateSync(target, size - 1);
    expect(() => openTokenCache(target)).toThrow(/incomplete or corrupt/);
    expect(() => openTokenCache(fixture('just some text'))).toThrow(/not a charnn token cache/);
    expect(() => openTokenCache(join(dir, 'missing.ids'))).toThrow(CharnnError);
  });
});

describe('cache location', () => {
  it('a word-level vocabulary that leaves only <unk> (every word below --min-count or beyond --vocab-size) is a usage error', async () => {
    const text = 'a b c d e f g h\n'.repeat(50);
    const err = await rejection(buildTokenCache(openCorpus(fixture(text)), { ...WORD, minCount: 1000 }, cachePath()));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/with --min-count 1000 leaves one token, "<unk>", for every position/);
    expect((await rejection(buildTokenCache(openCorpus(fixture('a a b\n')), { ...WORD, minCount: 3 }, cachePath()))).message).toMatch(/leaves one token, "<unk>"/);
    // Two tokens that occur are enough: "\n" and <unk>.
    const cache = await buildTokenCache(openCorpus(fixture(text)), { ...WORD, vocabSize: 2 }, cachePath());
    expect([...cache.vocab.tokens].sort()).toEqual(['\n', '<unk>']);
    cache.close();
  });

  it('char level, line endings lf: \\r\\n and a lone \\r become \\n, also when \\r\\n is split across chunks; keep leaves them', async () => {
    const bytes = new TextEncoder().encode('a\r\nb\rc\nd\r\r\ne\r');
    for (const chunk of [1, 2, 3, 100]) {
      const lf = await buildTokenCache(inChunks(bytes, chunk), { ...CHAR, lineEndings: 'lf' }, cachePath());
      expect(lf.vocab.decode(readAll(lf))).toBe('a\nb\nc\nd\n\ne\n');
      expect(lf.vocab.lineEndings).toBe('lf');
      lf.close();
    }
    const keep = await buildTokenCache(inChunks(bytes, 2), CHAR, cachePath());
    expect(keep.vocab.decode(readAll(keep))).toBe('a\r\nb\rc\nd\r\r\ne\r');
    expect(keep.vocab.lineEndings).toBe('keep');
    keep.close();
  });

  it('never reuses a cache for different bytes with the same path, size and mtime (cp -p), and reuses it for the same bytes', async () => {
    const path = fixture('abcabcabc\n'.repeat(20));
    const when = new Date(2020, 0, 1);
    utimesSync(path, when, when);
    const caches = join(dir, 'reuse');
    const first = await prepareCorpus(path, CHAR, caches);
    expect(first.reused).toBe(false);
    first.cache.close();
    const again = await prepareCorpus(path, CHAR, caches);
    expect(again.reused).toBe(true);
    again.cache.close();
    // Same size, same mtime, different text: the key is the same, the content hash is not.
    writeFileSync(path, 'xyzxyzxyz\n'.repeat(20));
    utimesSync(path, when, when);
    expect(statSync(path).size).toBe(200);
    const changed = await prepareCorpus(path, CHAR, caches);
    expect(changed.reused).toBe(false);
    expect(changed.cache.vocab.decode(readAll(changed.cache))).toBe('xyzxyzxyz\n'.repeat(20));
    changed.cache.close();
    expect(readdirSync(caches).filter((f) => f.endsWith('.ids'))).toHaveLength(1);
  });

  it('keys a cache by file identity and tokenizer config', () => {
    const path = fixture('some text');
    const key = cacheKeyFor(path, CHAR);
    expect(key).toMatch(/^corpus-\d+\.txt-[0-9a-f]{16}$/);
    expect(cacheKeyFor(path, { ...CHAR })).toBe(key);
    // wordSplit cannot change character tokens, so it does not change the key.
    expect(cacheKeyFor(path, { ...CHAR, wordSplit: 'space' })).toBe(key);
    expect(cacheKeyFor(path, { ...CHAR, invalidUtf8: 'replace' })).not.toBe(key);
    expect(cacheKeyFor(path, WORD)).not.toBe(key);
    utimesSync(path, new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(cacheKeyFor(path, CHAR)).not.toBe(key);
    expect(() => cacheKeyFor(join(dir, 'nope.txt'), CHAR)).toThrow(/not found/);
  });

  it('defaults to $XDG_CACHE_HOME/charnn, else ~/.cache/charnn', () => {
    const saved = process.env.XDG_CACHE_HOME;
    try {
      process.env.XDG_CACHE_HOME = '/var/cache/me';
      expect(defaultCacheDir('/home/u')).toBe('/var/cache/me/charnn');
      delete process.env.XDG_CACHE_HOME;
      expect(defaultCacheDir('/home/u')).toBe('/home/u/.cache/charnn');
      process.env.XDG_CACHE_HOME = 'relative/ignored';
      expect(defaultCacheDir('/home/u')).toBe('/home/u/.cache/charnn');
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  it('creates the cache folder when it does not exist yet', async () => {
    const nested = join(dir, 'deep', 'er', 'cache.ids');
    (await buildTokenCache(inChunks(Buffer.from('ab'), 2), CHAR, nested)).close();
    expect(readdirSync(join(dir, 'deep', 'er'))).toEqual(['cache.ids']);
  });
});

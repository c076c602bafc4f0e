import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { CharnnError, UsageError } from '../errors.js';
import {
  encodeCacheHeader,
  idWidthFor,
  readCacheHeader,
  readExactly,
  type CacheHeader,
  type IdWidth,
} from './cache-format.js';
import { canonicalTokenizerConfig, type TokenizerConfig } from './config.js';
import { contentHasher } from './content-hash.js';
import { IdSpillWriter, readSpill, SPILL_BLOCK_IDS } from './id-spill.js';
import { CodePointIds, StringIds, type ProvisionalIds } from './provisional-ids.js';
import { describeSource } from './source.js';
import { createCharTokenizer, createWordTokenizer, type ByteTokenizer } from './tokenizer.js';
import { buildVocabulary, Vocabulary } from './vocabulary.js';
import { quoteText } from '../util/visible-text.js';
import { tempPathTagged } from '../util/temp-file.js';

export { cacheKeyFor, defaultCacheDir } from './cache-location.js';

/** Random access to a sequence of token ids; what the batcher reads from. */
export interface TokenReader {
  /** Number of tokens. */
  readonly length: number;
  /** Copies ids [start, start + count) into out[outOffset ...]. */
  read(start: number, count: number, out: Int32Array, outOffset?: number): void;
}

/**
 * A tokenized corpus on disk: its vocabulary and its ids, read on demand with positional reads
 * so that training never holds the corpus in memory.
 */
export class TokenCache implements TokenReader {
  readonly vocab: Vocabulary;
  /** Number of tokens. */
  readonly length: number;
  /** Bytes per id on disk. */
  readonly width: IdWidth;
  readonly tokenizer: TokenizerConfig;
  /** The corpus the cache was built from: its path as given, or `stdin`. */
  readonly source: string;
  /** SHA-256 (hex) of the corpus bytes the tokens came from. */
  readonly contentSha256: string;
  private fd: number | undefined;
  private readonly dataOffset: number;
  /** Raw bytes of the last read, kept to spare an allocation per read. */
  private scratch = Buffer.alloc(0);

  /** Opens a cache written by buildTokenCache, checking its format and completeness. */
  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new CharnnError(`cannot open token cache ${path}: ${(err as Error).message}`, 'check the path');
    }
    try {
      const { header, dataOffset } = readCacheHeader(fd, path);
      this.vocab = Vocabulary.fromJSON(header.vocab);
      this.length = header.tokenCount;
      this.width = header.width;
      this.tokenizer = header.tokenizer;
      this.source = header.source;
      this.contentSha256 = header.contentSha256;
      this.dataOffset = dataOffset;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  read(start: number, count: number, out: Int32Array, outOffset = 0): void {
    if (this.fd === undefined) throw new Error(`token cache ${this.path} is closed`);
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= this.length)) {
      throw new RangeError(`cannot read tokens [${start}, ${start + count}) of ${this.length}`);
    }
    if (!(Number.isInteger(outOffset) && outOffset >= 0 && outOffset + count <= out.length)) {
      throw new RangeError(`${count} tokens do not fit in an array of ${out.length} at offset ${outOffset}`);
    }
    const bytes = count * this.width;
    if (this.scratch.length < bytes) this.scratch = Buffer.allocUnsafe(Math.max(bytes, 2 * this.scratch.length));
    const raw = readExactly(this.fd, this.dataOffset + start * this.width, bytes, this.scratch);
    // Assembled byte by byte: little-endian on disk whatever the machine's byte order.
    if (this.width === 1) {
      for (let i = 0; i < count; i++) out[outOffset + i] = raw[i]!;
    } else if (this.width === 2) {
      for (let i = 0, b = 0; i < count; i++, b += 2) out[outOffset + i] = raw[b]! | (raw[b + 1]! << 8);
    } else {
      for (let i = 0, b = 0; i < count; i++, b += 4) {
        out[outOffset + i] = raw[b]! | (raw[b + 1]! << 8) | (raw[b + 2]! << 16) | (raw[b + 3]! << 24);
      }
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Opens a cache written by buildTokenCache, checking its format and completeness. */
export function openTokenCache(path: string): TokenCache {
  return new TokenCache(path);
}

/**
 * Tokenizes a corpus into a cache file at `cachePath` and opens it.
 *
 * Pass 1 reads the source once (so stdin works), numbering tokens in first-seen order,
 * counting them, and spilling those provisional ids to a temporary file. Pass 2 builds the
 * final vocabulary from the counts and rewrites the ids through it at the narrowest width.
 * Memory depends on the vocabulary size, not on the corpus length. The cache appears under
 * its name only when complete (written to a temporary file, then renamed), so an interrupted
 * build leaves no cache behind; temporary files are removed on failure.
 *
 * `onProgress` is called after each chunk with the number of bytes read so far.
 */
export async function buildTokenCache(
  source: AsyncIterable<Uint8Array>,
  config: TokenizerConfig,
  cachePath: string,
  onProgress?: (bytesRead: number) => void,
): Promise<TokenCache> {
  const tokenizer = canonicalTokenizerConfig(config);
  const sourceName = describeSource(source);
  mkdirSync(dirname(cachePath), { recursive: true });
  const spillPath = tempPathTagged(cachePath, `ids-${randomBytes(4).toString('hex')}`);
  const partialPath = tempPathTagged(cachePath, `partial-${randomBytes(4).toString('hex')}`);
  try {
    const spill = new IdSpillWriter(spillPath);
    let provisional: ProvisionalIds;
    const hash = contentHasher();
    try {
      provisional = await spillProvisionalIds(source, tokenizer, sourceName, spill, (chunk) => hash.update(chunk), onProgress);
    } finally {
      spill.close();
    }
    rejectDegenerate(provisional, sourceName);
    const vocab = buildVocabulary(provisional.counts(), tokenizer);
    const finalIds = Int32Array.from(provisional.tokens(), (token) => {
      const id = vocab.id(token);
      return id >= 0 ? id : vocab.unkId;
    });
    rejectDegenerateVocabulary(finalIds, vocab, tokenizer, sourceName);
    writeCacheFile(partialPath, spillPath, finalIds, {
      tokenCount: spill.count,
      width: idWidthFor(vocab.size),
      vocab: vocab.toJSON(),
      tokenizer,
      source: sourceName,
      contentSha256: hash.digest('hex'),
    });
    renameSync(partialPath, cachePath);
  } finally {
    rmSync(spillPath, { force: true });
    rmSync(partialPath, { force: true });
  }
  return openTokenCache(cachePath);
}

async function spillProvisionalIds(
  source: AsyncIterable<Uint8Array>,
  config: TokenizerConfig,
  sourceName: string,
  spill: IdSpillWriter,
  onChunk: (chunk: Uint8Array) => void,
  onProgress: ((bytesRead: number) => void) | undefined,
): Promise<ProvisionalIds> {
  let tokenizer: ByteTokenizer;
  let provisional: ProvisionalIds;
  if (config.level === 'char') {
    const ids = new CodePointIds();
    tokenizer = createCharTokenizer(config.invalidUtf8, sourceName, (codePoint) => spill.push(ids.id(codePoint)), config.lineEndings);
    provisional = ids;
  } else {
    const ids = new StringIds();
    tokenizer = createWordTokenizer(config.invalidUtf8, config.wordSplit, sourceName, (token) =>
      spill.push(ids.id(token)),
    );
    provisional = ids;
  }
  let bytesRead = 0;
  for await (const chunk of source) {
    onChunk(chunk);
    tokenizer.push(chunk);
    bytesRead += chunk.length;
    onProgress?.(bytesRead);
  }
  tokenizer.end();
  return provisional;
}

function rejectDegenerate(provisional: ProvisionalIds, sourceName: string): void {
  if (provisional.size === 0) {
    throw new CharnnError(
      `${sourceName} contains no tokens`,
      'the corpus is empty (or, at word level, only whitespace); train on some text',
    );
  }
  if (provisional.size === 1) {
    throw new CharnnError(
      `${sourceName} contains only one distinct token, ${quoteText(provisional.tokens()[0]!)}`,
      'a language model needs at least two different tokens to learn anything',
    );
  }
}

/**
 * A vocabulary in which the corpus uses one token only cannot model anything: at word level,
 * when --min-count or --vocab-size turns every word into <unk>. (Every provisional id occurs in
 * the corpus, so the distinct final ids are the distinct tokens the model would train on.)
 */
function rejectDegenerateVocabulary(finalIds: Int32Array, vocab: Vocabulary, config: TokenizerConfig, sourceName: string): void {
  if (new Set(finalIds).size >= 2) return;
  const only = vocab.token(finalIds[0]!);
  const why = config.minCount !== undefined ? `--min-count ${config.minCount}` : `--vocab-size ${config.vocabSize}`;
  throw new UsageError(
    `${sourceName} with ${why} leaves one token, ${quoteText(only)}, for every position: a language model needs at least two`,
    config.minCount !== undefined ? 'lower --min-count' : 'raise --vocab-size',
  );
}

/** Pass 2: header, then every spilled provisional id translated to its final id at the header's width. */
function writeCacheFile(path: string, spillPath: string, finalIds: Int32Array, header: CacheHeader): void {
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, encodeCacheHeader(header));
    const width = header.width;
    const out = Buffer.allocUnsafe(SPILL_BLOCK_IDS * width);
    readSpill(spillPath, (ids) => {
      let b = 0;
      for (let i = 0; i < ids.length; i++) {
        const id = finalIds[ids[i]!]!;
        out[b++] = id & 0xff;
        if (width >= 2) out[b++] = (id >>> 8) & 0xff;
        if (width === 4) {
          out[b++] = (id >>> 16) & 0xff;
          out[b++] = id >>> 24;
        }
      }
      writeSync(fd, out, 0, b);
    });
    // On disk before the rename makes it visible, so a crash cannot leave a named but empty cache.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

import { fstatSync, readSync } from 'node:fs';
import { CharnnError } from '../errors.js';
import type { TokenizerConfig } from './config.js';
import type { VocabularyJSON } from './vocabulary.js';

/**
 * Token cache file layout, all integers little-endian:
 *   bytes 0..7    "CHARNNID"
 *   bytes 8..11   format version (uint32)
 *   bytes 12..15  header length = offset of the first id (uint32), a multiple of 8
 *   bytes 16..    UTF-8 JSON (CacheHeader), padded with spaces to the header length
 *   then          `tokenCount` ids of `width` bytes each
 */
const MAGIC = 'CHARNNID';
/** 2: the header holds the SHA-256 of the corpus bytes (contentSha256). */
export const CACHE_FORMAT_VERSION = 2;
const PREAMBLE_BYTES = 16;

export type IdWidth = 1 | 2 | 4;

export interface CacheHeader {
  tokenCount: number;
  width: IdWidth;
  vocab: VocabularyJSON;
  tokenizer: TokenizerConfig;
  /** Where the tokens came from: the corpus path as given, or `stdin`. */
  source: string;
  /** SHA-256 (hex) of the bytes tokenized (see content-hash.ts): a reused cache must match its file. */
  contentSha256: string;
}

/** The narrowest id width that holds every id of a vocabulary of `size` tokens. */
export function idWidthFor(size: number): IdWidth {
  return size <= 0x100 ? 1 : size <= 0x10000 ? 2 : 4;
}

export function encodeCacheHeader(header: CacheHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Math.ceil((PREAMBLE_BYTES + json.length) / 8) * 8;
  const bytes = Buffer.alloc(length, ' ');
  bytes.write(MAGIC, 0, 'latin1');
  bytes.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
  bytes.writeUInt32LE(length, 12);
  json.copy(bytes, PREAMBLE_BYTES);
  return bytes;
}

/**
 * Reads and checks the header of an open cache file, including that the file is exactly as long
 * as the header says: a cache cut short (disk full, copied half-way) is refused, never read.
 */
export function readCacheHeader(fd: number, path: string): { header: CacheHeader; dataOffset: number } {
  const fileSize = fstatSync(fd).size;
  const preamble = readExactly(fd, 0, Math.min(PREAMBLE_BYTES, fileSize));
  if (preamble.length < PREAMBLE_BYTES || preamble.toString('latin1', 0, 8) !== MAGIC) {
    throw new CharnnError(`${path} is not a charnn token cache`, 'check the path');
  }
  const version = preamble.readUInt32LE(8);
  if (version !== CACHE_FORMAT_VERSION) {
    throw new CharnnError(
      `token cache ${path} has format version ${version}, this charnn reads version ${CACHE_FORMAT_VERSION}`,
      'delete the cache file; charnn rebuilds it from the corpus',
    );
  }
  const dataOffset = preamble.readUInt32LE(12);
  let header: CacheHeader;
  try {
    if (dataOffset < PREAMBLE_BYTES || dataOffset > fileSize) throw new Error('header length out of range');
    header = JSON.parse(readExactly(fd, PREAMBLE_BYTES, dataOffset - PREAMBLE_BYTES).toString('utf8'));
  } catch {
    throw corrupt(path);
  }
  const widthOk = header.width === 1 || header.width === 2 || header.width === 4;
  if (!widthOk || !Number.isSafeInteger(header.tokenCount) || fileSize !== dataOffset + header.tokenCount * header.width) {
    throw corrupt(path);
  }
  return { header, dataOffset };
}

/** Reads `length` bytes at `position` into `buffer` (default: a new one), failing if the file ends first. */
export function readExactly(fd: number, position: number, length: number, buffer = Buffer.allocUnsafe(length)): Buffer {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new CharnnError('a token cache file was truncated while in use', 'rebuild the cache');
    done += n;
  }
  return buffer;
}

function corrupt(path: string): CharnnError {
  return new CharnnError(
    `token cache ${path} is incomplete or corrupt`,
    'delete the cache file; charnn rebuilds it from the corpus',
  );
}

import { CharnnError } from '../errors.js';
import type { InvalidUtf8Mode } from './config.js';
import { findInvalidUtf8, incompleteTailLength } from './utf8-scan.js';

/** Text files have no NUL bytes; finding one this early means the input is not text. */
const BINARY_SNIFF_BYTES = 64 * 1024;

/**
 * Turns a corpus's byte chunks into text chunks. TextDecoder in streaming mode keeps a
 * multi-byte sequence cut by a chunk boundary until the rest arrives, so every text chunk
 * ends on a whole code point. This class adds binary-file detection and error messages
 * that say where the bad bytes are.
 */
export class CorpusDecoder {
  private readonly decoder: TextDecoder;
  private bytesSeen = 0;
  /** The bytes TextDecoder is holding back (an unfinished sequence), to locate errors. */
  private carry = new Uint8Array(0);

  constructor(
    invalidUtf8: InvalidUtf8Mode,
    private readonly sourceName: string,
  ) {
    this.decoder = new TextDecoder('utf-8', { fatal: invalidUtf8 === 'error' });
  }

  decode(chunk: Uint8Array): string {
    this.rejectBinary(chunk);
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      const scanned = concat(this.carry, chunk);
      const at = Math.max(0, findInvalidUtf8(scanned));
      throw this.invalidError(this.bytesSeen - this.carry.length + at);
    }
    this.bytesSeen += chunk.length;
    const recent = concat(this.carry, chunk.subarray(Math.max(0, chunk.length - 3)));
    this.carry = recent.slice(recent.length - incompleteTailLength(recent));
    return text;
  }

  /** Call after the last chunk: flushes the decoder, which fails on a sequence cut off by the end of input. */
  end(): string {
    try {
      return this.decoder.decode();
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw this.invalidError(this.bytesSeen - this.carry.length);
    }
  }

  private rejectBinary(chunk: Uint8Array): void {
    if (this.bytesSeen >= BINARY_SNIFF_BYTES) return;
    const nul = chunk.subarray(0, BINARY_SNIFF_BYTES - this.bytesSeen).indexOf(0);
    if (nul < 0) return;
    throw new CharnnError(
      `${this.sourceName} looks like a binary file (NUL byte at offset ${this.bytesSeen + nul})`,
      'charnn trains on UTF-8 text; convert other encodings first, e.g. iconv -f UTF-16 -t UTF-8',
    );
  }

  private invalidError(offset: number): CharnnError {
    return new CharnnError(
      `${this.sourceName} is not valid UTF-8 (bad bytes near byte offset ${offset})`,
      'pass --invalid-utf8 replace to read bad bytes as U+FFFD',
    );
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/**
 * All of a (small) byte source as text, through the same decoder as every corpus: a leading
 * byte-order mark dropped, invalid bytes an error naming their offset (or U+FFFD with
 * `replace`), NUL bytes refused as binary. For primes, which are read whole.
 */
export async function readAllText(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, invalidUtf8: InvalidUtf8Mode, sourceName: string): Promise<string> {
  const decoder = new CorpusDecoder(invalidUtf8, sourceName);
  let text = '';
  for await (const chunk of source) text += decoder.decode(chunk);
  return text + decoder.end();
}

import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { InvalidUtf8Mode } from './config.js';
import { type UnknownTally, VocabularyEncoder } from './encoder.js';
import { IdSpillWriter } from './id-spill.js';
import type { TokenReader } from './token-cache.js';
import type { UnknownTokenPolicy, Vocabulary } from './vocabulary.js';
import { makeTempDir, removeTempDir } from '../util/temp-file.js';

export interface EncodeOptions {
  /** Tokens outside the vocabulary: `skip` (drop), `unk` (read as <unk>), `error`. */
  unknown: UnknownTokenPolicy;
  invalidUtf8: InvalidUtf8Mode;
  /** Where the temporary id file goes (default: the OS temporary directory). */
  tmpDir?: string;
}

/**
 * A text read through a fixed vocabulary (a trained model's) into a temporary file of ids, read
 * back at random positions like a token cache: what `charnn eval` scores and what `charnn train
 * --val FILE` validates on. Memory does not depend on the text's length, and stdin works. The
 * file is unlinked as soon as it is written (the open descriptor keeps it readable), so nothing
 * is left behind by a crash; `close` releases it.
 */
export class EncodedText implements TokenReader {
  private buffer = new Uint32Array(0);

  private constructor(
    private readonly fd: number,
    /** Ids in the file (tokens after the unknown-token rule). */
    readonly length: number,
    /** Tokens read from the text, known or not. */
    readonly tokensRead: number,
    readonly unknown: UnknownTally,
  ) {}

  /**
   * Encode `source` (UTF-8 byte chunks) token by token with `vocab`.
   * @throws CharnnError for invalid UTF-8 (with invalidUtf8 `error`) or an unknown token (rule `error`).
   */
  static async encode(vocab: Vocabulary, source: AsyncIterable<Uint8Array> & { description?: string }, o: EncodeOptions): Promise<EncodedText> {
    const dir = makeTempDir('charnn-ids-', o.tmpDir);
    try {
      const path = join(dir, 'ids');
      const spill = new IdSpillWriter(path);
      const encoder = new VocabularyEncoder(vocab, { unknown: o.unknown, invalidUtf8: o.invalidUtf8, sourceName: source.description ?? 'the text' }, (id) =>
        spill.push(id),
      );
      try {
        for await (const chunk of source) encoder.push(chunk);
        encoder.end();
      } finally {
        spill.close();
      }
      return new EncodedText(openSync(path, 'r'), spill.count, encoder.tokensRead, encoder.tally);
    } finally {
      removeTempDir(dir);
    }
  }

  /** Copies ids [start, start + count) into out[outOffset ...]. */
  read(start: number, count: number, out: Int32Array, outOffset = 0): void {
    if (this.buffer.length < count) this.buffer = new Uint32Array(Math.max(count, 2 * this.buffer.length));
    const bytes = count * 4;
    let done = 0;
    while (done < bytes) {
      const n = readSync(this.fd, this.buffer, done, bytes - done, start * 4 + done);
      if (n === 0) throw new Error(`id file ended at token ${start + done / 4}`);
      done += n;
    }
    for (let i = 0; i < count; i++) out[outOffset + i] = this.buffer[i];
  }

  close(): void {
    closeSync(this.fd);
  }
}

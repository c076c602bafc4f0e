import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitTrainVal } from '../data/batcher.js';
import type { InvalidUtf8Mode } from '../data/config.js';
import { type UnknownTally, VocabularyEncoder } from '../data/encoder.js';
import { IdSpillWriter } from '../data/id-spill.js';
import type { UnknownTokenPolicy, Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import type { Model } from '../model/model.js';
import { evaluateRegion, type TokenSource } from '../train/evaluate.js';

/** Which part of the text to score: all of it, or the parts `charnn train` splits it into. */
export type EvalSplit = 'all' | 'val' | 'train';

export interface TextEvalOptions {
  /** Window length T. */
  seq: number;
  /** Parallel streams B (capped at the predictions available, as the trainer does). */
  batch: number;
  split: EvalSplit;
  /** The fraction held out for validation, for split val/train (the checkpoint's --val-frac). */
  valFrac: number;
  unknown: UnknownTokenPolicy;
  invalidUtf8: InvalidUtf8Mode;
  /** Where the temporary id file goes (default: the OS temporary directory). */
  tmpDir?: string;
}

export interface TextEvalResult {
  /** Tokens in the text after the unknown-token rule (ids the model reads). */
  tokens: number;
  /** Tokens read from the text, known or not. */
  tokensRead: number;
  /** The region scored: [start, end) of the ids. */
  region: [number, number];
  /** Predictions scored (each token after the first of each of the B streams). */
  scored: number;
  /** Mean cross-entropy, nats per prediction. */
  nats: number;
  /** nats / ln 2. */
  bits: number;
  /** exp(nats). */
  perplexity: number;
  seq: number;
  batch: number;
  unknown: UnknownTally;
}

/** Positional reads from a spill file of native-endian uint32 ids (written by IdSpillWriter). */
class SpillReader implements TokenSource {
  private readonly fd: number;
  private buffer = new Uint32Array(0);

  constructor(path: string) {
    this.fd = openSync(path, 'r');
  }

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

/**
 * Mean cross-entropy of a model over a text, carrying state across all of it. The text streams
 * through the model's vocabulary into a temporary file of ids (so memory does not depend on its
 * length, and stdin works), then `evaluateRegion` scores it exactly as the trainer validates:
 * B contiguous streams, windows of T, every prediction of every stream scored. With the
 * training corpus, split `val` and the checkpoint's T, B and --val-frac, the result is the
 * validation loss the trainer reported.
 */
export async function evaluateText(
  model: Model,
  vocab: Vocabulary,
  source: AsyncIterable<Uint8Array> & { description?: string },
  o: TextEvalOptions,
): Promise<TextEvalResult> {
  const dir = mkdtempSync(join(o.tmpDir ?? tmpdir(), 'charnn-eval-'));
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
    const n = spill.count;
    const [train, val] = splitTrainVal(n, o.split === 'all' ? 0 : o.valFrac);
    const region: [number, number] = o.split === 'val' ? [val[0], val[1]] : [train[0], train[1]];
    const length = region[1] - region[0];
    if (length < 2) {
      const where = o.split === 'all' ? (source.description ?? 'the text') : `the ${o.split === 'val' ? 'validation' : 'training'} part (--split ${o.split}) of ${source.description ?? 'the text'}`;
      throw new CharnnError(`${where} has ${length} token${length === 1 ? '' : 's'}; at least 2 are needed to score a prediction`, 'evaluate a longer text');
    }
    const B = Math.min(o.batch, length - 1);
    const reader = new SpillReader(path);
    let r;
    try {
      r = await evaluateRegion(model, reader, region[0], region[1], o.seq, B);
    } finally {
      reader.close();
    }
    return {
      tokens: n,
      tokensRead: encoder.tokensRead,
      region,
      scored: r.tokens,
      nats: r.loss,
      bits: r.loss / Math.LN2,
      perplexity: Math.exp(r.loss),
      seq: o.seq,
      batch: B,
      unknown: encoder.tally,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

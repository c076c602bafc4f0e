import { splitTrainVal } from '../data/batcher.js';
import { type EncodeOptions, EncodedText } from '../data/encoded-text.js';
import type { UnknownTally } from '../data/encoder.js';
import type { Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import type { Model } from '../model/model.js';
import { evaluateRegion } from '../train/evaluate.js';

/** Which part of the text to score: all of it, or the parts `charnn train` splits it into. */
export type EvalSplit = 'all' | 'val' | 'train';

export interface TextEvalOptions extends EncodeOptions {
  /** Window length T. */
  seq: number;
  /** Parallel streams B (capped at the predictions available, as the trainer does). */
  batch: number;
  split: EvalSplit;
  /** The fraction held out for validation, for split val/train (the checkpoint's --val-frac). */
  valFrac: number;
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
  const text = await EncodedText.encode(vocab, source, o);
  try {
    const n = text.length;
    const [train, val] = splitTrainVal(n, o.split === 'all' ? 0 : o.valFrac);
    const region: [number, number] = o.split === 'val' ? [val[0], val[1]] : [train[0], train[1]];
    const length = region[1] - region[0];
    if (length < 2) {
      const where = o.split === 'all' ? (source.description ?? 'the text') : `the ${o.split === 'val' ? 'validation' : 'training'} part (--split ${o.split}) of ${source.description ?? 'the text'}`;
      throw new CharnnError(`${where} has ${length} token${length === 1 ? '' : 's'}; at least 2 are needed to score a prediction`, 'evaluate a longer text');
    }
    const B = Math.min(o.batch, length - 1);
    const r = await evaluateRegion(model, text, region[0], region[1], o.seq, B);
    return {
      tokens: n,
      tokensRead: text.tokensRead,
      region,
      scored: r.tokens,
      nats: r.loss,
      bits: r.loss / Math.LN2,
      perplexity: Math.exp(r.loss),
      seq: o.seq,
      batch: B,
      unknown: text.unknown,
    };
  } finally {
    text.close();
  }
}

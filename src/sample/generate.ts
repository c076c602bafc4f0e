import { Detokenizer } from '../data/detokenizer.js';
import { encodeText } from '../data/encoder.js';
import type { Vocabulary } from '../data/vocabulary.js';
import type { Model } from '../model/model.js';
import { Random } from '../util/random.js';
import { Sampler, type SamplingOptions, validateSampling } from './sampler.js';

export interface GenerateOptions {
  /** Text to condition on; it is written out first. Empty = start from a newline (or token 0). */
  prime: string;
  /** Prime tokens outside the vocabulary: an error naming them, dropped, or mapped to <unk>. */
  unknown: 'error' | 'skip' | 'unk';
  /** Tokens to generate per sample; -1 = without end. */
  length: number;
  /** Number of samples, each from a fresh state. */
  count: number;
  separator: string;
  seed: number;
  sampling: SamplingOptions;
  /** Receives text as it is generated; awaited, so a slow consumer slows generation. */
  write: (text: string) => Promise<void>;
}

/**
 * Generate `count` samples token by token, writing each token's text as soon as it exists.
 * The same seed, model and options always give the same text.
 */
export async function generate(model: Model, vocab: Vocabulary, o: GenerateOptions): Promise<void> {
  validateSampling(o.sampling);
  const primeIds = o.prime ? Array.from(encodeText(vocab, o.prime, o.unknown).ids) : [];
  const rng = new Random(o.seed);
  let lastYield = performance.now();
  for (let s = 0; s < o.count; s++) {
    if (s > 0) await o.write(o.separator);
    const sampler = new Sampler(model);
    const detok = vocab.level === 'word' ? new Detokenizer() : null;
    const text = (id: number) => (detok ? detok.push(vocab.token(id)) : vocab.token(id));
    if (primeIds.length > 0) {
      let primeText = '';
      for (const id of primeIds) {
        sampler.feed(id);
        primeText += text(id);
      }
      await o.write(primeText);
    } else {
      sampler.feed(startToken(vocab));
    }
    for (let i = 0; o.length < 0 || i < o.length; i++) {
      const id = await sampler.next(o.sampling, rng);
      const t = text(id);
      if (t) await o.write(t);
      // Let the event loop run now and then: a closed stdout (EPIPE), a signal or a timer
      // must be noticed even when every await above resolves at once.
      if (performance.now() - lastYield > 50) {
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
  }
}

/** The token sampling starts from without a prime: a newline if the vocabulary has one, as if at a line start. */
export function startToken(vocab: Vocabulary): number {
  const nl = vocab.id('\n');
  return nl >= 0 ? nl : 0;
}

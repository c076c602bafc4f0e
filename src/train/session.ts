import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { saveModelFile } from '../checkpoint/contents.js';
import { StreamBatcher, splitTrainVal } from '../data/batcher.js';
import { type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { openCorpus } from '../data/source.js';
import { type TokenCache, buildTokenCache, cacheKeyFor, openTokenCache } from '../data/token-cache.js';
import type { Vocabulary } from '../data/vocabulary.js';
import type { ModelConfig } from '../model/config.js';
import { Model } from '../model/model.js';
import { startToken } from '../sample/generate.js';
import { type TrainConfig, validateTrainConfig } from './config.js';
import { Trainer, type TrainerData } from './trainer.js';

export interface TrainingSetup {
  /** Corpus path, or '-' for stdin. */
  corpus: string;
  tokenizer: TokenizerConfig;
  /** The model's shape; the vocabulary size comes from the corpus. */
  model: Omit<ModelConfig, 'vocabSize'>;
  train: TrainConfig;
  /** Where checkpoints go; the best-validation one goes beside it (see bestPathFor). */
  out: string;
  /** Directory for token caches (reused for unchanged files). */
  cacheDir: string;
  backend: Backend;
  /** Called while the corpus is read and tokenized (bytes read so far). */
  onTokenizeProgress?: (bytes: number) => void;
}

/** `model.charnn` -> `model.best.charnn`: the best-validation checkpoint of the same run. */
export function bestPathFor(out: string): string {
  const ext = extname(out);
  return join(dirname(out), `${basename(out, ext)}.best${ext || '.charnn'}`);
}

/**
 * Tokenize the corpus into a cache (or reuse one), or open it for training. A file's cache is
 * keyed by path, size, mtime and tokenizer settings, so a second run on the same file starts
 * at once; stdin is tokenized into a fresh cache every time.
 */
export async function prepareCorpus(
  corpus: string,
  tokenizer: TokenizerConfig,
  cacheDir: string,
  onProgress?: (bytes: number) => void,
): Promise<{ cache: TokenCache; reused: boolean }> {
  const config = canonicalTokenizerConfig(tokenizer);
  if (corpus === '-') {
    // stdin cannot be recognised next time: tokenize into a private cache and unlink it at
    // once (the open descriptor keeps it readable until the run ends).
    const path = join(cacheDir, `stdin-${process.pid}-${Date.now()}.ids`);
    const cache = await buildTokenCache(openCorpus(corpus), config, path, onProgress);
    rmSync(path, { force: true });
    return { cache, reused: false };
  }
  const path = join(cacheDir, `${cacheKeyFor(corpus, config)}.ids`);
  if (existsSync(path)) {
    try {
      return { cache: openTokenCache(path), reused: true };
    } catch {
      // A cache from an older format or a damaged one: rebuild it below.
    }
  }
  const cache = await buildTokenCache(openCorpus(corpus), config, path, onProgress);
  return { cache, reused: false };
}

/** Everything a training run needs, built from a corpus and options; `save` writes checkpoints. */
export class TrainingSession {
  private constructor(
    readonly setup: TrainingSetup,
    readonly cache: TokenCache,
    readonly vocabulary: Vocabulary,
    readonly trainer: Trainer,
    readonly trainTokens: number,
    readonly valTokens: number,
  ) {}

  static async create(setup: TrainingSetup): Promise<TrainingSession> {
    validateTrainConfig(setup.train);
    const { cache } = await prepareCorpus(setup.corpus, setup.tokenizer, setup.cacheDir, setup.onTokenizeProgress);
    const vocabulary = cache.vocab;
    const t = setup.train;
    const [train, val] = splitTrainVal(cache.length, t.valFrac);
    const batcher = new StreamBatcher(cache, { start: train[0], end: train[1], batch: t.batch, seq: t.seq });
    const modelConfig: ModelConfig = { ...setup.model, vocabSize: vocabulary.size };
    const model = Model.create(setup.backend, modelConfig, t.seed);
    const data: TrainerData = {
      cache,
      batcher,
      valStart: val[0],
      valEnd: val[1],
      decode: (ids) => vocabulary.decode(ids),
      sampleStartId: startToken(vocabulary),
    };
    const trainer = Trainer.fresh(model, t, data);
    return new TrainingSession(setup, cache, vocabulary, trainer, train[1] - train[0], val[1] - val[0]);
  }

  /** Write the run's checkpoint (to `out`, or the best-validation path). */
  async save(which: 'current' | 'best'): Promise<string> {
    const path = which === 'best' ? bestPathFor(this.setup.out) : this.setup.out;
    const tr = this.trainer;
    await saveModelFile(path, {
      model: tr.model,
      tokenizer: canonicalTokenizerConfig(this.setup.tokenizer),
      vocabulary: this.vocabulary,
      training: {
        meta: {
          config: tr.config,
          batcher: tr.data.batcher.state(),
          corpus: { source: this.setup.corpus, tokens: this.cache.length, trainTokens: this.trainTokens, valTokens: this.valTokens },
          state: { ...tr.state, rng: tr.rng.state() },
          optimizerStep: tr.optimizer.step,
          backend: tr.backend.name,
        },
        optimizerSlots: new Map([...tr.optimizer.slots].map(([k, v]) => [k, v.tensors])),
        carriedState: tr.runner.stateTensors(),
      },
    });
    return path;
  }

  close(): void {
    this.cache.close();
  }
}

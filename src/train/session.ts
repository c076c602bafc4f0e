import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Backend } from '../backend/backend.js';
import { crc32 } from '../util/crc32.js';
import { type TrainingFile, saveModelFile, tensorValues } from '../modelfile/contents.js';
import { StreamBatcher, splitTrainVal } from '../data/batcher.js';
import { type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { hashFile } from '../data/content-hash.js';
import { openCorpus } from '../data/source.js';
import { type TokenCache, type TokenReader, buildTokenCache, cacheKeyFor, openTokenCache } from '../data/token-cache.js';
import { EncodedText } from '../data/encoded-text.js';
import { defaultUnknownPolicy, summarizeUnknown } from '../data/encoder.js';
import { UNK_TOKEN, Vocabulary } from '../data/vocabulary.js';
import { CharnnError, UsageError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { Model } from '../model/model.js';
import { ParamInitializer, type ParamSpec, parameterCount, paramSpecs } from '../model/params.js';
import { startToken } from '../sample/generate.js';
import { type TrainConfig, validateTrainConfig } from './config.js';
import { Optimizer } from './optimizer.js';
import { type TrainState, Trainer, type TrainerData } from './trainer.js';
import { quoteText } from '../util/visible-text.js';

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

/**
 * What to do with tokens of the corpus that the resumed model's vocabulary lacks: stop with an
 * error naming them, read them as `<unk>` (word level), or add them to the vocabulary (the new
 * rows and columns of the weights start as a fresh model's would, their optimizer state at 0).
 */
export type NewTokenPolicy = 'error' | 'unk' | 'grow';
export const NEW_TOKEN_POLICIES: readonly NewTokenPolicy[] = ['error', 'unk', 'grow'];

export interface ResumeSetup {
  /** The checkpoint to continue (see readTrainingFile). */
  from: TrainingFile;
  /** Corpus path, or '-' for stdin: the run's own corpus for an exact continuation. */
  corpus: string;
  /**
   * The training options from here on: the stored ones, with only what may change on resume
   * changed (stop conditions, frequencies, learning rate and its schedule, clipping). Batch,
   * window, validation split, optimizer and seed must be the stored ones.
   */
  train: TrainConfig;
  /** The stored tokenizer settings (only invalidUtf8 may differ). */
  tokenizer: TokenizerConfig;
  out: string;
  cacheDir: string;
  backend: Backend;
  newTokens: NewTokenPolicy;
  /** A new learning rate from here on (replacing the stored, possibly decayed, one). */
  lr?: number;
  /** New stop conditions were given: a --time run's schedule horizon is estimated anew for them. */
  newStopConditions?: boolean;
  onTokenizeProgress?: (bytes: number) => void;
}

/** How a resumed session relates to the run it continues. */
export interface ResumeInfo {
  from: string;
  iteration: number;
  /**
   * The corpus has the same tokens as the run's: the data position of every stream and the
   * carried hidden state continue exactly. Otherwise training starts at the new text's beginning
   * with fresh state (the weights, optimizer and counters still continue).
   */
  sameCorpus: boolean;
  /** Tokens added to the vocabulary (--new-tokens grow). */
  addedTokens: string[];
  /** Tokens read as <unk> (--new-tokens unk). */
  unknownTokens: string[];
  /**
   * With --val FILE: the file has the tokens the run validated on (false when it changed, or
   * the vocabulary grew: the best validation loss so far was measured on other tokens).
   */
  sameValidation: boolean;
}

/**
 * The validation text of a run with --val FILE, read with the model's vocabulary as `charnn
 * eval` reads a text by default: at character level, characters the vocabulary lacks are
 * dropped; at word level they read as <unk>.
 */
export interface ValidationText {
  /** The path as given. */
  file: string;
  /** Its ids in the model's vocabulary. */
  tokens: EncodedText;
  /** CRC-32 of those ids (stored in checkpoints; tells a resumed run whether it changed). */
  checksum: number;
}

/**
 * Read `file` through `vocabulary` for validation.
 * @throws CharnnError for a missing or unreadable file, invalid UTF-8 (per `tokenizer`), or
 * fewer than 2 tokens in the vocabulary (nothing to score).
 */
export async function openValidationText(file: string, vocabulary: Vocabulary, tokenizer: TokenizerConfig): Promise<ValidationText> {
  const tokens = await EncodedText.encode(vocabulary, openCorpus(file), { unknown: defaultUnknownPolicy(vocabulary), invalidUtf8: tokenizer.invalidUtf8 });
  if (tokens.length < 2) {
    tokens.close();
    const dropped = tokens.tokensRead > tokens.length ? ` (${tokens.tokensRead - tokens.length} more outside the model's vocabulary are dropped)` : '';
    throw new CharnnError(
      `validation file ${file} has ${tokens.length} token${tokens.length === 1 ? '' : 's'} the model can read${dropped}; at least 2 are needed to score a prediction`,
      'pass a longer --val file, or validate on the corpus tail with --val-frac',
    );
  }
  return { file, tokens, checksum: tokenChecksum(tokens) };
}

/** One line for the log: the file, its tokens, and what became of those the vocabulary lacks. */
export function describeValidation(v: ValidationText, vocabulary: Vocabulary): string {
  const u = v.tokens.unknown;
  const noun = vocabulary.level === 'char' ? 'characters' : 'tokens';
  const unknown =
    u.count === 0 ? '' : `; ${u.count.toLocaleString('en-US')} ${noun} outside the vocabulary ${u.rule === 'unk' ? `read as ${UNK_TOKEN}` : 'dropped'} (${summarizeUnknown(u)}), as charnn eval does`;
  return `validating on ${v.file}: ${v.tokens.length.toLocaleString('en-US')} tokens${unknown}`;
}

/** The most parameters a model may have: each tensor and every optimizer slot must fit in memory. */
export const MAX_PARAMETERS = 2 ** 31;

/**
 * Refuse a model too large to allocate (say --layers 1e9) with a usage error instead of running
 * out of memory. Before the corpus is read, `vocabularyKnown` is false and the size a lower bound.
 */
export function checkModelSize(c: ModelConfig, vocabularyKnown = true): void {
  const n = parameterCount(c);
  if (n > MAX_PARAMETERS) {
    const shape = `a ${c.layers}x${c.hidden} ${c.cell}${c.embed > 0 ? ` with embedding ${c.embed}` : ''}`;
    throw new UsageError(
      `${shape}${vocabularyKnown ? ` over ${c.vocabSize} tokens` : ''} would have ${vocabularyKnown ? '' : 'at least '}${n.toExponential(2)} parameters, more than charnn handles (2^31)`,
      'use a smaller --hidden, --layers or --embed, or at word level a smaller --vocab-size',
    );
  }
}

/** `model.charnn` -> `model.best.charnn`: the best-validation checkpoint of the same run. */
export function bestPathFor(out: string): string {
  const ext = extname(out);
  return join(dirname(out), `${basename(out, ext)}.best${ext || '.charnn'}`);
}

/**
 * Tokenize the corpus into a cache (or reuse one), or open it for training. A file's cache is
 * found by path, size, mtime and tokenizer settings and reused only when the file's bytes
 * still hash to the SHA-256 the cache recorded (one streaming read; 5 ms for tinyshakespeare),
 * so a second run on the same file starts at once and a different text never gets stale
 * tokens; stdin is tokenized into a fresh cache every time.
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
    let cache: TokenCache | null = null;
    try {
      cache = openTokenCache(path);
    } catch {
      // A cache from an older format or a damaged one: rebuild it below.
    }
    // The key (path, size, mtime) finds the cache; only the bytes' hash proves it is this text's.
    if (cache && cache.contentSha256 === (await hashFile(corpus))) return { cache, reused: true };
    cache?.close();
  }
  const cache = await buildTokenCache(openCorpus(corpus), config, path, onProgress);
  return { cache, reused: false };
}

/** A token reader that translates the ids of another through a table (corpus ids -> model ids). */
class MappedTokens implements TokenReader {
  readonly length: number;
  constructor(
    private readonly inner: TokenReader,
    private readonly map: Int32Array,
  ) {
    this.length = inner.length;
  }

  read(start: number, count: number, out: Int32Array, outOffset = 0): void {
    this.inner.read(start, count, out, outOffset);
    for (let i = outOffset; i < outOffset + count; i++) out[i] = this.map[out[i]];
  }
}

/** CRC-32 of every token id (as little-endian int32), read in blocks: identifies a corpus's tokens. */
export function tokenChecksum(tokens: TokenReader): number {
  const block = new Int32Array(Math.min(1 << 20, Math.max(1, tokens.length)));
  const bytes = new Uint8Array(block.buffer);
  const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  let crc = 0;
  for (let start = 0; start < tokens.length; start += block.length) {
    const n = Math.min(block.length, tokens.length - start);
    tokens.read(start, n, block);
    if (!littleEndian) for (let i = 0; i < n; i++) block[i] = ((block[i] & 0xff) << 24) | ((block[i] & 0xff00) << 8) | ((block[i] >>> 8) & 0xff00) | (block[i] >>> 24);
    crc = crc32(bytes.subarray(0, n * 4), crc);
  }
  return crc >>> 0;
}

/**
 * The model vocabulary a resumed run trains with, and how the corpus's ids map into it. Tokens
 * the model lacks are an error naming them, unless `policy` says to grow or to use <unk>.
 */
function reconcileVocabulary(
  model: Vocabulary,
  corpus: Vocabulary,
  policy: NewTokenPolicy,
  corpusName: string,
): { vocabulary: Vocabulary; map: Int32Array | null; added: string[]; unknown: string[] } {
  const map = new Int32Array(corpus.size);
  const unseen: number[] = [];
  corpus.tokens.forEach((token, i) => {
    map[i] = model.id(token);
    if (map[i] < 0) unseen.push(i);
  });
  const unseenTokens = unseen.map((i) => corpus.tokens[i]);
  let vocabulary = model;
  if (unseen.length > 0) {
    if (policy === 'error') {
      const shown = unseenTokens.slice(0, 8).map(quoteText).join(', ');
      const more = unseen.length > 8 ? ` and ${unseen.length - 8} more` : '';
      const noun = model.level === 'char' ? 'character' : 'token';
      throw new CharnnError(
        `${corpusName} has ${unseen.length} ${noun}${unseen.length === 1 ? '' : 's'} the model's vocabulary lacks: ${shown}${more}`,
        model.level === 'char'
          ? 'pass --new-tokens grow to add them to the model, or resume on the corpus the run trained on'
          : `pass --new-tokens grow to add them to the model, or --new-tokens unk to read them as ${UNK_TOKEN}`,
      );
    }
    if (policy === 'unk') {
      if (model.unkId < 0) {
        throw new UsageError(
          `--new-tokens unk needs a word-level model: a character vocabulary has no ${UNK_TOKEN}`,
          'pass --new-tokens grow to add the new characters instead',
        );
      }
      for (const i of unseen) map[i] = model.unkId;
      // As a new run with every word below --min-count: a corpus read as <unk> alone cannot be learned.
      if (corpus.tokens.every((token, i) => token === UNK_TOKEN || map[i] === model.unkId)) {
        throw new UsageError(
          `--new-tokens unk would read every token of ${corpusName} as ${UNK_TOKEN}: the model knows none of its words`,
          'resume on a text in the model\'s language, or pass --new-tokens grow',
        );
      }
    } else {
      vocabulary = new Vocabulary(model.level, [...model.tokens, ...unseenTokens], model.wordSplit, model.lineEndings);
      unseen.forEach((i, k) => (map[i] = model.size + k));
    }
  }
  const identity = corpus.size === vocabulary.size && map.every((id, i) => id === i);
  return {
    vocabulary,
    map: identity ? null : map,
    added: policy === 'grow' ? unseenTokens : [],
    unknown: policy === 'unk' ? unseenTokens : [],
  };
}

/**
 * `data` (a tensor of the old shape) embedded in a tensor of `shape`, which may be larger in one
 * dimension (the vocabulary grew): the new entries come from `fill`.
 */
function grown(data: Float32Array, oldShape: readonly number[], shape: readonly number[], fill: () => Float32Array): Float32Array {
  if (oldShape.every((d, i) => d === shape[i])) return data;
  const out = fill();
  if (shape.length === 1) {
    out.set(data.subarray(0, oldShape[0]));
    return out;
  }
  const [r0, c0] = oldShape;
  const c1 = shape[1];
  for (let r = 0; r < r0; r++) out.set(data.subarray(r * c0, (r + 1) * c0), r * c1);
  return out;
}

/** Everything a training run needs, built from a corpus and options; `save` writes checkpoints. */
export class TrainingSession {
  /** CRC-32 of the tokens as the model sees them, computed once when first needed. */
  private checksum: number | undefined;

  private constructor(
    /** The corpus as given: a path, or '-' for stdin. */
    readonly corpus: string,
    readonly tokenizer: TokenizerConfig,
    readonly out: string,
    /** The token cache of the corpus (ids in the corpus's own vocabulary). */
    readonly cache: TokenCache,
    /** The model's vocabulary. */
    readonly vocabulary: Vocabulary,
    readonly trainer: Trainer,
    readonly trainTokens: number,
    readonly valTokens: number,
    /** The validation text of a run with --val FILE (else validation reads the corpus tail). */
    readonly validation: ValidationText | null,
    /** Set when the session continues a checkpoint. */
    readonly resumed: ResumeInfo | null = null,
  ) {}

  /** The corpus's tokens as ids of the model's vocabulary (what training and validation read). */
  get tokens(): TokenReader {
    return this.trainer.data.cache;
  }

  static async create(setup: TrainingSetup): Promise<TrainingSession> {
    validateTrainConfig(setup.train);
    const { cache } = await prepareCorpus(setup.corpus, setup.tokenizer, setup.cacheDir, setup.onTokenizeProgress);
    let validation: ValidationText | null = null;
    try {
      const vocabulary = cache.vocab;
      const t = setup.train;
      if (t.valFile !== undefined) validation = await openValidationText(t.valFile, vocabulary, setup.tokenizer);
      const { data, trainTokens, valTokens } = trainerData(cache, t, vocabulary, validation);
      const modelConfig: ModelConfig = { ...setup.model, vocabSize: vocabulary.size };
      checkModelSize(modelConfig);
      const model = Model.create(setup.backend, modelConfig, t.seed);
      const trainer = Trainer.fresh(model, t, data);
      return new TrainingSession(setup.corpus, setup.tokenizer, setup.out, cache, vocabulary, trainer, trainTokens, valTokens, validation);
    } catch (err) {
      cache.close();
      validation?.tokens.close();
      throw err;
    }
  }

  /**
   * Continue the run a checkpoint holds: its weights, optimizer slots and step count, iteration,
   * epoch, learning rate, RNG state, smoothed and best validation loss, and, on the same corpus,
   * the data position of every stream and their carried hidden state. Training on from here
   * gives bit for bit the weights an uninterrupted run would have had.
   */
  static async resume(setup: ResumeSetup): Promise<TrainingSession> {
    const { from, train: t, backend } = setup;
    const stored = from.meta.training;
    validateTrainConfig(t);
    const { cache } = await prepareCorpus(setup.corpus, setup.tokenizer, setup.cacheDir, setup.onTokenizeProgress);
    let validation: ValidationText | null = null;
    try {
      const corpusName = setup.corpus === '-' ? 'stdin' : setup.corpus;
      const { vocabulary, map, added, unknown } = reconcileVocabulary(from.vocabulary, cache.vocab, setup.newTokens, corpusName);
      const tokens: TokenReader = map ? new MappedTokens(cache, map) : cache;
      if (t.valFile !== undefined) validation = await openValidationText(t.valFile, vocabulary, setup.tokenizer);
      const { data, trainTokens, valTokens } = trainerData(tokens, t, vocabulary, validation);
      const checksum = tokenChecksum(tokens);
      const sc = stored.corpus;
      const sameCorpus =
        added.length === 0 &&
        sc.tokens === tokens.length &&
        sc.trainTokens === trainTokens &&
        (sc.checksum === undefined || sc.checksum === checksum);

      // Weights and optimizer slots, grown by the new tokens' rows/columns if the vocabulary grew.
      const storedConfig = from.meta.model;
      const config: ModelConfig = { ...storedConfig, vocabSize: vocabulary.size };
      checkModelSize(config);
      const oldSpecs = paramSpecs(storedConfig);
      const init = new ParamInitializer((t.seed ^ 0x67726f77) >>> 0); // draws only for grown tensors
      const load = (prefix: string, spec: ParamSpec, i: number, fill: () => Float32Array) =>
        grown(tensorValues(from.checkpoint, prefix + spec.name, oldSpecs[i].shape), oldSpecs[i].shape, spec.shape, fill);
      const specs = paramSpecs(config);
      const values = new Map(specs.map((spec, i) => [spec.name, load('', spec, i, () => init.values(spec))]));
      const model = Model.fromValues(backend, config, (name) => values.get(name)!);

      const optimizer = new Optimizer(backend, t.optimizer, model.params);
      for (const [slot, set] of optimizer.slots) {
        specs.forEach((spec, i) => {
          const zeros = () => new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
          backend.write(set.tensors[i], load(`optim.${slot}.`, spec, i, zeros));
        });
      }
      optimizer.step = stored.optimizerStep;

      const state: TrainState = structuredClone(stored.state);
      if (setup.lr !== undefined) state.lr = setup.lr;
      if (setup.newStopConditions) delete state.scheduleEnd;
      const trainer = new Trainer(model, t, data, optimizer, state);
      if (sameCorpus) {
        data.batcher.restore(stored.batcher);
        trainer.runner.stateTensors().forEach(({ h, c }, l) => {
          const shape = [t.batch, storedConfig.hidden];
          backend.write(h, tensorValues(from.checkpoint, `state.${l}.h`, shape));
          if (c) backend.write(c, tensorValues(from.checkpoint, `state.${l}.c`, shape));
        });
      }
      const sameValidation = validation !== null && sc.valChecksum === validation.checksum && sc.valTokens === validation.tokens.length;
      const info: ResumeInfo = { from: from.path, iteration: state.iteration, sameCorpus, addedTokens: added, unknownTokens: unknown, sameValidation };
      const session = new TrainingSession(setup.corpus, setup.tokenizer, setup.out, cache, vocabulary, trainer, trainTokens, valTokens, validation, info);
      session.checksum = checksum;
      return session;
    } catch (err) {
      cache.close();
      validation?.tokens.close();
      throw err;
    }
  }

  /** Write the run's checkpoint (to `out`, or the best-validation path). */
  async save(which: 'current' | 'best'): Promise<string> {
    const path = which === 'best' ? bestPathFor(this.out) : this.out;
    const tr = this.trainer;
    this.checksum ??= tokenChecksum(this.tokens);
    await saveModelFile(path, {
      model: tr.model,
      tokenizer: canonicalTokenizerConfig(this.tokenizer),
      vocabulary: this.vocabulary,
      training: {
        meta: {
          config: tr.config,
          batcher: tr.data.batcher.state(),
          corpus: {
            source: this.corpus,
            tokens: this.tokens.length,
            trainTokens: this.trainTokens,
            valTokens: this.valTokens,
            checksum: this.checksum,
            ...(this.validation ? { valChecksum: this.validation.checksum } : {}),
          },
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
    this.validation?.tokens.close();
  }
}

/**
 * The batcher over the training split and the validation region: the corpus's tail, or with
 * --val FILE (valFrac 0, so the whole corpus trains) all of that file's tokens.
 */
function trainerData(
  tokens: TokenReader,
  t: TrainConfig,
  vocabulary: Vocabulary,
  validation: ValidationText | null,
): { data: TrainerData; trainTokens: number; valTokens: number } {
  const [train, tail] = splitTrainVal(tokens.length, t.valFrac);
  const val = validation ? [0, validation.tokens.length] : tail;
  const batcher = new StreamBatcher(tokens, { start: train[0], end: train[1], batch: t.batch, seq: t.seq });
  const data: TrainerData = {
    cache: tokens,
    batcher,
    valStart: val[0],
    valEnd: val[1],
    ...(validation ? { valReader: validation.tokens } : {}),
    decode: (ids) => vocabulary.decode(ids),
    sampleStartId: startToken(vocabulary),
  };
  return { data, trainTokens: train[1] - train[0], valTokens: val[1] - val[0] };
}

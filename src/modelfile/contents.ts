import type { Backend, Tensor } from '../backend/backend.js';
import type { BatcherState } from '../data/batcher.js';
import { type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import { type ModelConfig, validateModelConfig } from '../model/config.js';
import { Model } from '../model/model.js';
import type { TrainConfig } from '../train/config.js';
import { OPTIMIZERS, type OptimizerName } from '../train/optimizer.js';
import type { TrainState } from '../train/trainer.js';
import { readCheckpoint } from '../checkpoint/read.js';
import { type Checkpoint, type CheckpointTensor, requireTensor } from '../checkpoint/types.js';
import { writeCheckpoint } from '../checkpoint/write.js';
import { requireFinite } from './finite.js';

/** The charnn release that wrote a file, for `info` and for diagnosing old files. */
export const CHARNN_VERSION = '0.1.0';

/**
 * What a charnn model file says about itself (the checkpoint's JSON header). Tensors:
 * every model parameter by its ParamSpec name (`layers.0.Wx`, `out.W`, ...); when the file
 * continues a training run, also `optim.<slot>.<param>` (optimizer state) and
 * `state.<layer>.h` / `state.<layer>.c` (the carried hidden state of every stream, [B, H]).
 */
export interface ModelFileMeta {
  kind: 'charnn-model';
  charnnVersion: string;
  model: ModelConfig;
  tokenizer: TokenizerConfig;
  vocabulary: unknown;
  training?: {
    config: TrainConfig;
    /** The StreamBatcher's position (epoch, window) for exact resume. */
    batcher: BatcherState;
    /**
     * The corpus as given (a path, or '-' for stdin), its token counts and a CRC-32 of its token
     * ids in the model's vocabulary: a resumed run continues the data position and carried
     * state only on the same tokens. With --val FILE (`config.valFile`), valTokens counts that
     * file's tokens and valChecksum is their CRC-32 (absent otherwise, and in older files).
     */
    corpus: { source: string; tokens: number; trainTokens: number; valTokens: number; checksum?: number; valChecksum?: number };
    state: TrainState;
    optimizerStep: number;
    /** Backend that trained it (informational: every backend reads every checkpoint). */
    backend: string;
  };
}

/** Everything needed to write a model file. */
export interface ModelFileContents {
  model: Model;
  tokenizer: TokenizerConfig;
  vocabulary: Vocabulary;
  training?: {
    meta: NonNullable<ModelFileMeta['training']>;
    optimizerSlots: Map<string, readonly Tensor[]>;
    carriedState: Array<{ h: Tensor; c: Tensor | null }>;
  };
}

async function tensorFrom(be: Backend, name: string, t: Tensor): Promise<CheckpointTensor> {
  const values = await be.read(t);
  return { name, shape: [...t.shape], data: values instanceof Float32Array ? values : Float32Array.from(values) };
}

/** Assemble and atomically write a model file. */
export async function saveModelFile(path: string, c: ModelFileContents): Promise<void> {
  const be = c.model.backend;
  const params = c.model.params;
  const tensors: CheckpointTensor[] = [];
  for (let i = 0; i < params.specs.length; i++) tensors.push(await tensorFrom(be, params.specs[i].name, params.tensors[i]));
  const meta: ModelFileMeta = {
    kind: 'charnn-model',
    charnnVersion: CHARNN_VERSION,
    model: c.model.config,
    tokenizer: c.tokenizer,
    vocabulary: c.vocabulary.toJSON(),
  };
  if (c.training) {
    meta.training = c.training.meta;
    for (const [slot, slotTensors] of c.training.optimizerSlots) {
      for (let i = 0; i < params.specs.length; i++) {
        tensors.push(await tensorFrom(be, `optim.${slot}.${params.specs[i].name}`, slotTensors[i]));
      }
    }
    for (let l = 0; l < c.training.carriedState.length; l++) {
      const { h, c: cell } = c.training.carriedState[l];
      tensors.push(await tensorFrom(be, `state.${l}.h`, h));
      if (cell) tensors.push(await tensorFrom(be, `state.${l}.c`, cell));
    }
  }
  const checkpoint: Checkpoint = { meta: meta as unknown as Record<string, unknown>, tensors };
  await writeCheckpoint(path, checkpoint);
}

/** A model file read back: the model on a backend, its vocabulary, and the raw checkpoint. */
export interface LoadedModelFile {
  meta: ModelFileMeta;
  model: Model;
  vocabulary: Vocabulary;
  checkpoint: Checkpoint;
}

/** Read a model file and build the model on `backend`. */
export async function loadModelFile(path: string, backend: Backend): Promise<LoadedModelFile> {
  const checkpoint = await readCheckpoint(path);
  const meta = checkpoint.meta as unknown as ModelFileMeta;
  if (meta.kind !== 'charnn-model' || typeof meta.model !== 'object' || meta.model === null) {
    throw new CharnnError(`${path} is a charnn checkpoint but not a model file`, 'pass a file written by charnn train');
  }
  const vocabulary = Vocabulary.fromJSON(meta.vocabulary);
  if (vocabulary.size !== meta.model.vocabSize) {
    throw new CharnnError(`${path}: vocabulary has ${vocabulary.size} tokens but the model expects ${meta.model.vocabSize}`, 'the file is inconsistent; retrain');
  }
  requireFiniteTensors(path, checkpoint);
  const model = Model.fromValues(backend, meta.model, (name) => requireTensor(checkpoint, name).data);
  return { meta, model, vocabulary, checkpoint };
}

/** A model file that continues a training run (`charnn train --resume`). */
export interface TrainingFile {
  path: string;
  meta: ModelFileMeta & { training: NonNullable<ModelFileMeta['training']> };
  vocabulary: Vocabulary;
  checkpoint: Checkpoint;
}

/**
 * Read a checkpoint to resume training from: fully validated (checksum included), with the
 * training state checked field by field, so that a damaged or foreign file ends in a
 * one-line CharnnError rather than a confusing failure halfway through setting up. JSON has no
 * Infinity: a best validation loss not yet set comes back as null and is restored here.
 */
export async function readTrainingFile(path: string): Promise<TrainingFile> {
  const checkpoint = await readCheckpoint(path);
  const meta = checkpoint.meta as unknown as ModelFileMeta;
  if (meta.kind !== 'charnn-model' || !isRecord(meta.model)) {
    throw new CharnnError(`${path} is a charnn checkpoint but not a model file`, 'pass a file written by charnn train');
  }
  try {
    validateModelConfig(meta.model);
  } catch {
    throw new CharnnError(`${path} has a malformed model description`, 'the file was not written by a compatible charnn; start a new run');
  }
  // The description must match the tensors before anything is sized from it (a forged
  // "layers": 1e12 would otherwise be looped over).
  const m = meta.model;
  const layerTensors = checkpoint.tensors.filter((x) => /^layers\.\d+\.Wx$/.test(x.name)).length;
  const outB = checkpoint.tensors.find((x) => x.name === 'out.b');
  const wh0 = checkpoint.tensors.find((x) => x.name === 'layers.0.Wh');
  if (layerTensors !== m.layers || !outB || outB.shape[0] !== m.vocabSize || !wh0 || wh0.shape[0] !== m.hidden) {
    throw new CharnnError(`${path}: the model description does not match its tensors`, 'the file was not written by a compatible charnn; start a new run');
  }
  const tok = meta.tokenizer as unknown;
  const badTokenizer = () => new CharnnError(`${path} has a malformed tokenizer description`, 'the file was not written by a compatible charnn; start a new run');
  if (!isRecord(tok) || (tok.level !== 'char' && tok.level !== 'word') || (tok.invalidUtf8 !== 'error' && tok.invalidUtf8 !== 'replace')) throw badTokenizer();
  try {
    canonicalTokenizerConfig(tok as unknown as TokenizerConfig);
  } catch {
    throw badTokenizer();
  }
  const t = meta.training as unknown;
  if (!isRecord(t)) {
    throw new CharnnError(`${path} holds a model but no training state, so it cannot be resumed`, 'start a new run, or resume from a checkpoint charnn train wrote');
  }
  const bad = (field: string) =>
    new CharnnError(`${path} has a malformed training state (${field})`, 'the file was not written by a compatible charnn; start a new run');
  const numbers = (obj: unknown, where: string, keys: string[]) => {
    if (!isRecord(obj)) throw bad(where);
    for (const k of keys) if (typeof obj[k] !== 'number') throw bad(`${where}.${k}`);
  };
  numbers(t.config, 'config', ['batch', 'seq', 'clip', 'clipNorm', 'lrDecay', 'lrDecayEvery', 'seed', 'iters', 'epochs', 'timeSeconds', 'evalEvery', 'sampleLength', 'saveEvery', 'valFrac']);
  const config = t.config as Record<string, unknown>;
  numbers(config.optimizer, 'config.optimizer', ['lr', 'eps', 'alpha', 'beta1', 'beta2']);
  if (!OPTIMIZERS.includes((config.optimizer as Record<string, unknown>).name as OptimizerName)) throw bad('config.optimizer.name');
  numbers(t.batcher, 'batcher', ['epoch', 'windowInEpoch']);
  numbers(t.corpus, 'corpus', ['tokens', 'trainTokens', 'valTokens']);
  if (typeof (t.corpus as Record<string, unknown>).source !== 'string') throw bad('corpus.source');
  if (config.valFile !== undefined && (typeof config.valFile !== 'string' || config.valFile === '')) throw bad('config.valFile');
  if (typeof t.optimizerStep !== 'number') throw bad('optimizerStep');
  const state = t.state as Record<string, unknown>;
  if (isRecord(state) && state.bestValLoss === null) state.bestValLoss = Infinity;
  numbers(state, 'state', ['iteration', 'epoch', 'lr', 'smoothLoss', 'bestValLoss', 'bestValIteration', 'tokensSeen', 'elapsedSeconds']);
  const rng = state.rng;
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) || rng.every((w) => w === 0)) throw bad('state.rng');
  const history = state.history as Record<string, unknown> | undefined;
  if (!isRecord(history) || !Array.isArray(history.train) || !Array.isArray(history.val)) state.history = { train: [], val: [] };
  const vocabulary = Vocabulary.fromJSON(meta.vocabulary);
  if (vocabulary.size !== meta.model.vocabSize) {
    throw new CharnnError(`${path}: vocabulary has ${vocabulary.size} tokens but the model expects ${meta.model.vocabSize}`, 'the file is inconsistent; retrain');
  }
  requireFiniteTensors(path, checkpoint);
  return { path, meta: meta as TrainingFile['meta'], vocabulary, checkpoint };
}

/** Every tensor of a model file (weights, optimizer and carried state) must be finite: see requireFinite. */
function requireFiniteTensors(path: string, checkpoint: Checkpoint): void {
  for (const t of checkpoint.tensors) requireFinite(path, t.name, t.data);
}

/**
 * The values of tensor `name`, which must have `shape`: a file whose tensor has another shape
 * than its own header implies is damaged or foreign, a CharnnError rather than a crash later.
 */
export function tensorValues(checkpoint: Checkpoint, name: string, shape: readonly number[]): Float32Array {
  const t = requireTensor(checkpoint, name);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CharnnError(
      `checkpoint tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`,
      'the file does not match its own model description; it was not written by a compatible charnn',
    );
  }
  return t.data;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

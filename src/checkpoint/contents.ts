import type { Backend, Tensor } from '../backend/backend.js';
import type { TokenizerConfig } from '../data/config.js';
import { Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { Model } from '../model/model.js';
import type { TrainConfig } from '../train/config.js';
import type { TrainState } from '../train/trainer.js';
import { readCheckpoint } from './read.js';
import { type Checkpoint, type CheckpointTensor, requireTensor } from './types.js';
import { writeCheckpoint } from './write.js';

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
    batcher: unknown;
    corpus: { source: string; tokens: number; trainTokens: number; valTokens: number };
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
  const model = Model.fromValues(backend, meta.model, (name) => requireTensor(checkpoint, name).data);
  return { meta, model, vocabulary, checkpoint };
}

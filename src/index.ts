/**
 * charnn as a library: what a program needs to train, load, sample, evaluate, inspect and
 * convert models without the CLI. Internals (the backends' helpers, the checkpoint container's
 * codec, the token cache, the optimizers' state) stay private to the package.
 *
 *   import { loadModelFile, selectBackend, generate, Sampler } from 'charnn';
 *   const { backend } = await selectBackend('auto', 'cpu');
 *   const { model, vocabulary } = await loadModelFile('shakespeare.charnn', backend);
 */

// Backends: the seam every number goes through, and how to pick one.
export type { Backend, DType, HostArray, Tensor } from './backend/backend.js';
export { ReferenceBackend } from './backend/reference.js';
export { selectBackend, type BackendChoice, type DeviceChoice } from './backend/select.js';
export { GpuBackend, type GpuMode } from './backend/gpu.js';

// Text: corpora, tokenizers and vocabularies.
export { openCorpus, type Corpus } from './data/source.js';
export { canonicalTokenizerConfig, type InvalidUtf8Mode, type TokenizerConfig, type TokenLevel, type WordSplit } from './data/config.js';
export { Vocabulary, UNK_TOKEN, type UnknownTokenPolicy, type VocabularyJSON } from './data/vocabulary.js';
export { Detokenizer, detokenize } from './data/detokenizer.js';

// Models: the cells, a model's shape, the model and the runner of its windows.
export { CELLS, CELL_NAMES, findCell, type CellSpec } from './model/cells/index.js';
export { type ModelConfig, type CellType, validateModelConfig } from './model/config.js';
export { Model, WindowRunner } from './model/model.js';
export { ParamSet, paramSpecs, parameterCount, type ParamSpec } from './model/params.js';

// Training.
export { type TrainConfig, validateTrainConfig } from './train/config.js';
export { OPTIMIZERS, defaultOptimizerConfig, type OptimizerConfig, type OptimizerName } from './train/optimizer.js';
export { Trainer, type TrainState, type TrainObserver, type StepReport, type EvalReport, type StopReason } from './train/trainer.js';
export { TrainingSession, bestPathFor, type TrainingSetup } from './train/session.js';

// Model files, and their PyTorch twins.
export { saveModelFile, loadModelFile, readTrainingFile, CHARNN_VERSION, type ModelFileMeta, type LoadedModelFile, type TrainingFile } from './modelfile/contents.js';
export { exportTorchModel, importTorchModel, sidecarPathFor, type TorchModelDescription } from './modelfile/torch-export.js';

// Sampling, evaluation and inspection.
export { Sampler, pick, DEFAULT_SAMPLING, type SamplingOptions } from './sample/sampler.js';
export { generate, startToken, type GenerateOptions } from './sample/generate.js';
export { evaluateText, type TextEvalOptions, type TextEvalResult, type EvalSplit } from './inspect/eval.js';
export { runDump, DUMP_FORMATS, type DumpFormat, type DumpOptions, type DumpResult } from './inspect/dump.js';
export { describeModelFile, renderInfoText, renderInfoJSON, lossCurveSvg, type ModelInfo } from './inspect/info.js';

export { Random } from './util/random.js';
export { CharnnError, UsageError } from './errors.js';

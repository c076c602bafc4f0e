/**
 * The checkpoint file layer: a JSON header plus named float32 tensors in one checksummed file
 * (format documented in format.ts). It knows nothing about models; callers decide what the
 * metadata and tensors mean.
 */
export type { Checkpoint, CheckpointHeader, CheckpointTensor, CheckpointTensorInfo } from './types.js';
export { findTensor, requireTensor } from './types.js';
export { FORMAT_VERSION, MAGIC } from './format.js';
export { CheckpointFormatError, type CheckpointProblem } from './format-error.js';
export { encodeCheckpoint } from './encode.js';
export { decodeCheckpoint, type DecodeOptions } from './decode.js';
export { writeCheckpoint } from './write.js';
export { isCheckpointFile, readCheckpoint, readCheckpointMeta } from './read.js';

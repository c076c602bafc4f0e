import { CharnnError } from '../errors.js';

/** A named float32 tensor, row-major. */
export interface CheckpointTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * What a checkpoint file holds. `meta` is the caller's JSON header (model config, vocabulary,
 * training state); it round-trips exactly as JSON.stringify/JSON.parse would (so undefined
 * values vanish and NaN becomes null) and must not use the reserved key "tensors".
 */
export interface Checkpoint {
  meta: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

/** A tensor as the header describes it, without its data (see readCheckpointMeta). */
export interface CheckpointTensorInfo {
  name: string;
  shape: number[];
  /** Number of float32 elements. */
  length: number;
}

/** The header of a checkpoint, read without its tensor data. */
export interface CheckpointHeader {
  meta: Record<string, unknown>;
  tensors: CheckpointTensorInfo[];
}

/** The tensor called `name`, or undefined. */
export function findTensor(checkpoint: Checkpoint, name: string): CheckpointTensor | undefined {
  return checkpoint.tensors.find((t) => t.name === name);
}

/**
 * The tensor called `name`. A well-formed file that lacks a tensor the model needs was written
 * by something else or an incompatible version, which the user can act on, hence CharnnError.
 */
export function requireTensor(checkpoint: Checkpoint, name: string): CheckpointTensor {
  const tensor = findTensor(checkpoint, name);
  if (!tensor) {
    throw new CharnnError(
      `checkpoint has no tensor "${name}"`,
      'it was written for a different model or by an incompatible charnn version',
    );
  }
  return tensor;
}

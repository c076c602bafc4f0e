import { crc32 } from '../util/crc32.js';
import {
  BYTES_PER_ELEMENT,
  CHECKSUM_BYTES,
  FORMAT_VERSION,
  LITTLE_ENDIAN_HOST,
  MAGIC,
  PREAMBLE_BYTES,
  TENSORS_KEY,
  type TensorEntry,
  alignUp,
  dataSectionStart,
  entryEnd,
} from './format.js';
import type { Checkpoint, CheckpointTensor } from './types.js';

/** A checkpoint laid out for writing: everything but the tensor bytes themselves. */
export interface CheckpointPlan {
  /** Magic, version, header length, header JSON and the padding up to the data section. */
  prologue: Buffer;
  tensors: CheckpointTensor[];
  entries: TensorEntry[];
  /** Size of the whole file in bytes. */
  totalBytes: number;
}

/**
 * Validates a checkpoint and computes its layout. A bad argument here (shape not matching the
 * data, duplicate names, the reserved "tensors" key in meta) is a bug in the calling code, not
 * something a user did, so it throws a plain Error.
 */
export function planCheckpoint(checkpoint: Checkpoint): CheckpointPlan {
  const { meta, tensors } = checkpoint;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new Error('checkpoint meta must be a plain object');
  }
  if (Object.prototype.hasOwnProperty.call(meta, TENSORS_KEY)) {
    throw new Error(`checkpoint meta must not use the reserved key "${TENSORS_KEY}"`);
  }

  const names = new Set<string>();
  const entries: TensorEntry[] = [];
  let cursor = 0;
  for (const tensor of tensors) {
    checkTensor(tensor, names);
    const entry: TensorEntry = {
      name: tensor.name,
      shape: [...tensor.shape],
      offset: alignUp(cursor),
      length: tensor.data.length,
    };
    entries.push(entry);
    cursor = entryEnd(entry);
  }

  const header = Buffer.from(JSON.stringify({ ...meta, [TENSORS_KEY]: entries }), 'utf8');
  if (header.length > 0xffffffff) throw new Error('checkpoint header is larger than 4 GiB');
  const dataStart = dataSectionStart(header.length);
  // Buffer.alloc zero-fills, which provides the padding between header and data.
  const prologue = Buffer.alloc(dataStart);
  prologue.set(MAGIC, 0);
  prologue.writeUInt32LE(FORMAT_VERSION, 8);
  prologue.writeUInt32LE(header.length, 12);
  header.copy(prologue, PREAMBLE_BYTES);

  return { prologue, tensors, entries, totalBytes: dataStart + cursor + CHECKSUM_BYTES };
}

function checkTensor(tensor: CheckpointTensor, names: Set<string>): void {
  if (typeof tensor.name !== 'string') throw new Error('checkpoint tensor name must be a string');
  if (names.has(tensor.name)) throw new Error(`duplicate checkpoint tensor name "${tensor.name}"`);
  names.add(tensor.name);
  if (!(tensor.data instanceof Float32Array)) {
    throw new Error(`checkpoint tensor "${tensor.name}" data must be a Float32Array`);
  }
  let size = 1;
  for (const dim of tensor.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new Error(`checkpoint tensor "${tensor.name}" has invalid shape [${tensor.shape.join(', ')}]`);
    }
    size *= dim;
  }
  if (size !== tensor.data.length) {
    throw new Error(
      `checkpoint tensor "${tensor.name}" shape [${tensor.shape.join(', ')}] does not match its ${tensor.data.length} elements`,
    );
  }
}

const ZEROS = new Uint8Array(8);

/**
 * The file's bytes in order, as chunks that view the tensors' own memory where the host is
 * little-endian (no second copy of the weights), ending with the CRC-32 of all chunks before it,
 * computed as they go by.
 */
export function* checkpointChunks(plan: CheckpointPlan): Generator<Uint8Array> {
  let crc = 0;
  let written = plan.prologue.length;
  crc = crc32(plan.prologue, crc);
  yield plan.prologue;

  for (let i = 0; i < plan.tensors.length; i++) {
    const target = plan.prologue.length + plan.entries[i].offset;
    if (target > written) {
      const padding = ZEROS.subarray(0, target - written);
      crc = crc32(padding, crc);
      yield padding;
    }
    const bytes = float32LittleEndianBytes(plan.tensors[i].data);
    crc = crc32(bytes, crc);
    yield bytes;
    written = target + bytes.length;
  }

  const checksum = Buffer.alloc(CHECKSUM_BYTES);
  checksum.writeUInt32LE(crc >>> 0, 0);
  yield checksum;
}

/** The tensor's bytes as little-endian float32: a view on little-endian hosts, a copy otherwise. */
function float32LittleEndianBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * BYTES_PER_ELEMENT);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * BYTES_PER_ELEMENT, data[i], true);
  return bytes;
}

/** The whole checkpoint file in memory. Use writeCheckpoint to save one without this copy. */
export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const plan = planCheckpoint(checkpoint);
  return Buffer.concat([...checkpointChunks(plan)], plan.totalBytes);
}

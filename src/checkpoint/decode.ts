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
  ALIGNMENT,
  dataSectionStart,
  entryEnd,
  startsLikeMagic,
} from './format.js';
import { FormatErrors } from './format-error.js';
import type { Checkpoint, CheckpointTensor } from './types.js';

/*
 * Decoding treats every byte as hostile: each length read from the file is checked against
 * the file's real size before anything is allocated or sliced, so random or forged input ends
 * in a CheckpointFormatError (a CharnnError), never in a RangeError or a huge allocation.
 */

/** What the fixed-size preamble says. */
export interface Preamble {
  version: number;
  headerLength: number;
  dataStart: number;
}

/**
 * Checks magic, version and that the declared header fits in a file of `fileSize` bytes.
 * `head` is the file's first PREAMBLE_BYTES bytes, or all of it if shorter.
 */
export function parsePreamble(head: Uint8Array, fileSize: number, errors: FormatErrors): Preamble {
  const minimum = PREAMBLE_BYTES + CHECKSUM_BYTES;
  if (head.length < MAGIC.length) {
    // A strict prefix of the magic (or nothing) is most likely a checkpoint cut short.
    throw startsLikeMagic(head) ? errors.truncated(minimum, fileSize) : errors.notCheckpoint();
  }
  if (!startsLikeMagic(head)) throw errors.notCheckpoint();
  if (head.length < PREAMBLE_BYTES) throw errors.truncated(minimum, fileSize);

  const view = new DataView(head.buffer, head.byteOffset, PREAMBLE_BYTES);
  const version = view.getUint32(8, true);
  // Version before anything else: a newer version may have moved every later field.
  if (version > FORMAT_VERSION) throw errors.newerVersion(version);
  if (version < 1) throw errors.invalidVersion(version);

  const headerLength = view.getUint32(12, true);
  const dataStart = dataSectionStart(headerLength);
  if (fileSize < dataStart + CHECKSUM_BYTES) throw errors.truncated(dataStart + CHECKSUM_BYTES, fileSize);
  return { version, headerLength, dataStart };
}

/** The header split into the caller's metadata and the tensor table (fields type-checked only). */
export interface ParsedHeader {
  meta: Record<string, unknown>;
  entries: TensorEntry[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseHeader(bytes: Uint8Array, errors: FormatErrors): ParsedHeader {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw errors.malformedHeader('it is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw errors.malformedHeader('it is not valid JSON');
  }
  if (!isRecord(header)) throw errors.malformedHeader('it is not a JSON object');

  const { [TENSORS_KEY]: table, ...meta } = header;
  if (!Array.isArray(table)) throw errors.malformedHeader(`it has no "${TENSORS_KEY}" list`);
  const entries = table.map((row, index) => parseEntry(row, index, errors));
  return { meta, entries };
}

function parseEntry(row: unknown, index: number, errors: FormatErrors): TensorEntry {
  const where = `tensor entry ${index}`;
  if (!isRecord(row)) throw errors.malformedHeader(`${where} is not an object`);
  const { name, shape, offset, length } = row;
  if (typeof name !== 'string') throw errors.malformedHeader(`${where} has no string "name"`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw errors.malformedHeader(`${where} has no "shape" list of non-negative integers`);
  }
  if (!isCount(offset)) throw errors.malformedHeader(`${where} has no non-negative integer "offset"`);
  if (!isCount(length)) throw errors.malformedHeader(`${where} has no non-negative integer "length"`);
  return { name, shape, offset, length };
}

/**
 * Checks the tensor table against itself and a data section of `dataLength` bytes: unique
 * names, shapes matching lengths, aligned offsets, every tensor inside the data section (so
 * none overlaps the checksum) and no two tensors sharing bytes.
 */
export function checkLayout(entries: TensorEntry[], dataLength: number, errors: FormatErrors): void {
  const names = new Set<string>();
  for (const entry of entries) {
    if (names.has(entry.name)) throw errors.duplicateName(entry.name);
    names.add(entry.name);
    if (elementCount(entry.shape, entry.length) !== entry.length) {
      throw errors.shapeMismatch(entry.name, entry.shape, entry.length);
    }
    if (entry.offset % ALIGNMENT !== 0) throw errors.misaligned(entry.name, entry.offset);
    if (entryEnd(entry) > dataLength) {
      throw errors.outOfRange(entry.name, entry.offset, entryEnd(entry), dataLength);
    }
  }
  // Empty tensors own no bytes, so they cannot overlap anything.
  const occupied = entries.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < occupied.length; i++) {
    if (occupied[i].offset < entryEnd(occupied[i - 1])) {
      throw errors.overlap(occupied[i - 1].name, occupied[i].name);
    }
  }
}

/** Product of the dimensions, stopping once it passes `limit` (forged shapes can be huge). */
function elementCount(shape: number[], limit: number): number {
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > limit) return Infinity;
  }
  return count;
}

/** End of the file the tensor table implies, for telling truncation from corruption. */
export function impliedFileSize(entries: TensorEntry[], dataStart: number): number {
  let end = 0;
  for (const entry of entries) end = Math.max(end, entryEnd(entry));
  return dataStart + end + CHECKSUM_BYTES;
}

export interface DecodeOptions {
  /** File path used in error messages. */
  source?: string;
  /**
   * Let tensors view `bytes` where alignment allows instead of copying them. Only for callers
   * that own the buffer (readCheckpoint does): it halves peak memory for large models.
   */
  shareMemory?: boolean;
}

/**
 * Parses and fully validates a checkpoint: magic, version, sizes, checksum, header and tensor
 * table. Throws a CheckpointFormatError (a CharnnError) describing the first problem found;
 * never any other exception, whatever the bytes. Tensors are copies unless shareMemory is set.
 */
export function decodeCheckpoint(bytes: Uint8Array, options: DecodeOptions = {}): Checkpoint {
  const errors = new FormatErrors(options.source);
  const { headerLength, dataStart } = parsePreamble(bytes.subarray(0, PREAMBLE_BYTES), bytes.length, errors);
  const headerBytes = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength);

  const checksumAt = bytes.length - CHECKSUM_BYTES;
  const stored = new DataView(bytes.buffer, bytes.byteOffset + checksumAt, CHECKSUM_BYTES).getUint32(0, true);
  const computed = crc32(bytes.subarray(0, checksumAt)) >>> 0;
  if (stored !== computed) {
    // A bad checksum on a file shorter than its own intact header says it should be means the
    // end is missing, which calls for a different remedy than bytes changed in place.
    const expected = tryImpliedFileSize(headerBytes, dataStart);
    if (expected !== undefined && expected > bytes.length) throw errors.truncated(expected, bytes.length);
    throw errors.corrupted(stored, computed);
  }

  const { meta, entries } = parseHeader(headerBytes, errors);
  checkLayout(entries, checksumAt - dataStart, errors);
  const tensors = entries.map((entry) =>
    readTensor(bytes, dataStart + entry.offset, entry, options.shareMemory ?? false),
  );
  return { meta, tensors };
}

function tryImpliedFileSize(headerBytes: Uint8Array, dataStart: number): number | undefined {
  try {
    return impliedFileSize(parseHeader(headerBytes, new FormatErrors()).entries, dataStart);
  } catch {
    return undefined;
  }
}

function readTensor(bytes: Uint8Array, start: number, entry: TensorEntry, share: boolean): CheckpointTensor {
  const byteLength = entry.length * BYTES_PER_ELEMENT;
  let data: Float32Array;
  if (LITTLE_ENDIAN_HOST && share && (bytes.byteOffset + start) % BYTES_PER_ELEMENT === 0) {
    data = new Float32Array(bytes.buffer, bytes.byteOffset + start, entry.length);
  } else if (LITTLE_ENDIAN_HOST) {
    data = new Float32Array(entry.length);
    new Uint8Array(data.buffer).set(bytes.subarray(start, start + byteLength));
  } else {
    data = new Float32Array(entry.length);
    const view = new DataView(bytes.buffer, bytes.byteOffset + start, byteLength);
    for (let i = 0; i < entry.length; i++) data[i] = view.getFloat32(i * BYTES_PER_ELEMENT, true);
  }
  return { name: entry.name, shape: entry.shape, data };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

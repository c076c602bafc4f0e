import { readFile, stat } from 'node:fs/promises';
import { CharnnError } from '../errors.js';
import { writeFileAtomically } from '../checkpoint/atomic-file.js';
import { LITTLE_ENDIAN_HOST } from '../checkpoint/format.js';
import { describeFsError, errorCode } from '../util/fs-errors.js';

/**
 * The safetensors format (Hugging Face's; what `safetensors.torch.load_file` reads), for float
 * tensors. All integers little-endian:
 *
 *   offset  size  field
 *   0       8     N, u64: length of the header
 *   8       N     header: UTF-8 JSON, padded with spaces so the data starts 8-byte aligned
 *   8+N     ...   data: every tensor's raw little-endian bytes, row-major
 *
 * Header: {"__metadata__": {"key": "string value", ...},
 *          "<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
 * Offsets are byte offsets into the data section, [begin, end). The tensors tile the data
 * section exactly: sorted by offset they are contiguous, start at 0 and end at its last byte.
 * Writing produces F32 only; reading also accepts F16, BF16 and F64 and converts to float32.
 */

/** A named float32 tensor, row-major. */
export interface SafetensorsTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsContents {
  /** `__metadata__`: string keys to string values (the format allows nothing else there). */
  metadata: Record<string, string>;
  /** In data order. */
  tensors: SafetensorsTensor[];
}

const METADATA_KEY = '__metadata__';
/** The reference implementation refuses larger headers; so do we (and a forged length cannot make us allocate). */
export const MAX_HEADER_BYTES = 100_000_000;
const BYTES_PER_DTYPE = { F32: 4, F16: 2, BF16: 2, F64: 8 } as const;
type FloatDType = keyof typeof BYTES_PER_DTYPE;

// ---------------------------------------------------------------------------------- writing

/**
 * The file as chunks: the length prefix and header, then one chunk per tensor (viewing the
 * tensor's own memory on little-endian hosts, so nothing large is copied). A malformed
 * argument (duplicate or reserved name, shape not matching the data) is a bug in the caller:
 * a plain Error before anything is written.
 */
export function encodeSafetensors(contents: SafetensorsContents): Uint8Array[] {
  // No prototype: a tensor named "__proto__" is then an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(contents.metadata).length > 0) {
    for (const [k, v] of Object.entries(contents.metadata)) if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string`);
    header[METADATA_KEY] = contents.metadata;
  }
  let offset = 0;
  for (const t of contents.tensors) {
    if (t.name === METADATA_KEY || Object.hasOwn(header, t.name)) throw new Error(`safetensors tensor name "${t.name}" is reserved or used twice`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || size !== t.data.length) {
      throw new Error(`safetensors tensor "${t.name}": shape [${t.shape.join(', ')}] does not match its ${t.data.length} values`);
    }
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * size] };
    offset += 4 * size;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces (still valid JSON) so that 8 + N, where the data starts, is a multiple of 8.
  const N = Math.ceil(json.length / 8) * 8;
  const prologue = Buffer.alloc(8 + N, 0x20);
  prologue.writeBigUInt64LE(BigInt(N), 0);
  json.copy(prologue, 8);
  return [prologue, ...contents.tensors.map((t) => littleEndianBytes(t.data))];
}

function littleEndianBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  return out;
}

/**
 * Writes a safetensors file atomically (temp file, fsync, rename: readers see the old file or
 * the complete new one). File-system failures become a one-line CharnnError naming the path.
 */
export async function writeSafetensors(path: string, contents: SafetensorsContents): Promise<void> {
  await writeOutputFile(path, encodeSafetensors(contents));
}

/** Atomically writes `chunks` to `path`; file-system failures become a CharnnError naming it. */
export async function writeOutputFile(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  try {
    await writeFileAtomically(path, chunks);
  } catch (error) {
    // Errors without a code did not come from the file system: bugs, kept raw.
    if (errorCode(error) === undefined) throw error;
    const hint = errorCode(error) === 'ENOSPC' ? 'free some disk space or write somewhere else' : 'check that the directory exists and is writable';
    throw new CharnnError(`cannot write ${path}: ${describeFsError(error)}`, hint);
  }
}

// ---------------------------------------------------------------------------------- reading

/** Reads and fully validates a safetensors file; every problem is a one-line CharnnError naming it. */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    // A directory opens fine on Linux and fails on read with a less clear message.
    if ((await stat(path)).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    bytes = await readFile(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw new CharnnError(`${path} does not exist`, 'check the path');
    throw new CharnnError(`cannot read ${path}: ${describeFsError(error)}`, 'check the path and its permissions');
  }
  return decodeSafetensors(bytes, path);
}

/** Parses a whole safetensors file held in memory. `source` names it in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const bad = (why: string) =>
    new CharnnError(`${source} is not a valid safetensors file: ${why}`, 'pass a file written by charnn export or by safetensors (save_file)');
  if (bytes.length < 8) throw bad(bytes.length === 0 ? 'it is empty' : `it has only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) throw bad(`its header length (${n} bytes) runs past the end of the ${bytes.length}-byte file: it is truncated, or not safetensors`);
  const N = Number(n);
  if (N > MAX_HEADER_BYTES) throw bad(`its header (${N} bytes) is larger than the format's limit of ${MAX_HEADER_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + N));
  } catch {
    throw bad('its header is not UTF-8');
  }
  // The reference reader insists on '{' first; a leading space would also be valid JSON, but
  // whatever wrote it did not follow the format.
  if (!text.startsWith('{')) throw bad('its header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw bad(`its header is not valid JSON (${(error as Error).message.split('\n')[0]})`);
  }
  if (!isRecord(header)) throw bad('its header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = header[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isRecord(rawMeta)) throw bad(`"${METADATA_KEY}" is not an object`);
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw bad(`"${METADATA_KEY}" entry "${k}" is not a string`);
      metadata[k] = v;
    }
  }

  const dataStart = 8 + N;
  const dataBytes = bytes.length - dataStart;
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, entry]) => parseEntry(name, entry, dataBytes, bad));
  // The tensors must tile the data section: no gaps, no overlaps, nothing left over.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of byOffset) {
    if (e.begin !== expected) {
      throw bad(`tensor "${e.name}" starts at data byte ${e.begin}, but the previous tensor ends at ${expected} (tensors must be contiguous)`);
    }
    expected = e.end;
  }
  if (expected !== dataBytes) {
    throw bad(`the tensors take ${expected} bytes of data but the file has ${dataBytes} after the header`);
  }
  const tensors = byOffset.map((e) => ({ name: e.name, shape: e.shape, data: toFloat32(bytes, dataStart + e.begin, e.size, e.dtype) }));
  return { metadata, tensors };
}

interface Entry {
  name: string;
  dtype: FloatDType;
  shape: number[];
  /** Number of elements. */
  size: number;
  begin: number;
  end: number;
}

/** One header entry, checked: a float dtype, a shape of non-negative integers, offsets inside the data whose span fits the shape. */
function parseEntry(name: string, entry: unknown, dataBytes: number, bad: (why: string) => CharnnError): Entry {
  const what = `tensor "${name}"`;
  if (!isRecord(entry)) throw bad(`${what} is not described by an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw bad(`${what} has no dtype`);
  if (!Object.hasOwn(BYTES_PER_DTYPE, dtype)) {
    throw bad(`${what} has dtype ${dtype}; charnn reads float tensors only (F32, F16, BF16, F64)`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`${what} has a malformed shape`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad(`${what} has malformed data_offsets`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`${what} has data_offsets [${begin}, ${end}] that end before they begin`);
  if (end > dataBytes) throw bad(`${what} ends at data byte ${end}, past the end of the file (${dataBytes} data bytes; truncated?)`);
  const width = BYTES_PER_DTYPE[dtype as FloatDType];
  // Multiply step by step: a forged shape must not overflow into a plausible byte count.
  let size = (shape as number[]).includes(0) ? 0 : 1;
  for (const d of shape as number[]) {
    if (size * width > end - begin) break;
    size *= d;
  }
  if (size * width !== end - begin) {
    throw bad(`${what} has shape [${(shape as number[]).join(', ')}] of ${dtype}, which does not fill its ${end - begin} bytes of data`);
  }
  return { name, dtype: dtype as FloatDType, shape: shape as number[], size, begin, end };
}

/** Copies `size` values of `dtype` at `at` into a fresh Float32Array. */
function toFloat32(bytes: Uint8Array, at: number, size: number, dtype: FloatDType): Float32Array {
  if (dtype === 'F32' && LITTLE_ENDIAN_HOST) {
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * size));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, size * BYTES_PER_DTYPE[dtype]);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else if (dtype === 'F16') out[i] = halfToFloat(view.getUint16(2 * i, true));
    else out[i] = bfloat16ToFloat(view.getUint16(2 * i, true));
  }
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));

/** bfloat16 is the top half of a float32. */
function bfloat16ToFloat(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

/** IEEE 754 half precision: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

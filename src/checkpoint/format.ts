/**
 * The charnn checkpoint file format, version 1.
 *
 * A checkpoint is one binary file holding a JSON header (model config, vocabulary, training
 * state: whatever the caller stores) and a list of named float32 tensors. All integers are
 * unsigned 32-bit little-endian. Offsets below are in bytes from the start of the file.
 *
 *   offset      size   field
 *   0           8      magic: the bytes 43 48 41 52 4E 4E 00 1A ("CHARNN\0\x1a")
 *   8           4      format version: 1
 *   12          4      header length H, in bytes
 *   16          H      header: UTF-8 JSON object (see below)
 *   16+H        P      zero padding, 0..7 bytes, so that the data section starts at D, the
 *                      first multiple of 8 at or after 16+H
 *   D           L      data section: the tensors, see below
 *   D+L         4      CRC-32 (IEEE 802.3, as zlib's crc32) of bytes 0 .. D+L-1, i.e. of
 *                      every byte before it; it is always the last 4 bytes of the file
 *
 * The header is the caller's metadata object with one reserved key added, "tensors":
 *
 *   { ...metadata, "tensors": [ { "name": string, "shape": number[],
 *                                 "offset": number, "length": number }, ... ] }
 *
 * - name: unique within the file.
 * - shape: non-negative integer dimensions, row-major; their product equals length
 *   (an empty shape [] is a scalar of length 1).
 * - offset: byte offset of the tensor's first element from the start of the data section
 *   (D), a multiple of 8, so every tensor starts 8-byte aligned in the file.
 * - length: number of elements; the tensor occupies bytes offset .. offset + 4*length - 1 of
 *   the data section, each element an IEEE 754 float32, little-endian.
 *
 * Writers lay tensors out in header order, each at the first multiple of 8 at or after the
 * end of the previous one, with zero bytes in the gaps; L ends at the end of the last tensor
 * (L = 0 without tensors). Readers require only that tensors are aligned, lie inside the data
 * section (never overlapping the checksum) and do not overlap each other; they accept unused
 * bytes between or after tensors, which the checksum covers like everything else.
 *
 * A reader that meets a version greater than the one it knows must refuse the file: a new
 * version may change any part of the layout after the version field.
 */

/** The 8 bytes every checkpoint starts with. The \0 and \x1a stop text tools early. */
export const MAGIC: Uint8Array = new Uint8Array([0x43, 0x48, 0x41, 0x52, 0x4e, 0x4e, 0x00, 0x1a]);

/** The format version this code writes and the newest one it reads. */
export const FORMAT_VERSION = 1;

/** Magic (8) + version (4) + header length (4). */
export const PREAMBLE_BYTES = 16;

export const CHECKSUM_BYTES = 4;

/** Tensor data alignment, in bytes from the start of the file. */
export const ALIGNMENT = 8;

export const BYTES_PER_ELEMENT = 4;

/** The key the format reserves in the header for the tensor table. */
export const TENSORS_KEY = 'tensors';

/** One row of the header's tensor table. */
export interface TensorEntry {
  name: string;
  shape: number[];
  /** Bytes from the start of the data section. */
  offset: number;
  /** Elements, not bytes. */
  length: number;
}

/** Rounds n up to the next multiple of ALIGNMENT. */
export function alignUp(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

/** Where the data section starts for a header of the given byte length. */
export function dataSectionStart(headerLength: number): number {
  return alignUp(PREAMBLE_BYTES + headerLength);
}

/** Byte just past the end of a tensor, relative to the data section. */
export function entryEnd(entry: TensorEntry): number {
  return entry.offset + entry.length * BYTES_PER_ELEMENT;
}

/** Whether the first bytes given match the magic (true for an empty or partial prefix). */
export function startsLikeMagic(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/** Whether this host stores numbers little-endian, so float32 bytes can be copied as they are. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

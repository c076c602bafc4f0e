import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, previous?: number) => number;

/**
 * CRC-32 (IEEE, zlib's), continuing from `previous` so a file can be checksummed part by part
 * while it is streamed: crc32(b, crc32(a)) === crc32(a ++ b).
 *
 * zlib.crc32 (native, fast) exists from Node 20.15; it is looked up at run time, not imported
 * by name, so older Node 20 releases still load this module and use the table instead.
 *
 * Empty input returns `previous` without calling zlib: for a view on a zero-length
 * ArrayBuffer (what an empty Float32Array has) Node passes zlib a null pointer, and zlib's
 * crc32(crc, NULL, 0) means "give me the initial value", so it returns 0 and loses the
 * running checksum.
 */
export const crc32: Crc32 =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, previous = 0) => (data.length === 0 ? previous >>> 0 : zlib.crc32(data, previous))
    : tableCrc32;

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** The byte-at-a-time table algorithm; exported so tests can check it against zlib's. */
export function tableCrc32(data: Uint8Array, previous = 0): number {
  const t = crcTable();
  let c = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

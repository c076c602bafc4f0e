/**
 * Byte-level UTF-8 checks that TextDecoder does not offer: where the first invalid sequence is
 * (for error messages) and how many bytes at the end of a chunk start a sequence that the next
 * chunk has to finish.
 */

/** Index of the first byte of the first invalid sequence in `bytes`, or -1. A sequence cut off by the end of `bytes` counts as valid. */
export function findInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    const length = sequenceLength(lead);
    if (length === 0) return i;
    // The second byte's range is narrower for some leads: it rules out overlong forms,
    // UTF-16 surrogates (ED A0..BF) and code points beyond U+10FFFF (F4 90..).
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k < length; k++) {
      if (i + k >= bytes.length) return -1;
      const byte = bytes[i + k]!;
      if (k === 1 ? byte < low || byte > high : (byte & 0xc0) !== 0x80) return i;
    }
    i += length;
  }
  return -1;
}

/** How many bytes at the end of `bytes` begin a multi-byte sequence that is not complete yet (0..3). */
export function incompleteTailLength(bytes: Uint8Array): number {
  for (let k = 1; k <= Math.min(3, bytes.length); k++) {
    const byte = bytes[bytes.length - k]!;
    if ((byte & 0xc0) === 0x80) continue;
    return sequenceLength(byte) > k ? k : 0;
  }
  return 0;
}

/** Bytes in a sequence starting with `lead`; 0 when `lead` cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

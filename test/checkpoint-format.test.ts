import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CharnnError } from '../src/errors.js';
import { crc32, tableCrc32 } from '../src/util/crc32.js';
import { checkpointChunks, planCheckpoint } from '../src/checkpoint/encode.js';
import {
  type Checkpoint,
  CheckpointFormatError,
  decodeCheckpoint,
  encodeCheckpoint,
  findTensor,
  requireTensor,
} from '../src/checkpoint/index.js';
import {
  expectProblem,
  expectSameTensors,
  floats,
  forgeCheckpoint,
  sampleCheckpoint,
  seededRandom,
  withValidCrc,
} from './checkpoint-helpers.js';

/** The header of an encoded file, parsed independently of the decoder. */
function headerOf(bytes: Buffer): { headerLength: number; header: any } {
  const headerLength = bytes.readUInt32LE(12);
  return { headerLength, header: JSON.parse(bytes.subarray(16, 16 + headerLength).toString('utf8')) };
}

describe('crc32', () => {
  it('matches the standard check value and continues across chunks', () => {
    const text = Buffer.from('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(tableCrc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
    expect(tableCrc32(text.subarray(4), tableCrc32(text.subarray(0, 4)))).toBe(0xcbf43926);
  });

  it('passes the running value through empty input, even a view on a zero-length buffer', () => {
    const running = crc32(Buffer.from('abc'));
    expect(crc32(new Uint8Array(new ArrayBuffer(0)), running)).toBe(running);
    expect(crc32(new Uint8Array(new Float32Array(0).buffer), running)).toBe(running);
    expect(tableCrc32(new Uint8Array(0), running)).toBe(running);
  });

  it('the table fallback agrees with zlib on random data', () => {
    const zlibCrc = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    if (!zlibCrc) return; // Node < 20.15: the fallback is the implementation in use.
    const random = seededRandom(7);
    for (let n = 0; n < 50; n++) {
      const data = Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      expect(tableCrc32(data, 12345)).toBe(zlibCrc(data, 12345));
    }
  });
});

describe('encode/decode round trip', () => {
  it('restores meta and tensors bit for bit, including empty, odd-length and special values', () => {
    const original = sampleCheckpoint();
    const decoded = decodeCheckpoint(encodeCheckpoint(original));
    expect(decoded.meta).toEqual(original.meta);
    expectSameTensors(decoded, original);
  });

  it('lays the file out as documented: magic, version, aligned tensors, trailing CRC', () => {
    const original = sampleCheckpoint();
    const bytes = encodeCheckpoint(original);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x43, 0x48, 0x41, 0x52, 0x4e, 0x4e, 0x00, 0x1a]));
    expect(bytes.readUInt32LE(8)).toBe(1);

    const { headerLength, header } = headerOf(bytes);
    const dataStart = Math.ceil((16 + headerLength) / 8) * 8;
    // Padding between header and data is zeros.
    expect([...bytes.subarray(16 + headerLength, dataStart)].every((b) => b === 0)).toBe(true);
    expect(header.step).toBe(1234);
    expect(header.tensors.map((t: any) => t.name)).toEqual(original.tensors.map((t) => t.name));

    let expectedOffset = 0;
    let end = 0;
    header.tensors.forEach((entry: any, i: number) => {
      const tensor = original.tensors[i];
      expect((dataStart + entry.offset) % 8).toBe(0);
      // Each tensor starts at the first aligned offset after the previous one.
      expect(entry.offset).toBe(Math.ceil(expectedOffset / 8) * 8);
      expect(entry.length).toBe(tensor.data.length);
      expect(entry.shape).toEqual(tensor.shape);
      for (let k = 0; k < entry.length; k++) {
        expect(Object.is(bytes.readFloatLE(dataStart + entry.offset + 4 * k), tensor.data[k])).toBe(true);
      }
      expectedOffset = entry.offset + 4 * entry.length;
      end = Math.max(end, expectedOffset);
    });
    expect(bytes.length).toBe(dataStart + end + 4);
    expect(bytes.readUInt32LE(bytes.length - 4)).toBe(crc32(bytes.subarray(0, bytes.length - 4)));
  });

  it('writes only the viewed part of a Float32Array that is a window on a larger buffer', () => {
    const backing = floats([9, 1, 2, 3, 9]);
    const c: Checkpoint = { meta: {}, tensors: [{ name: 'w', shape: [3], data: backing.subarray(1, 4) }] };
    expect(Array.from(decodeCheckpoint(encodeCheckpoint(c)).tensors[0].data)).toEqual([1, 2, 3]);
  });

  it('round-trips a checkpoint without tensors and one with empty meta', () => {
    expect(decodeCheckpoint(encodeCheckpoint({ meta: { a: 1 }, tensors: [] }))).toEqual({ meta: { a: 1 }, tensors: [] });
    const only = decodeCheckpoint(encodeCheckpoint({ meta: {}, tensors: [{ name: '', shape: [1], data: floats([5]) }] }));
    expect(only.meta).toEqual({});
    expect(only.tensors[0]).toMatchObject({ name: '', shape: [1] });
  });

  it('streams exactly the bytes encodeCheckpoint returns', () => {
    const c = sampleCheckpoint();
    expect(Buffer.concat([...checkpointChunks(planCheckpoint(c))])).toEqual(encodeCheckpoint(c));
  });

  it('decodes from a Uint8Array at an unaligned offset, into copies independent of the input', () => {
    const bytes = encodeCheckpoint(sampleCheckpoint());
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const view = shifted.subarray(3);
    const decoded = decodeCheckpoint(view);
    expectSameTensors(decoded, sampleCheckpoint());
    view.fill(0);
    expect(Array.from(findTensor(decoded, 'embed')!.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects invalid checkpoints at encode time as programming errors, not CharnnErrors', () => {
    const bad: Checkpoint[] = [
      { meta: {}, tensors: [{ name: 'w', shape: [2, 2], data: floats([1, 2, 3]) }] },
      { meta: {}, tensors: [{ name: 'w', shape: [1], data: floats([1]) }, { name: 'w', shape: [1], data: floats([2]) }] },
      { meta: { tensors: [] }, tensors: [] },
      { meta: {}, tensors: [{ name: 'w', shape: [-1], data: floats([]) }] },
    ];
    for (const c of bad) {
      let thrown: unknown;
      try {
        encodeCheckpoint(c);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect(thrown).not.toBeInstanceOf(CharnnError);
    }
  });
});

describe('tensor lookup', () => {
  it('finds tensors by name and explains a missing one', () => {
    const c = sampleCheckpoint();
    expect(findTensor(c, 'odd')?.shape).toEqual([3]);
    expect(findTensor(c, 'nope')).toBeUndefined();
    expect(requireTensor(c, 'column').data.length).toBe(5);
    expect(() => requireTensor(c, 'nope')).toThrow(CharnnError);
    expect(() => requireTensor(c, 'nope')).toThrow(/no tensor "nope"/);
  });
});

describe('decode errors', () => {
  const good = encodeCheckpoint(sampleCheckpoint());
  const { headerLength } = headerOf(good);
  const dataStart = Math.ceil((16 + headerLength) / 8) * 8;
  const entry = (name: string, shape: number[], offset: number, length: number) => ({ name, shape, offset, length });

  it('gives each problem its own message', () => {
    const messages = [
      expectProblem(() => decodeCheckpoint(Buffer.from('PK\x03\x04 a zip file, not a checkpoint')), 'not-checkpoint', /is not a charnn checkpoint/),
      expectProblem(() => decodeCheckpoint(good.subarray(0, good.length - 10)), 'truncated', /is truncated: expected at least \d+ bytes, found \d+/),
      expectProblem(() => decodeCheckpoint(new Uint8Array(0)), 'truncated', /is empty/),
      expectProblem(() => {
        const damaged = Buffer.from(good);
        damaged[dataStart + 5] ^= 0x10;
        decodeCheckpoint(damaged);
      }, 'corrupted', /is corrupted: checksum mismatch/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [] }, version: 2 })), 'unsupported-version', /format version 2, but this charnn reads only version 1/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [] }, version: 0 })), 'unsupported-version', /invalid format version 0/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: null, rawHeader: Buffer.from('{"tensors": [') })), 'malformed-header', /malformed header: it is not valid JSON/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [3], 0, 3)] }, dataBytes: 8 })), 'bad-layout', /tensor "w" occupies bytes 0\.\.12 of the data section, which ends at 8/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [1], 4, 1)] }, dataBytes: 8 })), 'bad-layout', /not 8-byte aligned/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('a', [4], 0, 4), entry('b', [2], 8, 2)] }, dataBytes: 16 })), 'bad-layout', /tensors "a" and "b" overlap/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [2, 2], 0, 3)] }, dataBytes: 16 })), 'shape-mismatch', /tensor "w" has shape \[2, 2\] but length 3/),
      expectProblem(() => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [1], 0, 1), entry('w', [1], 8, 1)] }, dataBytes: 16 })), 'duplicate-name', /tensor name "w" appears more than once/),
    ];
    expect(new Set(messages).size).toBe(messages.length);
  });

  it('says which version is needed and that charnn must be upgraded', () => {
    try {
      decodeCheckpoint(forgeCheckpoint({ header: { tensors: [] }, version: 7 }), { source: 'new.charnn' });
      expect.unreachable();
    } catch (error) {
      expect((error as CharnnError).message).toBe(
        'checkpoint new.charnn uses format version 7, but this charnn reads only version 1 and older',
      );
      expect((error as CharnnError).hint).toMatch(/upgrade charnn/);
    }
  });

  it('names the source in every message when one is given', () => {
    expectProblem(() => decodeCheckpoint(Buffer.from('hello world'), { source: 'corpus.txt' }), 'not-checkpoint', /^corpus\.txt is not/);
    expectProblem(() => decodeCheckpoint(good.subarray(0, 30), { source: 'm.charnn' }), 'truncated', /^checkpoint m\.charnn is truncated/);
  });

  it('reports a file cut short anywhere as truncated, not corrupted', () => {
    for (const cut of [1, 5, 8, 12, 15, 16, 17, 16 + headerLength - 1, dataStart, dataStart + 3, good.length - 5, good.length - 1]) {
      expectProblem(() => decodeCheckpoint(good.subarray(0, cut)), 'truncated', /truncated/);
    }
  });

  it('reports damage to the header as corruption when the checksum no longer matches', () => {
    const damaged = Buffer.from(good);
    damaged[20] ^= 0x01;
    expectProblem(() => decodeCheckpoint(damaged), 'corrupted', /checksum mismatch/);
    const badCrc = Buffer.from(good);
    badCrc[badCrc.length - 1] ^= 0x80;
    expectProblem(() => decodeCheckpoint(badCrc), 'corrupted', /checksum mismatch/);
  });

  it('distinguishes the ways a header can be malformed', () => {
    const cases: [Buffer, RegExp][] = [
      [forgeCheckpoint({ header: null, rawHeader: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }), /not valid UTF-8/],
      [forgeCheckpoint({ header: [1, 2] }), /not a JSON object/],
      [forgeCheckpoint({ header: { model: 'lstm' } }), /no "tensors" list/],
      [forgeCheckpoint({ header: { tensors: [42] } }), /tensor entry 0 is not an object/],
      [forgeCheckpoint({ header: { tensors: [{ shape: [1], offset: 0, length: 1 }] } }), /tensor entry 0 has no string "name"/],
      [forgeCheckpoint({ header: { tensors: [entry('w', [1.5], 0, 1)] } }), /tensor entry 0 has no "shape" list/],
      [forgeCheckpoint({ header: { tensors: [entry('w', [1], -8, 1)] } }), /has no non-negative integer "offset"/],
      [forgeCheckpoint({ header: { tensors: [entry('w', [1], 0, 2 ** 60)] } }), /has no non-negative integer "length"/],
    ];
    for (const [bytes, message] of cases) expectProblem(() => decodeCheckpoint(bytes), 'malformed-header', message);
  });

  it('refuses forged huge lengths at once instead of allocating them', () => {
    const started = Date.now();
    const huge = 2 ** 40;
    expectProblem(
      () => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [huge], 0, huge)] }, dataBytes: 8 })),
      'bad-layout',
      /which ends at 8/,
    );
    expectProblem(
      () => decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [2 ** 26, 2 ** 26, 2 ** 26], 0, 1)] }, dataBytes: 8 })),
      'shape-mismatch',
      /has shape/,
    );
    // A header length of 4 GiB in a tiny file.
    const forgedHeaderLength = Buffer.from(good);
    forgedHeaderLength.writeUInt32LE(0xffffffff, 12);
    expectProblem(() => decodeCheckpoint(forgedHeaderLength), 'truncated', /expected at least 4294967316 bytes/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('accepts unused bytes after the last tensor when the checksum covers them', () => {
    const decoded = decodeCheckpoint(forgeCheckpoint({ header: { tensors: [entry('w', [1], 8, 1)] }, dataBytes: 24 }));
    expect(decoded.tensors[0]).toMatchObject({ name: 'w', shape: [1] });
    expect(Array.from(decoded.tensors[0].data)).toEqual([0]);
  });
});

describe('decoder fuzzing', () => {
  /** Either a well-formed checkpoint comes back or a CharnnError is thrown; nothing else. */
  function decodeOrCharnnError(bytes: Uint8Array): Checkpoint | CharnnError {
    let result: Checkpoint;
    try {
      result = decodeCheckpoint(bytes);
    } catch (error) {
      if (!(error instanceof CharnnError)) throw new Error(`non-CharnnError for input: ${String(error)}`);
      expect(error).toBeInstanceOf(CheckpointFormatError);
      return error;
    }
    const names = new Set<string>();
    for (const t of result.tensors) {
      expect(t.data).toBeInstanceOf(Float32Array);
      expect(t.shape.reduce((a, b) => a * b, 1)).toBe(t.data.length);
      expect(t.data.length * 4).toBeLessThanOrEqual(bytes.length);
      names.add(t.name);
    }
    expect(names.size).toBe(result.tensors.length);
    return result;
  }

  it('never throws anything but CharnnError on truncations, bit flips and random bytes', { timeout: 5000 }, () => {
    const random = seededRandom(20240611);
    const int = (n: number) => Math.floor(random() * n);
    const base = encodeCheckpoint(sampleCheckpoint());
    const { headerLength } = headerOf(base);
    let decodedOk = 0;
    let rejected = 0;
    const count = (r: Checkpoint | CharnnError) => (r instanceof CharnnError ? rejected++ : decodedOk++);

    // Every proper prefix is reported as truncated.
    for (let i = 0; i < 800; i++) {
      const cut = int(base.length);
      const r = decodeOrCharnnError(base.subarray(0, cut));
      expect(r).toBeInstanceOf(CheckpointFormatError);
      expect((r as CheckpointFormatError).problem).toBe('truncated');
      count(r);
    }
    // Bit flips anywhere, checksum left as it is: always detected.
    for (let i = 0; i < 800; i++) {
      const bytes = Buffer.from(base);
      for (let k = 1 + int(3); k > 0; k--) bytes[int(bytes.length)] ^= 1 << int(8);
      if (bytes.equals(base)) continue;
      const r = decodeOrCharnnError(bytes);
      expect(r).toBeInstanceOf(CharnnError);
      count(r);
    }
    // Bit flips in the preamble and header with the checksum recomputed: exercises header parsing.
    for (let i = 0; i < 1200; i++) {
      const bytes = Buffer.from(base);
      for (let k = 1 + int(3); k > 0; k--) bytes[8 + int(8 + headerLength)] ^= 1 << int(8);
      count(decodeOrCharnnError(withValidCrc(bytes)));
    }
    // Random bytes, half of them behind a valid preamble and checksum.
    for (let i = 0; i < 800; i++) {
      const bytes = Buffer.alloc(int(200));
      for (let k = 0; k < bytes.length; k++) bytes[k] = int(256);
      if (i % 2 === 0 && bytes.length >= 20) {
        base.copy(bytes, 0, 0, 12);
        bytes.writeUInt32LE(int(bytes.length), 12);
        count(decodeOrCharnnError(withValidCrc(bytes)));
      } else {
        count(decodeOrCharnnError(bytes));
      }
    }
    // Random tensor tables, valid JSON and checksum: exercises the layout checks. Most shapes
    // agree with their lengths so that the range, alignment and overlap checks are reached.
    const pick = <T>(xs: T[]) => xs[int(xs.length)];
    const number = () => pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 16, 2 ** 31, 2 ** 53 - 1, -1, 0.5]);
    for (let i = 0; i < 1000; i++) {
      const dataBytes = pick([0, 8, 16, 32, 40]);
      const tensors = Array.from({ length: int(4) }, () => {
        const length = number();
        const shape = random() < 0.8 ? pick([[length], [1, length], [length, 1]]) : Array.from({ length: int(3) }, number);
        const offset = random() < 0.8 ? 8 * int(6) : number();
        return { name: pick(['a', 'b', 'c', 'd', 'e']), shape, offset, length };
      });
      count(decodeOrCharnnError(forgeCheckpoint({ header: { m: i, tensors }, dataBytes })));
    }
    // The mutations must reach both outcomes, or the fuzzing is not exploring anything.
    expect(decodedOk).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(2000);
  });
});

import { expect } from 'vitest';
import { CharnnError } from '../src/errors.js';
import { crc32 } from '../src/util/crc32.js';
import { CheckpointFormatError, type CheckpointProblem } from '../src/checkpoint/format-error.js';
import { mulberry32 } from '../scripts/mulberry32.mjs';
import type { Checkpoint } from '../src/checkpoint/types.js';

/** Deterministic PRNG (mulberry32, the corpus generators' own) so fuzz failures reproduce. */
export const seededRandom: (seed: number) => () => number = mulberry32;

export function floats(values: number[]): Float32Array {
  return Float32Array.from(values);
}

/** A checkpoint with awkward tensors: empty, odd lengths, a scalar, special float values. */
export function sampleCheckpoint(): Checkpoint {
  return {
    meta: {
      model: { kind: 'lstm', layers: 2, hidden: 3 },
      vocab: ['a', 'b', '\n', 'é', '日本', '\u0000'],
      step: 1234,
      note: null,
    },
    tensors: [
      { name: 'embed', shape: [2, 3], data: floats([1, 2, 3, 4, 5, 6]) },
      { name: 'empty', shape: [0], data: new Float32Array(0) },
      { name: 'odd', shape: [3], data: floats([-0, NaN, Infinity]) },
      { name: 'scalar', shape: [], data: floats([1e-40]) },
      { name: 'empty2d', shape: [0, 4], data: new Float32Array(0) },
      { name: 'column', shape: [5, 1], data: floats([0.1, -0.2, 3.4e38, -Infinity, 7]) },
    ],
  };
}

/** Same float bits (so NaN and -0 compare exactly). */
export function expectSameTensors(actual: Checkpoint, expected: Checkpoint): void {
  expect(actual.tensors.map((t) => t.name)).toEqual(expected.tensors.map((t) => t.name));
  actual.tensors.forEach((t, i) => {
    const want = expected.tensors[i];
    expect(t.shape).toEqual(want.shape);
    expect(Array.from(new Uint32Array(t.data.slice().buffer))).toEqual(
      Array.from(new Uint32Array(want.data.slice().buffer)),
    );
  });
}

/** Replaces the trailing CRC with the right one, so structural checks are reached. */
export function withValidCrc(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)) >>> 0, out.length - 4);
  return out;
}

/**
 * Builds a checkpoint by hand, so tests can forge headers the encoder would never write.
 * `dataBytes` is the data section's length; the checksum is valid unless `crc` is given.
 */
export function forgeCheckpoint(options: {
  header: unknown;
  dataBytes?: number;
  version?: number;
  rawHeader?: Uint8Array;
}): Buffer {
  const header = options.rawHeader ?? Buffer.from(JSON.stringify(options.header), 'utf8');
  const dataStart = Math.ceil((16 + header.length) / 8) * 8;
  const out = Buffer.alloc(dataStart + (options.dataBytes ?? 0) + 4);
  Buffer.from('CHARNN\0\x1a', 'latin1').copy(out, 0);
  out.writeUInt32LE(options.version ?? 1, 8);
  out.writeUInt32LE(header.length, 12);
  Buffer.from(header).copy(out, 16);
  return withValidCrc(out);
}

/** Runs `fn`, expecting a CheckpointFormatError of the given kind; returns its message. */
export function expectProblem(fn: () => unknown, problem: CheckpointProblem, message: RegExp): string {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a CheckpointFormatError').toBeInstanceOf(CheckpointFormatError);
  const error = thrown as CheckpointFormatError;
  expect(error).toBeInstanceOf(CharnnError);
  expect({ problem: error.problem, message: error.message }).toMatchObject({ problem, message: expect.stringMatching(message) });
  expect(error.message).not.toContain('\n');
  expect(error.hint).toBeTruthy();
  return error.message;
}

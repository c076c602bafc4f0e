import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTokenCache, splitTrainVal, StreamBatcher, type TokenReader } from '../src/data/index.js';
import { CharnnError, UsageError } from '../src/errors.js';

/** Tokens whose ids are their own positions, so every window shows where it was read from. */
function positions(length: number): TokenReader {
  return {
    length,
    read(start, count, out, outOffset = 0) {
      if (start < 0 || start + count > length) throw new RangeError(`read [${start}, ${start + count}) of ${length}`);
      for (let i = 0; i < count; i++) out[outOffset + i] = start + i;
    },
  };
}

interface Window {
  inputs: number[];
  targets: number[];
  first: boolean;
}

function take(batcher: StreamBatcher, count: number): Window[] {
  const size = batcher.batch * batcher.seq;
  return Array.from({ length: count }, () => {
    const inputs = new Int32Array(size);
    const targets = new Int32Array(size);
    const first = batcher.next(inputs, targets);
    return { inputs: Array.from(inputs), targets: Array.from(targets), first };
  });
}

/**
 * min-char-rnn's data loop: the positions p it trains on and whether hprev was reset first. Like
 * the batcher it resets when p + seq + 1 > len; the original's `>=` also skips a window that ends
 * exactly on the last token.
 */
function minCharRnn(length: number, seq: number, iterations: number): { p: number; reset: boolean }[] {
  const steps: { p: number; reset: boolean }[] = [];
  let p = 0;
  for (let n = 0; n < iterations; n++) {
    let reset = n === 0;
    if (p + seq + 1 > length) {
      p = 0;
      reset = true;
    }
    steps.push({ p, reset });
    p += seq;
  }
  return steps;
}

describe('StreamBatcher', () => {
  it('with B = 1 walks the data exactly like min-char-rnn, epochs included', () => {
    for (const [length, seq] of [
      [10, 3],
      [11, 3],
      [25, 4],
      [7, 6],
    ] as const) {
      const batcher = new StreamBatcher(positions(length), { batch: 1, seq });
      expect(batcher.windowsPerEpoch).toBe(Math.floor((length - 1) / seq));
      const windows = take(batcher, 12);
      minCharRnn(length, seq, 12).forEach(({ p, reset }, n) => {
        const range = (from: number) => Array.from({ length: seq }, (_, t) => from + t);
        expect(windows[n], `length ${length}, seq ${seq}, window ${n}`).toEqual({
          inputs: range(p),
          targets: range(p + 1),
          first: reset,
        });
      });
    }
  });

  it('with B = 1 gives these exact windows over 10 tokens with T = 3', () => {
    const batcher = new StreamBatcher(positions(10), { batch: 1, seq: 3 });
    expect(take(batcher, 4)).toEqual([
      { inputs: [0, 1, 2], targets: [1, 2, 3], first: true },
      { inputs: [3, 4, 5], targets: [4, 5, 6], first: false },
      { inputs: [6, 7, 8], targets: [7, 8, 9], first: false },
      { inputs: [0, 1, 2], targets: [1, 2, 3], first: true },
    ]);
    expect(batcher.epoch).toBe(1);
    expect(batcher.windowInEpoch).toBe(1);
  });

  it('with B = 3 lays out three lockstep streams time-major', () => {
    // 20 tokens, B = 3: segments of 6 starting at 0, 6, 12 (tokens 18, 19 unused); T = 2 gives 2 windows.
    const batcher = new StreamBatcher(positions(20), { batch: 3, seq: 2 });
    expect(batcher.segmentLength).toBe(6);
    expect(batcher.windowsPerEpoch).toBe(2);
    expect(take(batcher, 3)).toEqual([
      { inputs: [0, 6, 12, 1, 7, 13], targets: [1, 7, 13, 2, 8, 14], first: true },
      { inputs: [2, 8, 14, 3, 9, 15], targets: [3, 9, 15, 4, 10, 16], first: false },
      { inputs: [0, 6, 12, 1, 7, 13], targets: [1, 7, 13, 2, 8, 14], first: true },
    ]);
    expect(batcher.epoch).toBe(1);
  });

  it('reads only inside its region', () => {
    const batcher = new StreamBatcher(positions(100), { start: 50, end: 58, batch: 2, seq: 3 });
    expect(take(batcher, 2)).toEqual([
      { inputs: [50, 54, 51, 55, 52, 56], targets: [51, 55, 52, 56, 53, 57], first: true },
      { inputs: [50, 54, 51, 55, 52, 56], targets: [51, 55, 52, 56, 53, 57], first: true },
    ]);
  });

  it('resumes exactly from a saved state', () => {
    const original = new StreamBatcher(positions(500), { batch: 4, seq: 7 });
    take(original, 23); // crosses an epoch: 17 windows per epoch
    const saved = JSON.parse(JSON.stringify(original.state()));
    expect(saved).toEqual({ epoch: 1, windowInEpoch: 6 });
    const resumed = new StreamBatcher(positions(500), { batch: 4, seq: 7 });
    resumed.restore(saved);
    expect(resumed.epoch).toBe(1);
    expect(resumed.windowInEpoch).toBe(6);
    expect(take(resumed, 30)).toEqual(take(original, 30));
    expect(resumed.state()).toEqual(original.state());
  });

  it('refuses a saved state that does not fit its epochs', () => {
    const batcher = new StreamBatcher(positions(100), { batch: 2, seq: 5 });
    expect(() => batcher.restore({ epoch: 0, windowInEpoch: batcher.windowsPerEpoch })).toThrow(CharnnError);
    expect(() => batcher.restore({ epoch: -1, windowInEpoch: 0 })).toThrow(/cannot resume/);
  });

  it('needs B × (T + 1) tokens and says so', () => {
    expect(new StreamBatcher(positions(12), { batch: 3, seq: 3 }).windowsPerEpoch).toBe(1);
    const short = () => new StreamBatcher(positions(11), { batch: 3, seq: 3, name: 'the validation data' });
    expect(short).toThrow(CharnnError);
    expect(short).toThrow('the validation data has 11 tokens, too few for --batch 3 × (--seq 3 + 1) = 12');
    expect(() => new StreamBatcher(positions(12), { batch: 0, seq: 3 })).toThrow(UsageError);
  });

  it('checks the size of the window arrays', () => {
    const batcher = new StreamBatcher(positions(50), { batch: 2, seq: 3 });
    expect(() => batcher.next(new Int32Array(5), new Int32Array(6))).toThrow(RangeError);
  });

  it('batches a real token cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'charnn-data-batcher-'));
    try {
      const source = (async function* () {
        yield Buffer.from('abcdefghij');
      })();
      const cache = await buildTokenCache(source, { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' }, join(dir, 'c.ids'));
      const [window] = take(new StreamBatcher(cache, { batch: 2, seq: 2 }), 1);
      expect(cache.vocab.decode(window!.inputs)).toBe('afbg');
      expect(cache.vocab.decode(window!.targets)).toBe('bgch');
      cache.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('splitTrainVal', () => {
  it('keeps the tail for validation', () => {
    expect(splitTrainVal(100, 0.1)).toEqual([
      [0, 90],
      [90, 100],
    ]);
    expect(splitTrainVal(1001, 0.05)).toEqual([
      [0, 951],
      [951, 1001],
    ]);
  });

  it('leaves validation empty for a fraction of 0 and rejects fractions outside [0, 1)', () => {
    expect(splitTrainVal(100, 0)).toEqual([
      [0, 100],
      [100, 100],
    ]);
    expect(() => splitTrainVal(100, 1)).toThrow(UsageError);
    expect(() => splitTrainVal(100, -0.1)).toThrow(UsageError);
    expect(() => splitTrainVal(100, Number.NaN)).toThrow(UsageError);
  });
});

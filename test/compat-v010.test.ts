import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNativeBackend } from '../src/backend/native.js';
import { charnn } from './sample-helpers.js';

/**
 * Checkpoints written by charnn 0.1.0 keep loading and give the same results, bit for bit.
 *
 * test/fixtures/v0.1.0/ holds four small models written by charnn 0.1.0 (make.sh there, run once at
 * commit a0cbb69: a vanilla RNN, a 2-layer LSTM, a 2-layer GRU with an embedding, a tied word-level
 * LSTM) and the outputs 0.1.0 gave for them on each CPU backend (expected.json): a sample at
 * temperature 0.9, an argmax sample, `eval --json` over the corpus, and the first 12 tokens' states
 * and gates as `dump` writes them (JSON lines). Those files are never
 * regenerated; every later charnn must reproduce them exactly.
 */

const dir = resolve(__dirname, 'fixtures', 'v0.1.0');
interface Outputs { sample: string; argmax: string; eval: Record<string, unknown>; dump: string }
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, Record<'ts' | 'native', Outputs>>;
const nativeLoads = 'backend' in loadNativeBackend();

describe('charnn 0.1.0 checkpoints', () => {
  for (const [name, byBackend] of Object.entries(expected)) {
    for (const backend of ['ts', 'native'] as const) {
      it.skipIf(backend === 'native' && !nativeLoads)(`${name} on the ${backend} backend: same samples and evaluation`, () => {
        const want = byBackend[backend];
        const m = ['-m', `${name}.charnn`, '--backend', backend, '--device', 'cpu'];
        const prime = name === 'word-tied' ? [] : ['--prime', '1'];
        const sample = charnn(['sample', ...m, '--length', '80', '--seed', '3', '--temp', '0.9', ...prime], undefined, { cwd: dir });
        expect(sample.stderr).toBe('');
        expect(sample.stdout).toBe(want.sample);
        const argmax = charnn(['sample', ...m, '--length', '40', '--seed', '3', '--temp', '1e-6'], undefined, { cwd: dir });
        expect(argmax.stdout).toBe(want.argmax);
        const evaluation = charnn(['eval', ...m, 'corpus.txt', '--json'], undefined, { cwd: dir });
        expect(evaluation.code).toBe(0);
        expect(JSON.parse(evaluation.stdout)).toEqual(want.eval);
        const dump = charnn(['dump', ...m, 'corpus.txt', '--max-tokens', '12'], undefined, { cwd: dir });
        expect(dump.stdout).toBe(want.dump);
      });
    }
  }
});

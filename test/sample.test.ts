import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { type LoadedModelFile, loadModelFile } from '../src/modelfile/contents.js';
import { generate, startToken } from '../src/sample/generate.js';
import { type SamplingOptions, isArgmaxTemperature } from '../src/sample/sampler.js';
import { encodeText } from '../src/data/encoder.js';
import { UsageError } from '../src/errors.js';
import { loadNativeBackend } from '../src/backend/native.js';
import { BIN, charnn, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

let dir: string;
let model: string;
let loaded: LoadedModelFile;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-sample-'));
  const corpus = writeCorpus(dir, 'corpus.txt', structuredCorpus());
  model = trainTiny(dir, 'tiny', corpus);
  loaded = await loadModelFile(model, new ReferenceBackend('f32'));
});

/** The model's distribution over the first token after the start token, in float64. */
async function firstStepProbabilities(): Promise<number[]> {
  const m = loaded.model;
  const runner = m.runner(1, 1, { training: false });
  runner.setWindow(Int32Array.of(startToken(loaded.vocabulary)));
  runner.forward(false);
  const logits = Array.from(await m.backend.read(runner.logits));
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** What temperature, top-k and top-p do to a distribution, computed independently of the sampler. */
function transform(p: number[], o: SamplingOptions): number[] {
  let q = p.map((x) => Math.pow(x, 1 / o.temperature));
  const order = q.map((_, i) => i).sort((a, b) => q[b] - q[a] || a - b);
  const z0 = q.reduce((a, b) => a + b, 0);
  q = q.map((x) => x / z0);
  const keep = new Set<number>();
  let acc = 0;
  for (const i of order) {
    if (o.topK > 0 && keep.size >= o.topK) break;
    if (o.topP < 1 && acc >= o.topP) break;
    keep.add(i);
    acc += q[i];
  }
  const kept = q.map((x, i) => (keep.has(i) ? x : 0));
  const z = kept.reduce((a, b) => a + b, 0);
  return kept.map((x) => x / z);
}

/** Draws `n` first tokens (each sample from a fresh state) through generate(); returns counts by id. */
async function drawFirstTokens(n: number, sampling: SamplingOptions, seed: number): Promise<number[]> {
  const counts = new Array<number>(loaded.vocabulary.size).fill(0);
  await generate(loaded.model, loaded.vocabulary, {
    prime: '',
    unknown: 'error',
    length: 1,
    count: n,
    separator: '',
    seed,
    sampling,
    write: async (text) => {
      if (text !== '') counts[loaded.vocabulary.id(text)]++;
    },
  });
  return counts;
}

/**
 * Pearson's chi-square statistic of observed counts against expected probabilities (bins with
 * an expected count below 5 pooled), with the critical value at significance 0.001 from the
 * Wilson-Hilferty approximation. A fixed seed makes the outcome deterministic; the tolerance
 * says how unlikely a correct sampler is to fail with an arbitrary seed: 1 in 1000.
 */
function chiSquare(counts: number[], probs: number[]): { stat: number; critical: number; df: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let stat = 0;
  let bins = 0;
  let pooledObserved = 0;
  let pooledExpected = 0;
  counts.forEach((c, i) => {
    const e = probs[i] * n;
    if (e === 0) {
      expect(c, `token ${i} has probability 0 but was drawn`).toBe(0);
      return;
    }
    if (e < 5) {
      pooledObserved += c;
      pooledExpected += e;
      return;
    }
    stat += (c - e) ** 2 / e;
    bins++;
  });
  if (pooledExpected > 0) {
    stat += (pooledObserved - pooledExpected) ** 2 / pooledExpected;
    bins++;
  }
  const df = bins - 1;
  const z = 3.0902; // one-sided 0.001 quantile of the standard normal
  const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return { stat, critical, df };
}

describe('sampling statistics', { timeout: 20000 }, () => {
  const N = 12000;

  it('at temperature 1 the token frequencies match the softmax (chi-square, p > 0.001)', async () => {
    const p = await firstStepProbabilities();
    expect(p.filter((x) => x * N >= 5).length).toBeGreaterThanOrEqual(4); // a test with some power
    const counts = await drawFirstTokens(N, { temperature: 1, topK: 0, topP: 1 }, 7);
    const { stat, critical, df } = chiSquare(counts, p);
    expect(df).toBeGreaterThanOrEqual(3);
    expect(stat, `chi2 ${stat.toFixed(2)} with ${df} degrees of freedom`).toBeLessThan(critical);
    // And every frequent token within 4 standard errors of its probability.
    p.forEach((pi, i) => {
      const se = Math.sqrt((pi * (1 - pi)) / N);
      expect(Math.abs(counts[i] / N - pi)).toBeLessThanOrEqual(4 * se + 1e-12);
    });
  });

  it('temperature, top-k and top-p reshape the distribution exactly as specified', async () => {
    const p = await firstStepProbabilities();
    const cases: SamplingOptions[] = [
      { temperature: 0.5, topK: 0, topP: 1 },
      { temperature: 1.5, topK: 0, topP: 1 },
      { temperature: 1, topK: 3, topP: 1 },
      { temperature: 1, topK: 0, topP: 0.7 },
    ];
    for (const [k, o] of cases.entries()) {
      const q = transform(p, o);
      const counts = await drawFirstTokens(N / 3, o, 100 + k);
      const { stat, critical, df } = chiSquare(counts, q);
      expect(stat, `${JSON.stringify(o)}: chi2 ${stat.toFixed(2)}, df ${df}`).toBeLessThan(critical);
      if (o.topK > 0) expect(counts.filter((c) => c > 0).length).toBeLessThanOrEqual(o.topK);
    }
  });
});

describe('charnn sample (CLI)', { timeout: 20000 }, () => {
  it('is deterministic by seed, and different seeds differ', () => {
    const a = charnn(['sample', '-m', model, '--length', '80', '--seed', '3', '--backend', 'ts']);
    const b = charnn(['sample', '-m', model, '--length', '80', '--seed', '3', '--backend', 'ts']);
    const c = charnn(['sample', '-m', model, '--length', '80', '--seed', '4', '--backend', 'ts']);
    expect(a.code).toBe(0);
    expect(a.stderr).toBe('');
    expect([...a.stdout]).toHaveLength(80);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).not.toBe(c.stdout);
  });

  it('without --seed prints the seed it drew on stderr, and that seed repeats the sample', () => {
    const r = charnn(['sample', '-m', model, '--length', '40', '--backend', 'ts']);
    expect(r.code).toBe(0);
    const m = /^seed (\d+) \(pass --seed \1 to repeat this sample\)\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const again = charnn(['sample', '-m', model, '--length', '40', '--backend', 'ts', '--seed', m![1]]);
    expect(again.stdout).toBe(r.stdout);
  });

  it('--temp 0 and --top-k 1 both give the argmax sequence, whatever the seed', async () => {
    // Greedy decoding computed here, step by step from the logits.
    const m = loaded.model;
    const runner = m.runner(1, 1, { training: false });
    let id = startToken(loaded.vocabulary);
    let greedy = '';
    for (let i = 0; i < 60; i++) {
      runner.setWindow(Int32Array.of(id));
      runner.forward(false);
      const logits = await m.backend.read(runner.logits);
      id = 0;
      for (let v = 1; v < logits.length; v++) if (logits[v] > logits[id]) id = v;
      greedy += loaded.vocabulary.token(id);
    }
    const t0 = charnn(['sample', '-m', model, '--length', '60', '--temp', '0', '--seed', '1', '--backend', 'ts']);
    const k1 = charnn(['sample', '-m', model, '--length', '60', '--top-k', '1', '--seed', '2', '--backend', 'ts']);
    expect(t0.stdout).toBe(greedy);
    expect(k1.stdout).toBe(greedy);
  });

  it('any temperature too small for a float32 1/T is argmax too, on every CPU backend (--temp 1e-39 once gave garbage natively)', () => {
    const backends = 'backend' in loadNativeBackend() ? ['ts', 'native'] : ['ts'];
    for (const backend of backends) {
      const args = ['sample', '-m', model, '--length', '40', '--seed', '3', '--backend', backend, '--temp'];
      const greedy = charnn([...args, '0']).stdout;
      expect(greedy).toHaveLength(40);
      for (const t of ['1e-30', '1e-39', '1.4e-45', '5e-324']) expect(charnn([...args, t]).stdout, `${backend} --temp ${t}`).toBe(greedy);
    }
    expect(isArgmaxTemperature(1e-30)).toBe(false);
    expect(isArgmaxTemperature(2.9e-39)).toBe(true);
  });

  it('--length -1 | head -c 100 ends quietly: exit 0, nothing on stderr', () => {
    const status = join(dir, 'status');
    const err = join(dir, 'stderr');
    const cmd = `"${process.execPath}" "${BIN}" sample -m "${model}" --length -1 --seed 5 --backend ts 2>"${err}" | head -c 100; echo "\${PIPESTATUS[0]}" > "${status}"`;
    const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', timeout: 20000 });
    expect(r.status).toBe(0);
    expect(Buffer.byteLength(r.stdout)).toBe(100);
    expect(readFileSync(status, 'utf8').trim()).toBe('0');
    expect(readFileSync(err, 'utf8')).toBe('');
  });

  it('reads the prime from stdin with --prime-file -', () => {
    const fromStdin = charnn(['sample', '-m', model, '--prime-file', '-', '--length', '20', '--seed', '9', '--backend', 'ts'], '"say 4');
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout.startsWith('"say 4')).toBe(true);
    expect([...fromStdin.stdout]).toHaveLength(6 + 20);
    const primeFile = join(dir, 'prime.txt');
    writeFileSync(primeFile, '"say 4');
    const inline = charnn(['sample', '-m', model, '--prime', '"say 4', '--length', '20', '--seed', '9', '--backend', 'ts']);
    expect(inline.stdout).toBe(fromStdin.stdout);
  });

  it('names prime characters outside the vocabulary, or skips them with --unknown skip', () => {
    const bad = charnn(['sample', '-m', model, '--prime', '12+Q€=', '--length', '5', '--seed', '1', '--backend', 'ts']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/never saw in training: "Q", "€" \(.*--unknown skip/);
    const skipped = charnn(['sample', '-m', model, '--prime', '12+Q€=', '--length', '5', '--seed', '1', '--backend', 'ts', '--unknown', 'skip']);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout.startsWith('12+=')).toBe(true);
    // A character-level vocabulary has no <unk> to map to: a usage error.
    expect(() => encodeText(loaded.vocabulary, 'Q', 'unk')).toThrow(UsageError);
    expect(() => encodeText(loaded.vocabulary, 'Q', 'unk')).toThrow(/no <unk> token/);
  });

  it('-n writes several samples with the separator between them; --quiet prints nothing on stderr', () => {
    const r = charnn(['sample', '-m', model, '-n', '3', '--length', '10', '--separator', '\n---\n', '--backend', 'ts', '--quiet']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const parts = r.stdout.split('\n---\n');
    expect(parts).toHaveLength(3);
    for (const p of parts) expect([...p]).toHaveLength(10);
  });

  it('rejects bad option values with a usage error', () => {
    const r = charnn(['sample', '-m', model, '--temp', '-1', '--backend', 'ts']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('charnn: --temp must be >= 0, got -1\n');
  });
});

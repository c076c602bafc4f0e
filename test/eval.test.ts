import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { readCheckpointMeta } from '../src/checkpoint/read.js';
import { type LoadedModelFile, loadModelFile } from '../src/modelfile/contents.js';
import { VocabularyEncoder } from '../src/data/encoder.js';
import { evaluateText } from '../src/inspect/eval.js';
import { BIN, charnn, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

let dir: string;
let corpus: string;
let text: string;
let model: string;
let meta: Record<string, any>;
let loaded: LoadedModelFile;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-eval-'));
  text = structuredCorpus();
  corpus = writeCorpus(dir, 'corpus.txt', text);
  model = trainTiny(dir, 'tiny', corpus);
  meta = (await readCheckpointMeta(model)).meta as Record<string, any>;
  loaded = await loadModelFile(model, new ReferenceBackend('f32'));
});

const bytes = (s: string) => Readable.from([Buffer.from(s)]);
const opts = { split: 'all' as const, valFrac: 0, unknown: 'skip' as const, invalidUtf8: 'error' as const };

describe('charnn eval (CLI)', { timeout: 20000 }, () => {
  it('--split val reproduces the validation loss the trainer reported for the checkpoint', () => {
    const reported: Array<[number, number]> = meta.training.state.history.val;
    const [iteration, valLoss] = reported.at(-1)!;
    expect(iteration).toBe(meta.training.state.iteration);
    const r = charnn(['eval', '-m', model, corpus, '--split', 'val', '--json', '--backend', 'ts']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(Math.abs(j.nats - valLoss)).toBeLessThan(1e-4);
    expect(j.bits).toBeCloseTo(j.nats / Math.LN2, 12);
    expect(j.perplexity).toBeCloseTo(Math.exp(j.nats), 10);
    // Defaults are the training T and B; the region is the trainer's held-out tail.
    expect(j.seq).toBe(16);
    expect(j.batch).toBe(4);
    expect(j.tokens).toBe(meta.training.corpus.tokens);
    expect(j.region).toEqual([meta.training.corpus.trainTokens, meta.training.corpus.tokens]);
    expect(j.scored).toBe(Math.floor((meta.training.corpus.valTokens - 1) / 4) * 4);
    expect(j).toMatchObject({ level: 'char', bitsPer: 'character', unknown: { rule: 'skip', count: 0 } });
  });

  it('a file holding exactly the tail, read from stdin, gives the same number; the text report agrees', () => {
    const json = JSON.parse(charnn(['eval', '-m', model, corpus, '--split', 'val', '--json', '--backend', 'ts']).stdout);
    const tail = [...text].slice(meta.training.corpus.trainTokens).join('');
    const r = charnn(['eval', '-m', model, '-', '--backend', 'ts'], tail);
    expect(r.code, r.stderr).toBe(0);
    const nats = Number(/^loss +([\d.]+) nats per character/m.exec(r.stdout)![1]);
    const bits = Number(/^bits +([\d.]+) bits per character/m.exec(r.stdout)![1]);
    const ppl = Number(/^perplexity +([\d.]+)/m.exec(r.stdout)![1]);
    expect(Math.abs(nats - json.nats)).toBeLessThan(1e-6);
    expect(Math.abs(bits - json.bits)).toBeLessThan(1e-6);
    expect(Math.abs(ppl - json.perplexity)).toBeLessThan(1e-4);
    expect(r.stdout).toMatch(/^text +stdin: 4\d\d characters$/m);
    expect(r.stdout).toMatch(/^unknown +none \(rule: skip\)$/m);
  });

  it('--json keeps the counts of unknown characters but lists only the 20 most frequent', () => {
    // 60 distinct unknown characters, the k-th appearing k times.
    const unknown = Array.from({ length: 60 }, (_, k) => String.fromCodePoint(0x4e00 + k).repeat(k + 1)).join('');
    const r = charnn(['eval', '-m', model, '-', '--json', '--backend', 'ts', '--batch', '1'], text.slice(0, 200) + unknown);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.unknown.count).toBe((60 * 61) / 2);
    expect(j.unknown.distinct).toBe(60);
    expect(Object.entries(j.unknown.tokens)).toEqual(Array.from({ length: 20 }, (_, i) => [String.fromCodePoint(0x4e00 + 59 - i), 60 - i]));
  });

  it('counts characters outside the vocabulary and states the rule; --unknown error stops naming one', () => {
    const withUnknown = 'Zq' + text.slice(0, 300) + '€€';
    const r = charnn(['eval', '-m', model, '-', '--json', '--backend', 'ts', '--batch', '1'], withUnknown);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.unknown).toMatchObject({ rule: 'skip', count: 4, tokens: { Z: 1, q: 1, '€': 2 }, distinct: 3, distinctExact: true });
    expect(j.unknown.description).toMatch(/removed from the text before scoring/);
    expect(j.tokensRead).toBe([...withUnknown].length);
    expect(j.tokens).toBe([...withUnknown].length - 4);
    expect(j.scored).toBe(j.tokens - 1);
    const err = charnn(['eval', '-m', model, '-', '--unknown', 'error', '--backend', 'ts'], withUnknown);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/^charnn: stdin: character 1 is "Z", which the model never saw in training \(pass --unknown skip/);
    expect(err.stdout).toBe('');
  });

  it('word level: unknown words are read as <unk> by default and counted', () => {
    const words = writeCorpus(dir, 'words.txt', 'the cat sat on the mat . the dog sat on the log .\n'.repeat(60));
    const wm = trainTiny(dir, 'words', words, { level: 'word', iters: '40', 'eval-every': '40' });
    const r = charnn(['eval', '-m', wm, '-', '--backend', 'ts'], 'the zebra sat on the mat . the cat ate the log .\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^unknown +2 tokens outside the vocabulary: "ate", "zebra"$/m);
    expect(r.stdout).toMatch(/rule unk: tokens outside the vocabulary are replaced by <unk> and scored as <unk>/);
    expect(r.stdout).toMatch(/^bits +[\d.]+ bits per token$/m);
  });

  it('rejects a text too short to score', () => {
    const short = charnn(['eval', '-m', model, '-', '--backend', 'ts'], '1');
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/^charnn: stdin has 1 token; at least 2 are needed/);
  });
});

describe('evaluateText', () => {
  it('carries state across windows: the result does not depend on T', async () => {
    const sample = text.slice(0, 600);
    const a = await evaluateText(loaded.model, loaded.vocabulary, bytes(sample), { ...opts, seq: 1, batch: 1 });
    const b = await evaluateText(loaded.model, loaded.vocabulary, bytes(sample), { ...opts, seq: 7, batch: 1 });
    const c = await evaluateText(loaded.model, loaded.vocabulary, bytes(sample), { ...opts, seq: 1000, batch: 1 });
    expect(a.scored).toBe(599);
    expect(b.scored).toBe(599);
    expect(Math.abs(a.nats - b.nats)).toBeLessThan(1e-6);
    expect(Math.abs(a.nats - c.nats)).toBeLessThan(1e-6);
  });

  it('equals the mean negative log-probability computed token by token', async () => {
    const sample = text.slice(0, 200);
    const ids = [...sample].map((ch) => loaded.vocabulary.id(ch));
    const m = loaded.model;
    const runner = m.runner(1, 1, { training: false });
    let total = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      runner.setWindow(Int32Array.of(ids[t]));
      runner.forward(false);
      const logits = Array.from(await m.backend.read(runner.logits));
      const max = Math.max(...logits);
      const logZ = max + Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0));
      total += logZ - logits[ids[t + 1]];
    }
    const r = await evaluateText(m, loaded.vocabulary, bytes(sample), { ...opts, seq: 16, batch: 1 });
    expect(Math.abs(r.nats - total / (ids.length - 1))).toBeLessThan(1e-5);
  });

  it('the streaming encoder gives the same ids however the bytes are cut', () => {
    const sample = 'ab€"(1+2)=3\n'.repeat(5) + '☃';
    const whole: number[] = [];
    const e1 = new VocabularyEncoder(loaded.vocabulary, { unknown: 'skip', invalidUtf8: 'error', sourceName: 't' }, (id) => whole.push(id));
    e1.push(Buffer.from(sample));
    e1.end();
    const pieces: number[] = [];
    const e2 = new VocabularyEncoder(loaded.vocabulary, { unknown: 'skip', invalidUtf8: 'error', sourceName: 't' }, (id) => pieces.push(id));
    const buf = Buffer.from(sample);
    for (let i = 0; i < buf.length; i++) e2.push(buf.subarray(i, i + 1));
    e2.end();
    expect(pieces).toEqual(whole);
    expect(e1.tally.count).toBe(5 * 2 + 1); // b and € on each line, then ☃
    expect(e2.tally.distinct).toEqual(e1.tally.distinct);
  });
});


describe('charnn eval, stopped by a signal', { timeout: 60_000 }, () => {
  it('exits 130/143 and leaves no scratch directory with the text\'s ids behind', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const tmp = mkdtempSync(join(dir, 'tmp-'));
      const child = spawn(process.execPath, [BIN, 'eval', '-m', model, '-', '--backend', 'ts'], { env: { ...process.env, TMPDIR: tmp } });
      // Reading stdin: the ids' scratch directory exists while the rest of the text has not come yet.
      child.stdin.write('the text so far\n'.repeat(100));
      for (let i = 0; i < 200 && readdirSync(tmp).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(readdirSync(tmp), 'the scratch directory was made').toHaveLength(1);
      child.kill(signal);
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(readdirSync(tmp)).toEqual([]);
    }
  });
});

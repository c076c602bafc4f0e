import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointMeta } from '../src/checkpoint/read.js';
import { resample, sparkline } from '../src/inspect/info.js';
import { charnn, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

let dir: string;
let model: string;
let words: string;
let meta: Record<string, any>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-info-'));
  const corpus = writeCorpus(dir, 'corpus.txt', structuredCorpus(200));
  model = trainTiny(dir, 'tiny', corpus, { iters: '60', 'eval-every': '20', layers: '2', hidden: '8' });
  const text = writeCorpus(dir, 'words.txt', 'the cat sat on the mat .\nthe dog sat on the log .\n'.repeat(40));
  words = trainTiny(dir, 'words', text, { level: 'word', model: 'gru', iters: '10', 'eval-every': '10', embed: '6' });
  meta = (await readCheckpointMeta(model)).meta as Record<string, any>;
}, 20000);

describe('charnn info (CLI)', { timeout: 20000 }, () => {
  it('--json: config, parameter count, vocabulary, training state and loss history in one line', () => {
    const r = charnn(['info', '-m', model, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    const V = meta.model.vocabSize;
    expect(j.model).toEqual({ cell: 'lstm', layers: 2, hidden: 8, embed: 0, tie: false, dropout: 0, vocabSize: V });
    // One-hot LSTM: layer 0 Wx [V, 4H], layer 1 Wx [H, 4H], Wh [H, 4H] and b [4H] each, out W [H, V] and b [V].
    const G = 32;
    expect(j.parameters.model).toBe(V * G + 8 * G + G + (8 * G + 8 * G + G) + 8 * V + V);
    expect(j.parameters.optimizer).toBe(2 * j.parameters.model); // Adagrad: mem and its compensation
    expect(j.parameters.carriedState).toBe(2 * 2 * 4 * 8); // h and c, 2 layers, B 4, H 8
    expect(j.vocabulary).toMatchObject({ level: 'char', size: V, unk: false });
    expect(j.vocabulary.tokens).toEqual(meta.vocabulary.tokens);
    expect(j.training.iteration).toBe(60);
    expect(j.training.config).toMatchObject({ batch: 4, seq: 16, seed: 1, valFrac: 0.1 });
    expect(j.training.history.val.map((p: number[]) => p[0])).toEqual([20, 40, 60]);
    expect(j.training.history.val).toEqual(meta.training.state.history.val);
    expect(j.training.bestValLoss).toBe(Math.min(...j.training.history.val.map((p: number[]) => p[1])));
  });

  it('text: readable lines with loss sparklines; --svg draws the curves', () => {
    const svgPath = join(dir, 'loss.svg');
    const r = charnn(['info', '-m', model, '--svg', svgPath]);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^model {7}LSTM, 2 layers × 8 units, one-hot input, dropout 0$/m);
    expect(out).toMatch(/^parameters {2}[\d,]+ \(file also holds/m);
    expect(out).toMatch(/^vocabulary {2}\d+ characters \(char level, line endings read as \\n\)$/m);
    expect(out).toMatch(/"\\n" " " "\\""/);
    expect(out).toMatch(/^training {4}iteration 60, epoch [\d.]+, [\d,]+ tokens seen/m);
    expect(out).toMatch(/^ {12}adagrad lr 0\.3, batch 4 × seq 16, clip-norm 80, warm-up 100, cosine decay to 0\.1 × lr, seed 1$/m);
    expect(out).toMatch(/^ {12}validation [\d.]+ nats\/token = [\d.]+ bits\/char at iteration 60/m);
    expect(out).toMatch(/^ {12}validation [▁▂▃▄▅▆▇█]{3} [\d.]+ → [\d.]+ \(iterations 20–60\)$/m);
    const svg = readFileSync(svgPath, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toMatch(/<polyline class="train"/);
    expect((/<polyline class="val"[^>]*points="([^"]+)"/.exec(svg)![1]).split(' ')).toHaveLength(3);
  });

  it('word level, GRU with an embedding; a file that is not a model is a one-line error', () => {
    const r = charnn(['info', '-m', words]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^model {7}GRU, 1 layer × 16 units, embedding 6, dropout 0$/m);
    expect(r.stdout).toMatch(/^vocabulary {2}\d+ tokens \(word level, split punct\)$/m);
    expect(r.stdout).toMatch(/"<unk>"/);
    const bad = charnn(['info', '-m', join(dir, 'words.txt')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^charnn: .*words\.txt/);
  });
});

describe('sparkline', () => {
  it('scales values to ▁..█ and averages long histories down to the width', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([3, 3, 3])).toBe('▁▁▁');
    expect(sparkline([1, 2], 10, 0, 4)).toBe('▃▅');
    expect(resample([1, 3, 5, 7], 2)).toEqual([2, 6]);
    expect(sparkline(Array.from({ length: 1000 }, (_, i) => 1000 - i), 40)).toHaveLength(40);
  });
});

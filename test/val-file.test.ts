import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointMeta } from '../src/checkpoint/read.js';
import { charnn, structuredCorpus, writeCorpus } from './sample-helpers.js';

/**
 * `charnn train CORPUS --val FILE`: validation on a file of its own, read with the training
 * vocabulary as `charnn eval` reads text (here two characters the corpus lacks, dropped), drives
 * the best checkpoint and plateau decay, is what `charnn eval --split val` scores, and survives
 * --resume. Tiny LSTM on the TypeScript backend, deterministic by seed.
 */

let dir: string;
let corpus: string;
let valid: string;

/** A validation text in the corpus's style, with "Q" and "é", which the corpus lacks. */
function validationText(): string {
  const lines: string[] = [];
  for (let i = 0; i < 60; i++) {
    const a = (i * 37) % 100;
    const b = (i * 59 + 11) % 100;
    lines.push(i % 4 ? `${a}+${b}=${a + b}` : `Q"say ${a}" é(or ${b})`);
  }
  return lines.join('\n') + '\n';
}

const SETTINGS = ['--warmup', '0', '--lr-schedule', 'constant', '--dropout', '0', '--hidden', '16', '--layers', '1', '--batch', '4', '--seq', '16', '--sample-length', '0', '--seed', '1', '--backend', 'ts'];

interface Events {
  evals: Array<{ iteration: number; valLoss: number; valTokens: number; best: boolean }>;
  lrAt: Map<number, number>;
}

/** Train with --log-json and a progress line every step; returns the eval events and each step's lr. */
function train(args: string[]): Events {
  const r = charnn(['train', ...args, ...SETTINGS, '--cache-dir', join(dir, 'cache'), '--log-json', '--print-every', '1']);
  if (r.code !== 0) throw new Error(`charnn train failed (${r.code}): ${r.stderr}`);
  const events = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{')) // the set-up lines before training are plain text
    .map((l) => JSON.parse(l));
  return {
    evals: events.filter((e) => e.event === 'eval'),
    lrAt: new Map(events.filter((e) => e.event === 'step').map((e) => [e.iteration, e.lr])),
  };
}

function evalJson(args: string[]): { nats: number; tokens: number; scored: number; region: number[]; unknown: { count: number } } {
  const r = charnn(['eval', ...args, '--json', '--backend', 'ts']);
  if (r.code !== 0) throw new Error(`charnn eval failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

let run: Events;
let out: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-val-file-'));
  corpus = writeCorpus(dir, 'train.txt', structuredCorpus());
  valid = writeCorpus(dir, 'valid.txt', validationText());
  out = join(dir, 'm.charnn');
  run = train([corpus, '--val', valid, '--out', out, '--iters', '240', '--eval-every', '30', '--lr', '0.3', '--plateau-decay', '0.5']);
});

describe('charnn train --val FILE', { timeout: 60000 }, () => {
  it('reports the validation loss charnn eval computes on FILE, for the best and the last checkpoint', async () => {
    expect(run.evals.length).toBe(8);
    const best = run.evals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    const bestMeta = (await readCheckpointMeta(join(dir, 'm.best.charnn'))).meta as Record<string, any>;
    expect(bestMeta.training.state.iteration).toBe(best.iteration);
    expect(bestMeta.training.state.bestValLoss).toBe(best.valLoss);

    const onBest = evalJson(['-m', join(dir, 'm.best.charnn'), valid]);
    expect(Math.abs(onBest.nats - best.valLoss)).toBeLessThan(1e-4);
    // "Q" and "é" (15 each) are dropped, as eval drops them; the trainer scored what eval scores.
    expect(onBest.unknown.count).toBe(30);
    expect(onBest.scored).toBe(best.valTokens);
    const last = run.evals.at(-1)!;
    expect(Math.abs(evalJson(['-m', out, valid]).nats - last.valLoss)).toBeLessThan(1e-4);
    // --split val needs no text: it scores the run's validation file.
    expect(Math.abs(evalJson(['-m', join(dir, 'm.best.charnn'), '--split', 'val']).nats - best.valLoss)).toBeLessThan(1e-4);
  });

  it('trains on the whole corpus and stores the file, its token count and checksum', async () => {
    const meta = (await readCheckpointMeta(out)).meta as Record<string, any>;
    const tokens = [...readFileSync(corpus, 'utf8')].length;
    expect(meta.training.config.valFile).toBe(valid);
    expect(meta.training.config.valFrac).toBe(0);
    expect(meta.training.corpus).toMatchObject({ tokens, trainTokens: tokens, valTokens: [...validationText()].length - 30 });
    expect(typeof meta.training.corpus.valChecksum).toBe('number');
    // --split train is then all of the corpus.
    expect(evalJson(['-m', out, corpus, '--split', 'train']).region).toEqual([0, tokens]);
  });

  it('plateau decay follows the file: the rate halves after each validation that is not a new best', () => {
    const stalls = run.evals.filter((e) => !e.best && e.iteration < 240);
    expect(stalls.length).toBeGreaterThan(0); // this seed's run does stall (the test would be vacuous otherwise)
    for (const e of run.evals.filter((v) => v.iteration < 240)) {
      expect(run.lrAt.get(e.iteration + 1)).toBe(run.lrAt.get(e.iteration)! * (e.best ? 1 : 0.5));
    }
  });

  it('--resume keeps validating on the file, exactly as the uninterrupted run', () => {
    const half = join(dir, 'half.charnn');
    const first = train([corpus, '--val', valid, '--out', half, '--iters', '120', '--eval-every', '30', '--lr', '0.3', '--plateau-decay', '0.5']);
    const second = train(['--resume', half, '--iters', '240']);
    expect([...first.evals, ...second.evals].map((e) => e.valLoss)).toEqual(run.evals.map((e) => e.valLoss));
  });

  it('--resume finds a moved validation file by --val, and names the missing one otherwise', () => {
    const moved = join(dir, 'moved');
    mkdirSync(moved);
    const half = join(moved, 'half.charnn');
    train([corpus, '--val', valid, '--out', half, '--iters', '60', '--eval-every', '30']);
    copyFileSync(valid, join(moved, 'v.txt'));
    renameSync(valid, join(moved, 'gone.txt'));
    try {
      const missing = charnn(['train', '--resume', half, '--iters', '90', '--backend', 'ts', '--quiet']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^charnn: the run's validation file .*valid\.txt \(named in .*half\.charnn\) cannot be read: .* \(pass the file: charnn train --resume .* --val FILE\)\n$/);
      const found = train(['--resume', half, '--val', join(moved, 'v.txt'), '--iters', '90']);
      expect(found.evals.at(-1)!.valTokens).toBe(run.evals[0].valTokens);
    } finally {
      renameSync(join(moved, 'gone.txt'), valid);
    }
  });
});

describe('charnn train --val FILE at word level', { timeout: 60000 }, () => {
  it('words the vocabulary lacks read as <unk>, as eval reads them, and the losses agree', () => {
    const words = writeCorpus(dir, 'words.txt', 'the cat sat on the mat . the dog ate the log .\n'.repeat(40));
    const validWords = writeCorpus(dir, 'valid-words.txt', 'the cow sat on the log . the cat ate the hat .\n'.repeat(5));
    const model = join(dir, 'words.charnn');
    const r = charnn(['train', words, '--val', validWords, '--level', 'word', '--out', model, '--iters', '40', '--eval-every', '20', ...SETTINGS, '--cache-dir', join(dir, 'cache'), '--log-json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('validating on ' + validWords + ': 70 tokens; 10 tokens outside the vocabulary read as <unk> ("cow" ×5, "hat" ×5), as charnn eval does');
    const last = r.stderr.trim().split('\n').filter((l) => l.includes('"event":"eval"')).map((l) => JSON.parse(l)).at(-1);
    const e = evalJson(['-m', model, validWords]);
    expect(e.unknown.count).toBe(10);
    expect(Math.abs(e.nats - last.valLoss)).toBeLessThan(1e-4);
  });
});

describe('charnn train --val: bad input', { timeout: 20000 }, () => {
  const oneLine = (r: { code: number | null; stderr: string }, code: number, pattern: RegExp) => {
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(/^charnn: [^\n]+\n$/);
    expect(r.stderr).toMatch(pattern);
  };

  it('--val with --val-frac is a usage error', () => {
    oneLine(charnn(['train', corpus, '--val', valid, '--val-frac', '0.1', '--backend', 'ts']), 2, /--val and --val-frac cannot be used together/);
  });

  it('stdin, a directory and a missing file are refused before any work', () => {
    oneLine(charnn(['train', corpus, '--val', '-', '--backend', 'ts']), 2, /--val needs a file, not stdin/);
    oneLine(charnn(['train', corpus, '--val', dir, '--backend', 'ts']), 2, /is a directory, not a text file/);
    oneLine(charnn(['train', corpus, '--val', join(dir, 'nope.txt'), '--backend', 'ts']), 1, /validation file .*nope\.txt cannot be read/);
  });

  it('a file with fewer than 2 readable tokens is an error naming it', () => {
    const tiny = writeCorpus(dir, 'tiny-val.txt', 'QQQé1');
    oneLine(
      charnn(['train', corpus, '--val', tiny, '--out', join(dir, 'tiny.charnn'), '--cache-dir', join(dir, 'cache'), ...SETTINGS, '--iters', '1', '--quiet']),
      1,
      /validation file .*tiny-val\.txt has 1 token the model can read \(4 more outside the model's vocabulary are dropped\)/,
    );
  });

  it('a run that validates on its tail cannot switch to a file on --resume', () => {
    const tail = join(dir, 'tail.charnn');
    train([corpus, '--out', tail, '--iters', '30', '--eval-every', '30']);
    oneLine(charnn(['train', '--resume', tail, '--val', valid, '--backend', 'ts']), 2, /--val .*valid\.txt \(the run has none\)/);
  });

  it('eval --split val on a --val run refuses another text instead of scoring a tail of it', () => {
    oneLine(charnn(['eval', '-m', out, corpus, '--split', 'val', '--backend', 'ts']), 2, /validated on .*valid\.txt, a file of its own, not on a part of .*train\.txt/);
    oneLine(charnn(['eval', '-m', out, '--backend', 'ts']), 2, /name the text to score/);
  });
});

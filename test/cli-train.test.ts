import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointMeta } from '../src/checkpoint/read.js';

/** End to end through the real command (bin/charnn.js over the built dist/). */
const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');
let dir: string;
let corpus: string;

function charnn(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, CHARNN_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = ['--hidden', '16', '--layers', '1', '--batch', '2', '--seq', '8', '--eval-every', '10', '--sample-length', '20', '--seed', '1'];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-cli-'));
  corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, 'the quick brown fox jumps over the lazy dog.\n'.repeat(40));
});

describe('charnn train (CLI)', () => {
  it('trains from a file and writes a checkpoint whose header parses', async () => {
    const out = join(dir, 'file.charnn');
    const r = charnn(['train', corpus, '--iters', '30', '--out', out, '--cache-dir', dir, ...tiny]);
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(true);
    const header = await readCheckpointMeta(out);
    const meta = header.meta as Record<string, any>;
    expect(meta.kind).toBe('charnn-model');
    expect(meta.model).toMatchObject({ cell: 'lstm', hidden: 16, layers: 1, vocabSize: 29 });
    expect(meta.training.state.iteration).toBe(30);
    expect(header.tensors.map((t) => t.name)).toContain('layers.0.Wx');
    expect(r.stderr).toMatch(/iter 30/);
    // The best-validation checkpoint is kept beside it.
    expect(existsSync(join(dir, 'file.best.charnn'))).toBe(true);
  });

  it('trains from stdin', async () => {
    const out = join(dir, 'stdin.charnn');
    const r = charnn(['train', '-', '--iters', '12', '--out', out, '--cache-dir', dir, ...tiny], readFileSync(corpus, 'utf8'));
    expect(r.code).toBe(0);
    const meta = (await readCheckpointMeta(out)).meta as Record<string, any>;
    expect(meta.training.state.iteration).toBe(12);
    expect(meta.training.corpus.source).toBe('-');
  });

  it('samples from the trained model, deterministically by seed', () => {
    const model = join(dir, 'file.charnn');
    const a = charnn(['sample', '-m', model, '--length', '50', '--seed', '3']);
    const b = charnn(['sample', '-m', model, '--length', '50', '--seed', '3']);
    expect(a.code).toBe(0);
    expect([...a.stdout].length).toBe(50);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toMatch(/^[a-z .\n]+$/);
    const primed = charnn(['sample', '-m', model, '--length', '10', '--prime', 'the ', '--seed', '3']);
    expect(primed.stdout.startsWith('the ')).toBe(true);
    expect([...primed.stdout].length).toBe(14);
  });

  it('word level: trains and samples words re-assembled with sensible spacing', () => {
    const words = join(dir, 'words.txt');
    writeFileSync(words, 'The cat sat on the mat. The dog sat on the log, and the cat ran!\n'.repeat(30));
    const out = join(dir, 'words.charnn');
    const r = charnn(['train', words, '--level', 'word', '--iters', '40', '--out', out, '--cache-dir', dir, ...tiny]);
    expect(r.code).toBe(0);
    const sample = charnn(['sample', '-m', out, '--length', '60', '--seed', '2']);
    expect(sample.code).toBe(0);
    // Words are separated by single spaces (no two glued together) and punctuation attaches to
    // the word before it: every space-separated chunk is a known word plus optional punctuation.
    const known = new Set(['The', 'cat', 'sat', 'on', 'the', 'mat', 'dog', 'log', 'and', 'ran']);
    const chunks = sample.stdout.split(/\s+/).filter((c) => c !== '');
    expect(chunks.length).toBeGreaterThan(20);
    for (const c of chunks) {
      const m = /^([A-Za-z]*)([.,!]*)$/.exec(c);
      expect(m && (m[1] === '' || known.has(m[1])), `unexpected chunk ${JSON.stringify(c)}`).toBe(true);
    }
    expect(sample.stdout).not.toMatch(/ [.,!]|  /);
  });

  it('char level: emoji, CJK and combining marks are single tokens that survive training and sampling', async () => {
    const text = join(dir, 'unicode.txt');
    writeFileSync(text, 'café 日本語 🙂👍🏽 e\u0301\n'.repeat(50));
    const out = join(dir, 'unicode.charnn');
    const r = charnn(['train', text, '--iters', '20', '--out', out, '--cache-dir', dir, ...tiny]);
    expect(r.code).toBe(0);
    const meta = (await readCheckpointMeta(out)).meta as Record<string, any>;
    const tokens: string[] = meta.vocabulary.tokens;
    for (const ch of ['é', '日', '🙂', '👍', '🏽', '\u0301']) expect(tokens).toContain(ch);
    expect(tokens.every((t) => [...t].length === 1)).toBe(true);
    const sample = charnn(['sample', '-m', out, '--length', '200', '--seed', '4']);
    expect(sample.code).toBe(0);
    // Every sampled code point is one the corpus had (no split surrogates, no mojibake).
    for (const ch of sample.stdout) expect(tokens).toContain(ch);
    expect([...sample.stdout].length).toBe(200);
  });

  it('saves a checkpoint and exits 130 on Ctrl-C (SIGINT)', async () => {
    const out = join(dir, 'interrupted.charnn');
    const child = spawn(process.execPath, [BIN, 'train', corpus, '--iters', '1000000', '--out', out, '--cache-dir', dir, '--print-every', '1', ...tiny]);
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!signalled && /iter 5 /.test(stderr)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted: saving a checkpoint/);
    const meta = (await readCheckpointMeta(out)).meta as Record<string, any>;
    const iteration = meta.training.state.iteration;
    expect(iteration).toBeGreaterThanOrEqual(5);
    expect(iteration).toBeLessThan(1000000);
  });

  it('stderr closed early (train 2>&1 | head) silences the logs; the run goes on, saves and exits 0', async () => {
    const sub = mkdtempSync(join(dir, 'closed-stderr-'));
    const out = join(sub, 'closed.charnn');
    const child = spawn(process.execPath, [BIN, 'train', corpus, '--iters', '300', '--out', out, '--cache-dir', dir, '--print-every', '1', '--save-every', '5', ...tiny]);
    child.stderr.once('data', () => child.stderr.destroy());
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
    expect(((await readCheckpointMeta(out)).meta as Record<string, any>).training.state.iteration).toBe(300);
    expect(readdirSync(sub).sort()).toEqual(['closed.best.charnn', 'closed.charnn']);
  });

  it('on a signal while the corpus is read, exits 130/143 and leaves no temp files in the token cache', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const cacheDir = mkdtempSync(join(dir, 'cache-'));
      const out = join(dir, `tokenizing-${signal}.charnn`);
      // Reading stdin: the spill file exists while the rest of the text has not come yet.
      const child = spawn(process.execPath, [BIN, 'train', '-', '--iters', '5', '--out', out, '--cache-dir', cacheDir, ...tiny]);
      child.stdin.write('the quick brown fox jumps over the lazy dog.\n'.repeat(200));
      const files = () => readdirSync(cacheDir, { recursive: true }).map(String);
      for (let i = 0; i < 200 && !files().some((f) => f.includes('.tmp')); i++) await new Promise((r) => setTimeout(r, 25));
      expect(files().some((f) => f.includes('.tmp')), 'the cache build started').toBe(true);
      child.kill(signal);
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(files()).toEqual([]);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('reports bad input in one line with a non-zero exit', () => {
    const missing = charnn(['train', join(dir, 'nope.txt'), '--iters', '1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^charnn: .*nope\.txt/);

    const unknownOption = charnn(['train', corpus, '--bogus-option']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/^charnn: .*bogus-option/m);

    const badValue = charnn(['train', corpus, '--hidden', '0', '--cache-dir', dir]);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toMatch(/--hidden must be a positive integer/);
  });
});

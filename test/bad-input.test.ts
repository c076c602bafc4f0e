import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoint/read.js';

/**
 * Every kind of bad input, through the real command (bin/charnn.js over the built dist/): a
 * one-line error `charnn: <what> (<hint>)`, the documented exit code, never a stack trace.
 */
const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');
const dir = mkdtempSync(join(tmpdir(), 'charnn-bad-'));
const cache = join(dir, 'cache');
const tiny = ['--hidden', '8', '--layers', '1', '--batch', '2', '--seq', '8', '--eval-every', '0', '--sample-length', '0', '--seed', '1', '--backend', 'ts', '--cache-dir', cache];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function charnn(args: string[], opts: { env?: Record<string, string>; node?: string[]; cwd?: string } = {}): Promise<Result> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...(opts.node ?? []), BIN, ...args], {
      cwd: opts.cwd ?? dir,
      env: { ...process.env, CHARNN_DEBUG: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Exactly one line on stderr, `charnn: ...` matching `message`, no stack, the given exit code. */
function expectOneLineError(r: Result, code: number, message: RegExp): void {
  expect(r.stderr, r.stderr).not.toMatch(/^\s+at |internal error/m);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^charnn: /);
  expect(r.stderr).toMatch(message);
  expect(r.code, r.stderr).toBe(code);
}

const text = 'the quick brown fox jumps over the lazy dog.\n'.repeat(20);
let corpus: string;
let model: string;

beforeAll(async () => {
  mkdirSync(cache);
  corpus = join(dir, 'corpus.txt');
  writeFileSync(corpus, text);
  model = join(dir, 'good.charnn');
  const r = await charnn(['train', corpus, '--iters', '3', '--out', model, '--quiet', ...tiny]);
  expect(r.code, r.stderr).toBe(0);
});

describe.concurrent('bad corpus (charnn train)', { timeout: 60_000 }, () => {
  const cases: Array<[string, (path: string) => void, number, RegExp]> = [
    ['a missing file', () => {}, 1, /corpus file not found: .*missing\.txt \(check the path/],
    ['a directory', (p) => mkdirSync(p), 2, /is a directory, not a corpus file/],
    ['an empty corpus', (p) => writeFileSync(p, ''), 1, /contains no tokens/],
    ['a corpus shorter than one window', (p) => writeFileSync(p, 'hello world\n'), 1, /has 12 tokens, too few for --batch 2 × \(--seq 8 \+ 1\) = 18 \(use a smaller --batch or --seq/],
    ['a binary file (UTF-16)', (p) => writeFileSync(p, Buffer.from(text, 'utf16le')), 1, /looks like a binary file \(NUL byte at offset 1\) \(charnn trains on UTF-8 text/],
    ['invalid UTF-8', (p) => writeFileSync(p, Buffer.concat([Buffer.from(text), Buffer.from([0xc3, 0x28]), Buffer.from(text)])), 1, /is not valid UTF-8 \(bad bytes near byte offset 900\) \(pass --invalid-utf8 replace/],
    ['a single distinct token', (p) => writeFileSync(p, 'z'.repeat(500)), 1, /contains only one distinct token, "z" \(a language model needs at least two/],
  ];
  for (const [name, make, code, message] of cases) {
    it(name, async () => {
      const path = join(dir, `corpus-${name.replace(/\W+/g, '-')}${name === 'a missing file' ? '-missing.txt' : '.txt'}`);
      make(path);
      expectOneLineError(await charnn(['train', path, '--iters', '5', '--quiet', ...tiny]), code, message);
    });
  }

  it('invalid UTF-8 trains with --invalid-utf8 replace', async () => {
    const path = join(dir, 'replace.txt');
    writeFileSync(path, Buffer.concat([Buffer.from(text), Buffer.from([0xff]), Buffer.from(text)]));
    const r = await charnn(['train', path, '--iters', '2', '--invalid-utf8', 'replace', '--quiet', '--out', join(dir, 'replace.charnn'), ...tiny]);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe.concurrent('bad options', { timeout: 60_000 }, () => {
  const cases: Array<[string[], RegExp]> = [
    [['train', '@corpus', '--bogus-option'], /Unknown argument: bogus-option \(see charnn --help\)/],
    [['sample', '-m', '@model', '--bogus', '1'], /Unknown argument: bogus/],
    [['frobnicate'], /Unknown argument: frobnicate/],
    [['train', '@corpus', '--hidden', '0'], /--hidden must be a positive integer, got 0/],
    [['train', '@corpus', '--layers', '-2'], /--layers must be a positive integer, got -2/],
    [['train', '@corpus', '--batch', '-1'], /--batch must be a positive integer, got -1/],
    [['train', '@corpus', '--seq', '0'], /--seq must be a positive integer, got 0/],
    [['train', '@corpus', '--hidden', 'many'], /--hidden must be a positive integer, got NaN/],
    [['train', '@corpus', '--layers', '1e12'], /a 1000000000000x128 lstm would have at least 1\.32e\+17 parameters, more than charnn handles/],
    [['train', '@corpus', '--lr', '0'], /--lr must be positive, got 0/],
    [['train', '@corpus', '--val-frac', '-0.1'], /--val-frac must be in \[0, 1\), got -0.1/],
    [['train', '@corpus', '--iters', '-5'], /--iters must be a non-negative integer, got -5/],
    [['train', '@corpus', '--time', 'soon'], /cannot read the duration 'soon'/],
    [['train', '@corpus', '--iters', '0', '--epochs', '0'], /^charnn: --iters 0 and --epochs 0 without --time leave the run no end \(give --iters N, --epochs N or --time DURATION\)\n$/],
    [['train', '@corpus', '--model', 'transformer'], /Invalid values:.*transformer/],
    [['train'], /name the corpus to train on/],
    [['train', '@corpus', '--new-tokens', 'grow'], /--new-tokens only applies with --resume/],
    [['sample', '-m', '@model', '--temp', '-1', '--seed', '1'], /--temp must be >= 0, got -1/],
    [['sample', '-m', '@model', '--top-p', '0', '--seed', '1'], /--top-p must be in \(0, 1\], got 0/],
    [['sample', '-m', '@model', '--top-p', '1.5', '--seed', '1'], /--top-p must be in \(0, 1\], got 1.5/],
    // bf16 is a usage error on the GPU whether or not the machine has one (not 'no usable GPU', exit 1).
    [['train', '@corpus', '--precision', 'bf16', '--device', 'gpu'], /^charnn: --precision bf16 runs on the native CPU backend only, not the GPU \(use --backend native --device cpu, or --precision fp32\)\n$/],
    [['bench', '--only', 'rnn128', '--precision', 'bf16', '--device', 'gpu'], /^charnn: --precision bf16 runs on the native CPU backend only, not the GPU/],
    [['train', '@corpus', '--precision', 'bf16', '--backend', 'ts'], /^charnn: --precision bf16 runs on the native CPU backend only, not the ts backend/],
    [['train', '@corpus', '--precision'], /^charnn: --precision needs a value \(see charnn train --help\)\n$/],
  ];
  for (const [args, message] of cases) {
    it(args.join(' ').replace(/@/g, ''), async () => {
      const real = args.map((a) => (a === '@corpus' ? corpus : a === '@model' ? model : a));
      const extra = real[0] === 'train' ? ['--quiet', '--cache-dir', cache] : [];
      expectOneLineError(await charnn([...real, ...extra]), 2, message);
    });
  }
});

describe.concurrent('bad checkpoints (charnn sample -m, charnn train --resume)', { timeout: 60_000 }, () => {
  const damaged: Array<[string, (good: Buffer) => Buffer, RegExp]> = [
    ['truncated', (b) => b.subarray(0, Math.floor(b.length / 2)), /is truncated: expected at least \d+ bytes, found \d+ \(the file was cut short/],
    ['empty', () => Buffer.alloc(0), /is empty/],
    [
      'corrupted',
      (b) => {
        const c = Buffer.from(b);
        c[c.length - 100] ^= 0x10;
        return c;
      },
      /is corrupted: checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\) \(the file was damaged/,
    ],
    [
      'of a newer format version',
      (b) => {
        const c = Buffer.from(b);
        c.writeUInt32LE(7, 8);
        return c;
      },
      /uses format version 7, but this charnn reads only version 1 and older \(upgrade charnn/,
    ],
    ['not a charnn file', () => Buffer.from(text), /is not a charnn checkpoint \(it does not start with the CHARNN signature\)/],
  ];
  for (const [name, damage, message] of damaged) {
    it(name, async () => {
      const path = join(dir, `${name.replace(/\W+/g, '-')}.charnn`);
      writeFileSync(path, damage(readFileSync(model)));
      const before = readFileSync(path);
      expectOneLineError(await charnn(['sample', '-m', path, '--seed', '1', '--backend', 'ts']), 1, message);
      expectOneLineError(await charnn(['train', corpus, '--resume', path, '--iters', '9', '--quiet', '--cache-dir', cache]), 1, message);
      expect(readFileSync(path).equals(before)).toBe(true);
    });
  }

  it('a missing checkpoint or a directory', async () => {
    expectOneLineError(await charnn(['sample', '-m', join(dir, 'nope.charnn'), '--seed', '1']), 1, /checkpoint .*nope\.charnn does not exist/);
    expectOneLineError(await charnn(['train', '--resume', join(dir, 'nope.charnn'), '--quiet']), 1, /checkpoint .*nope\.charnn does not exist/);
    expectOneLineError(await charnn(['train', '--resume', cache, '--quiet']), 1, /is a directory, not a checkpoint file/);
  });
});

describe.concurrent('outputs that cannot be written', { timeout: 60_000 }, () => {
  it('a missing directory, a directory, a path under a file, an existing file that is not a checkpoint', async () => {
    const train = (out: string) => charnn(['train', corpus, '--iters', '2', '--out', out, '--quiet', ...tiny]);
    expectOneLineError(await train(join(dir, 'no-such-dir', 'm.charnn')), 1, /cannot write checkpoint .*m\.charnn: directory .*no-such-dir does not exist/);
    expectOneLineError(await train(cache), 1, /cannot write checkpoint .*cache: it is a directory \(pass a file path/);
    expectOneLineError(await train(join(corpus, 'm.charnn')), 1, /cannot write checkpoint .*: a component of the path is not a directory/);
    expectOneLineError(await train(corpus), 2, /corpus\.txt is the corpus train reads; writing it would destroy it/);
    expect(readFileSync(corpus, 'utf8')).toBe(text);
    const notes = join(dir, 'notes-for-train.txt');
    writeFileSync(notes, 'keep me');
    expectOneLineError(await train(notes), 1, /notes-for-train\.txt exists and is not a charnn checkpoint; train would overwrite it/);
    expect(readFileSync(notes, 'utf8')).toBe('keep me');
  });

  it('a full disk while saving: the error names it, the previous checkpoint survives whole', async () => {
    // A preload makes writes to checkpoint temp files fail with ENOSPC after N good saves: a
    // full disk cannot be staged portably (and tests may run as root, which ignores permissions).
    const preload = join(dir, 'enospc.mjs');
    writeFileSync(
      preload,
      `import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const good = Number(process.env.ENOSPC_AFTER_SAVES);
let saves = 0;
const realOpen = fsp.open;
fsp.open = async function (path, ...rest) {
  const handle = await realOpen.call(this, path, ...rest);
  if (/\\.charnn\\.tmp-/.test(String(path)) && !/\\.best\\./.test(String(path)) && ++saves > good) {
    let room = 1000;
    const write = handle.write.bind(handle);
    handle.write = async (buffer, offset = 0, length = buffer.length - offset, position) => {
      if (room <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      const n = Math.min(length, room);
      room -= n;
      return write(buffer, offset, n, position);
    };
  }
  return handle;
};
syncBuiltinESMExports();
`,
    );
    const sub = join(dir, 'full');
    mkdirSync(sub);
    const out = join(sub, 'm.charnn');
    const r = await charnn(['train', corpus, '--iters', '30', '--save-every', '5', '--out', out, '--quiet', ...tiny], {
      node: ['--import', pathToFileURL(preload).href],
      env: { ENOSPC_AFTER_SAVES: '2' },
    });
    expectOneLineError(r, 1, /cannot write checkpoint .*m\.charnn: no space left on device; .*m\.charnn still holds iteration 10 \(free some disk space/);
    const kept = await readCheckpoint(out); // checksum verified
    expect((kept.meta as any).training.state.iteration).toBe(10);
    expect(readdirSync(sub).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});

describe('CHARNN_DEBUG', { timeout: 60_000 }, () => {
  it('shows the stack trace that is otherwise hidden', async () => {
    const r = await charnn(['train', join(dir, 'missing.txt'), '--quiet'], { env: { CHARNN_DEBUG: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^charnn: corpus file not found/);
    expect(r.stderr).toMatch(/^\s+at /m);
    expect(existsSync(join(dir, 'missing.charnn'))).toBe(false);
  });
});

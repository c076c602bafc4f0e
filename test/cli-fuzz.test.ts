import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, structuredCorpus } from './sample-helpers.js';

/**
 * A property-based fuzz of the whole CLI: random commands with random options (valid, missing,
 * repeated, extreme and non-finite values, unknown ones) over random input files (text, CRLF,
 * BOM, invalid UTF-8, empty, binary, a directory, a symlink, checkpoints, safetensors, notes).
 * Every run must end with exit 0, or 1 or 2 and a last stderr line `charnn: ...`; never an
 * internal error or a stack; and no file may change but the run's named outputs (the last
 * value of an output option, the files a directory output holds, train's .best and cache).
 *
 * CHARNN_FUZZ_RUNS sets the number of runs (default 80, about 40 s on 2 cores);
 * scripts/fuzz-cli.sh runs many more. CHARNN_FUZZ_SEED repeats a run of the fuzz.
 */
const RUNS = Number(process.env.CHARNN_FUZZ_RUNS ?? 80);
/** The charnn to fuzz: this checkout's, or CHARNN_FUZZ_BIN (a copy, so a long fuzz survives rebuilds). */
const CLI = process.env.CHARNN_FUZZ_BIN ?? BIN;
const SEED = process.env.CHARNN_FUZZ_SEED ? Number(process.env.CHARNN_FUZZ_SEED) : undefined;

const pristine = mkdtempSync(join(tmpdir(), 'charnn-fuzz-'));
afterAll(() => rmSync(pristine, { recursive: true, force: true }));

/** Files every run starts from (copied afresh for each run). */
const INPUTS = ['c.txt', 'crlf.txt', 'bom.txt', 'bad.txt', 'empty.txt', 'bin.dat', 'notes.txt', 'm.charnn', 'w.charnn', 'e.safetensors', 'e.json', 'dir', 'link.txt', './c.txt', 'missing.txt', '-'];
/** Paths given to output options: fresh names, and every input (which the guard must protect). */
const OUTPUTS = ['out.charnn', 'o.jsonl', 'o.html', 'odir', 'o.svg', 'o.safetensors', 'o.json', ...INPUTS.filter((f) => f !== '-')];
const NUMBERS = ['0', '1', '2', '3', '-1', '1.5', 'NaN', 'Infinity', '-Infinity', '1e300', '1e-300', '1e999', 'abc', '', '0x10', '-0'];
const FRACTIONS = ['0', '0.1', '0.5', '1', '-0.5', 'NaN', 'Infinity', '1e-300', 'x'];

/**
 * What an option takes: an input file (`in:` and the one that makes sense), an output path, no
 * value, or one of a list whose first entries (up to 3) are sensible values and the rest extreme.
 */
type Kind = `in:${string}` | 'out' | 'flag' | string[];
/** A command's options: name (with alias) -> what values it takes. */
interface Spec {
  positional?: Kind;
  options: Record<string, Kind>;
}

const DEVICE = ['cpu', 'auto', 'gpu', 'tpu'];
const BACKEND = ['ts', 'native', 'auto', 'x'];
const COMMANDS: Record<string, Spec> = {
  train: {
    positional: 'in:c.txt',
    options: {
      '--resume': 'in:m.charnn', '--out': 'out', '-o': 'out', '--level': ['char', 'word', 'byte'], '--model': ['rnn', 'lstm', 'gru', 'x'],
      '--hidden': ['4', '8', ...NUMBERS], '--layers': ['1', '2', ...NUMBERS], '--embed': ['0', '4', ...NUMBERS], '--tie': 'flag',
      '--dropout': FRACTIONS, '--batch': ['1', '2', ...NUMBERS], '--seq': ['4', '8', ...NUMBERS], '--optim': ['adam', 'sgd', 'rmsprop', 'adagrad', 'x'],
      '--lr': ['0.01', ...NUMBERS], '--lr-decay': FRACTIONS, '--lr-decay-every': NUMBERS, '--plateau-decay': FRACTIONS, '--plateau-patience': NUMBERS,
      '--clip': NUMBERS, '--clip-norm': NUMBERS, '--seed': ['1', '4294967296', ...NUMBERS], '--iters': ['1', '2', '3', ...NUMBERS],
      '--epochs': ['0', '1', 'NaN', '-1', 'Infinity', 'x'], '--time': ['1s', '0s', '2s', 'NaNs', '1e400s', 'x', '-1s'],
      '--eval-every': NUMBERS, '--sample-length': ['0', '5', ...NUMBERS], '--save-every': NUMBERS, '--val-frac': FRACTIONS,
      '--vocab-size': NUMBERS, '--min-count': ['1', '2', '1000', ...NUMBERS], '--word-split': ['punct', 'space', 'x'], '--line-endings': ['lf', 'keep', 'crlf'],
      '--invalid-utf8': ['error', 'replace', 'x'], '--new-tokens': ['error', 'unk', 'grow', 'x'], '--backend': BACKEND, '--device': DEVICE,
      '--quiet': 'flag', '--log-json': 'flag', '--print-every': NUMBERS, '--bogus': 'flag',
    },
  },
  sample: {
    options: {
      '-m': 'in:m.charnn', '--model': 'in:w.charnn', '--length': ['1', '5', '0', '-2', 'NaN', '1e300', 'Infinity', 'x'], '--temp': ['0', '1', '1e-39', '5e-324', '1e300', '-1', 'NaN', 'Infinity'],
      '--top-k': NUMBERS, '--top-p': ['0.9', ...FRACTIONS], '--prime': ['1+', '12', 'a\r\nb\r', '', '\ufeff1', 'Zé€😀', '\u00a0\u200b', '-'], '--prime-file': 'in:c.txt',
      '--seed': ['1', ...NUMBERS], '-n': ['1', '2', ...NUMBERS], '--separator': ['', '\n', '--'], '--unknown': ['error', 'skip', 'unk', 'x'],
      '--invalid-utf8': ['error', 'replace', 'x'], '--backend': BACKEND, '--device': DEVICE, '--quiet': 'flag',
    },
  },
  eval: {
    positional: 'in:c.txt',
    options: {
      '-m': 'in:m.charnn', '--seq': ['4', ...NUMBERS], '--batch': ['1', '2', ...NUMBERS], '--split': ['all', 'val', 'train', 'x'], '--val-frac': FRACTIONS,
      '--unknown': ['error', 'skip', 'unk', 'x'], '--invalid-utf8': ['error', 'replace', 'x'], '--json': 'flag', '--backend': BACKEND, '--device': DEVICE, '--quiet': 'flag',
    },
  },
  dump: {
    positional: 'in:c.txt',
    options: {
      '-m': 'in:m.charnn', '--format': ['jsonl', 'npy', 'html', 'lstmvis', 'csv'], '--out': 'out', '-o': 'out', '--what': ['h', 'c', 'gates', 'h,c', 'x', ''],
      '--layers': ['0', '1', '0,1', '7', 'x', ''], '--seq': ['4', ...NUMBERS], '--max-tokens': ['5', '20', ...NUMBERS], '--pattern': ['a', '(', '@3', '/x/q'],
      '--unknown': ['error', 'skip', 'unk', 'x'], '--invalid-utf8': ['error', 'replace', 'x'], '--backend': BACKEND, '--device': DEVICE, '--quiet': 'flag',
    },
  },
  info: { options: { '-m': 'in:m.charnn', '--json': 'flag', '--svg': 'out', '--vocab': ['3', ...NUMBERS] } },
  export: { positional: 'out', options: { '-m': 'in:m.charnn', '--format': ['safetensors', 'onnx'], '--quiet': 'flag' } },
  import: { positional: 'in:e.safetensors', options: { '-o': 'out', '--out': 'out', '--config': 'in:e.json', '--quiet': 'flag' } },
};
const OUTPUT_OPTIONS = new Set(['--out', '-o', '--svg']);

interface Run {
  command: string;
  args: string[];
  /** Paths the run may create or change (relative to its directory); a trailing / allows a folder. */
  allowed: string[];
}

/** A value of `kind`: three times in four a sensible one, else anything the pools hold. */
function valueOf(kind: Exclude<Kind, 'flag'>): fc.Arbitrary<string> {
  const [sensible, any] =
    kind === 'out' ? [OUTPUTS.slice(0, 7), OUTPUTS] : typeof kind === 'string' ? [[kind.slice(3)], INPUTS] : [kind.slice(0, 3), kind];
  return fc.oneof({ arbitrary: fc.constantFrom(...sensible), weight: 3 }, { arbitrary: fc.constantFrom(...any), weight: 1 });
}

/** A random run: a command, maybe its positional, and up to 5 options (some repeated). */
const runArbitrary: fc.Arbitrary<Run> = fc.constantFrom(...Object.keys(COMMANDS)).chain((command) => {
  const spec = COMMANDS[command]!;
  const option = fc.constantFrom(...Object.keys(spec.options)).chain((name) => {
    const kind = spec.options[name]!;
    const value = kind === 'flag' ? fc.constant(null) : valueOf(kind);
    return value.map((v) => [name, v] as const);
  });
  return fc
    .record({
      positional: spec.positional ? fc.option(valueOf(spec.positional as Exclude<Kind, 'flag'>), { freq: 6 }) : fc.constant(null),
      // The model most commands need, often given (and sometimes not).
      model: fc.option(fc.oneof({ arbitrary: fc.constantFrom('m.charnn', 'w.charnn'), weight: 4 }, fc.constantFrom('e.safetensors', 'notes.txt', 'missing.charnn')), { freq: 8 }),
      options: fc.array(option, { maxLength: 5 }),
      repeat: fc.boolean(),
    })
    .map(({ positional, model, options, repeat }) => {
      // Fixed first, so that what the fuzz chose comes later and wins: keep training short.
      const args: string[] = command === 'train' ? ['--cache-dir', 'cache', '--time', '2s', '--hidden', '8', '--batch', '2', '--seq', '8'] : [];
      if (model !== null && command !== 'train' && command !== 'import') args.push('-m', model);
      if (positional !== null) args.push(positional);
      const chosen = repeat && options.length > 0 ? [...options, options[0]!] : options;
      for (const [name, v] of chosen) {
        if (v === null) args.push(name);
        else args.push(name, v);
      }
      return { command, args: [command, ...args], allowed: allowedChanges(command, args, positional) };
    });
});

/** Last value of any of `names` in `args` (the repetition rule: the last one wins). */
function last(args: string[], names: string[]): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < args.length - 1; i++) if (names.includes(args[i]!)) v = args[i + 1];
  return v;
}

function allowedChanges(command: string, args: string[], positional: string | null): string[] {
  const allowed: string[] = [];
  const out = last(args, ['--out', '-o', '--svg']);
  if (out !== undefined && out !== '-') allowed.push(out, `${out}/`);
  if (command === 'train') {
    allowed.push('cache/');
    const resume = last(args, ['--resume']);
    const target = out ?? resume ?? (positional === '-' || positional === null ? 'model.charnn' : `${basename(positional, extname(positional))}.charnn`);
    const ext = extname(target);
    allowed.push(target, join(relative('.', resolve(target, '..')), `${basename(target, ext)}.best${ext || '.charnn'}`));
  }
  if (command === 'export' && positional !== null) allowed.push(positional, positional.endsWith('.safetensors') ? `${positional.slice(0, -12)}.json` : `${positional}.json`);
  return allowed.map((p) => relative('.', resolve(p)) + (p.endsWith('/') ? '/' : ''));
}

/** Every file under `dir` with its content (symlinks as their target), for before/after comparison. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isSymbolicLink()) files.set(relative(dir, p), `-> ${p}`);
      else files.set(relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return files;
}

function isAllowed(path: string, allowed: string[], cwd: string): boolean {
  const abs = resolve(cwd, path);
  return allowed.some((a) => {
    const target = resolve(cwd, a);
    return a.endsWith('/') ? abs.startsWith(target + '/') : abs === target;
  });
}

let stdinText = '';

beforeAll(() => {
  const text = structuredCorpus(60);
  stdinText = text;
  const w = (name: string, data: string | Buffer) => writeFileSync(join(pristine, name), data);
  w('c.txt', text);
  w('crlf.txt', text.replace(/\n/g, '\r\n') + 'x\ry\r');
  w('bom.txt', '\ufeff' + text);
  w('bad.txt', Buffer.concat([Buffer.from(text.slice(0, 200)), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(text.slice(200))]));
  w('empty.txt', '');
  w('bin.dat', Buffer.from([0, 1, 2, 3, 0, 255]));
  w('notes.txt', 'my notes, keep them\n');
  mkdirSync(join(pristine, 'dir'));
  symlinkSync('c.txt', join(pristine, 'link.txt'));
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: pristine, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`fuzz set-up: charnn ${args.join(' ')}: ${r.stderr}`);
  };
  const tiny = ['--hidden', '8', '--layers', '1', '--batch', '2', '--seq', '8', '--iters', '4', '--eval-every', '2', '--seed', '1', '--quiet', '--backend', 'ts', '--cache-dir', 'cache'];
  run(['train', 'c.txt', '-o', 'm.charnn', ...tiny]);
  run(['train', 'c.txt', '-o', 'w.charnn', '--level', 'word', '--embed', '4', ...tiny]);
  run(['export', '-m', 'm.charnn', 'e.safetensors', '--quiet']);
  rmSync(join(pristine, 'cache'), { recursive: true, force: true });
}, 60_000);

describe('CLI fuzz (fast-check): exit 0 or a one-line charnn error, and only named outputs change', () => {
  const seen = new Set<string>();
  const exits = new Map<number, number>();
  let runs = 0;

  it(`${RUNS} random runs`, () => {
    fc.assert(
      fc.property(runArbitrary, (run) => {
        const cwd = mkdtempSync(join(tmpdir(), 'charnn-fuzz-run-'));
        try {
          cpSync(pristine, cwd, { recursive: true, verbatimSymlinks: true });
          const before = snapshot(cwd);
          const r = spawnSync(process.execPath, [CLI, ...run.args], {
            cwd,
            input: stdinText,
            encoding: 'utf8',
            timeout: 60_000,
            env: { ...process.env, CHARNN_DEBUG: '', XDG_CACHE_HOME: join(cwd, 'cache') },
          });
          runs++;
          exits.set(r.status ?? -1, (exits.get(r.status ?? -1) ?? 0) + 1);
          const declared = COMMANDS[run.command]!.options;
          for (const a of run.args) if (a in declared) seen.add(`${run.command} ${a}`);
          const what = `charnn ${run.args.map((a) => JSON.stringify(a)).join(' ')}\nexit ${r.status} ${r.signal ?? ''}\nstderr: ${r.stderr}`;
          expect(r.error, what).toBeUndefined();
          expect([0, 1, 2], what).toContain(r.status);
          expect(r.stderr, what).not.toMatch(/internal error|^\s+at /m);
          if (r.status !== 0) expect(r.stderr.trimEnd().split('\n').pop(), what).toMatch(/^charnn: \S/);
          const after = snapshot(cwd);
          for (const [path, content] of before) {
            if (after.get(path) !== content) expect(isAllowed(path, run.allowed, cwd), `${what}\nchanged or removed: ${path}`).toBe(true);
          }
          for (const path of after.keys()) {
            if (!before.has(path) && !/\.tmp/.test(path)) expect(isAllowed(path, run.allowed, cwd), `${what}\ncreated: ${path}`).toBe(true);
          }
        } finally {
          rmSync(cwd, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    const total = Object.values(COMMANDS).reduce((n, s) => n + Object.keys(s.options).length, 0);
    const byExit = [...exits].sort((a, b) => a[0] - b[0]).map(([code, n]) => `exit ${code}: ${n}`).join(', ');
    process.stderr.write(`cli fuzz: ${runs} runs (${byExit}), ${seen.size} of ${total} command × option pairs exercised\n`);
  }, Math.max(120_000, RUNS * 20_000));
});

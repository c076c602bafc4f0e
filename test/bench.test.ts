import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_CONFIGS, selectConfigs } from '../src/bench/configs.js';
import { flopsPerToken } from '../src/bench/flops.js';
import { parsePeerOutput, peerInvocation } from '../src/bench/peers.js';
import { type QualityRun, formatQualityTable } from '../src/bench/quality.js';
import { type BenchMachine, type BenchRecord, formatJsonLine, formatReport, median } from '../src/bench/report.js';
import { parseRooflineOutput, rooflineEnv, rooflineFraction } from '../src/bench/roofline.js';

/**
 * The benchmark's machinery, without timing anything: the FLOP count, configuration
 * selection, the peers' command lines and JSON parsing, the report, and `charnn bench` end to
 * end for 2 iterations of one configuration (with stand-in peers that only echo JSON).
 */

const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');
const ARITHMETIC = resolve(__dirname, '..', 'corpora', 'arithmetic.txt');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-bench-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function charnn(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CHARNN_DEBUG: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const config = (id: string) => BENCH_CONFIGS.find((c) => c.id === id)!;

describe('FLOPs per character', () => {
  it('counts 6 x (H x G + D x G) per layer and 6 x H x V for the output, one-hot as a lookup', () => {
    // 2x128 LSTM over 65 characters: G = 512; layer 1 (one-hot) 6*128*512, layer 2 twice that, output 6*128*65.
    expect(flopsPerToken({ cell: 'lstm', hidden: 128, layers: 2, embed: 0, vocabSize: 65 })).toBe(393_216 + 786_432 + 49_920);
    expect(flopsPerToken({ cell: 'lstm', hidden: 128, layers: 2, embed: 0, vocabSize: 65 })).toBe(1_229_568);
    // min-char-rnn: 6*100*100 + 6*100*65
    expect(flopsPerToken({ cell: 'rnn', hidden: 100, layers: 1, embed: 0, vocabSize: 65 })).toBe(99_000);
    // GRU gates 3H; an embedding adds 6*E*G on the first layer
    expect(flopsPerToken({ cell: 'gru', hidden: 128, layers: 2, embed: 0, vocabSize: 65 })).toBe(6 * 128 * 384 * 3 + 6 * 128 * 65);
    expect(flopsPerToken({ cell: 'gru', hidden: 10, layers: 1, embed: 4, vocabSize: 7 })).toBe(6 * 10 * 30 + 6 * 4 * 30 + 6 * 10 * 7);
  });
});

describe('configurations', () => {
  it('are the five of the issue and the GPU one, with their targets', () => {
    expect(BENCH_CONFIGS.map((c) => [c.id, c.target])).toEqual([
      ['lstm128', 1],
      ['lstm512', 0.8],
      ['lstm512b128', 0.8],
      ['gru128', 1],
      ['rnn128', 1],
      ['min-char-rnn', 10],
    ]);
    expect(config('min-char-rnn')).toMatchObject({ cell: 'rnn', hidden: 100, layers: 1, seq: 25, batch: 1, optimizer: 'adagrad', lr: 0.1, clip: 5 });
    expect(config('lstm512')).toMatchObject({ cell: 'lstm', hidden: 512, layers: 2, seq: 50, batch: 50, embed: 0 });
    expect(config('lstm512b128')).toMatchObject({ cell: 'lstm', hidden: 512, layers: 2, seq: 50, batch: 128, embed: 0 });
  });

  it('--only picks some, in the table order, and names the known ones on a typo', () => {
    expect(selectConfigs(undefined)).toHaveLength(6);
    expect(selectConfigs('min-char-rnn, lstm128').map((c) => c.id)).toEqual(['lstm128', 'min-char-rnn']);
    expect(() => selectConfigs('lstm128,lstm1024')).toThrow(/unknown configuration lstm1024/);
    try {
      selectConfigs('x');
    } catch (e) {
      expect((e as { hint: string }).hint).toMatch(/lstm128, lstm512, lstm512b128, gru128, rnn128, min-char-rnn/);
    }
  });
});

describe('peers', () => {
  const plan = { iters: 200, warmup: 5, seconds: 0, seed: 1, corpus: '/c/tiny.txt' };

  it('run PyTorch with its own flags for the configuration and its default threads', () => {
    const inv = peerInvocation(config('gru128'), plan, '/p');
    expect(inv.script).toBe(join('/p', 'torch_charlstm.py'));
    const a = inv.args.join(' ');
    for (const flag of ['--data /c/tiny.txt', '--model gru', '--hidden 128', '--layers 2', '--batch 50', '--seq 50', '--input onehot', '--optim adam', '--lr 0.002', '--clip 5', '--warmup 5', '--steps 205', '--time-budget 0']) {
      expect(a).toContain(flag);
    }
    expect(a).not.toContain('--threads');
    const timed = peerInvocation(config('lstm128'), { ...plan, seconds: 12 }, '/p').args.join(' ');
    expect(timed).toContain('--time-budget 12');
    expect(timed).toContain('--steps 0');
  });

  it('run numpy min-char-rnn single-threaded with its flags', () => {
    const inv = peerInvocation(config('min-char-rnn'), plan, '/p');
    expect(inv.script).toBe(join('/p', 'min_char_rnn.py'));
    expect(inv.env.OPENBLAS_NUM_THREADS).toBe('1');
    const a = inv.args.join(' ');
    for (const flag of ['--hidden 100', '--seq 25', '--lr 0.1', '--iters 205', '--seconds 0']) expect(a).toContain(flag);
    expect(peerInvocation(config('min-char-rnn'), { ...plan, seconds: 7 }, '/p').args.join(' ')).toContain('--seconds 7 --iters 0');
  });

  it('are read from their last JSON line with train_chars_per_s', () => {
    const line = '{"peer": "torch_charlstm.py (torch 2.13.0+cpu, 2 threads)", "model": "lstm", "steps": 205, "train_chars_per_s": 93123.4, "seconds": 6.1, "val_loss_nats_per_char": 3.1}';
    const r = parsePeerOutput(`some warning\n{"not": "it"}\n${line}\n\n`);
    expect(r).toMatchObject({ peer: 'torch_charlstm.py (torch 2.13.0+cpu, 2 threads)', trainCharsPerSecond: 93123.4, steps: 205, seconds: 6.1 });
    expect(r.raw.val_loss_nats_per_char).toBe(3.1);
    expect(() => parsePeerOutput('Traceback (most recent call last):\nImportError: no torch\n')).toThrow(/no JSON line with train_chars_per_s.*ImportError: no torch/);
    expect(() => parsePeerOutput('')).toThrow(/printed nothing/);
    expect(() => parsePeerOutput('{"train_chars_per_s": "fast"}')).toThrow(/no JSON line/);
  });
});

describe('report', () => {
  const machine: BenchMachine = { cpu: 'Test CPU @ 2.50GHz', cores: 2, node: 'v20.0.0', backend: 'native', isa: 'avx512', precision: 'fp32', threads: 2, loadStart: [0.1, 0.2, 0.3] };
  const record = (over: Partial<BenchRecord>): BenchRecord => ({
    config: 'lstm128',
    title: '2x128 LSTM, B 50, T 50, one-hot',
    model: { cell: 'lstm', hidden: 128, layers: 2, embed: 0, vocabSize: 65 },
    batch: 50,
    seq: 50,
    optimizer: 'adam',
    backend: 'native',
    threads: 2,
    warmup: 5,
    iters: 200,
    seconds: 5.2,
    charsPerSecond: 96153.8,
    flopsPerChar: 1_229_568,
    gflops: 118.23,
    runs: [96153.8],
    lastLoss: 2.1,
    peer: { kind: 'torch', name: 'torch_charlstm.py (torch 2.13.0+cpu, 2 threads)', charsPerSecond: 93000, gflops: 114.35, runs: [93000], command: 'python torch_charlstm.py' },
    peerError: null,
    rooflineGflops: null,
    rooflineFraction: null,
    ratio: 96153.8 / 93000,
    target: 1,
    targetMet: true,
    loadAfter: 1.02,
    machine,
    ...over,
  });

  it('prints the machine, one row per configuration with chars/s, GFLOP/s, the peer and the ratio', () => {
    const text = formatReport(
      [
        record({}),
        record({ config: 'min-char-rnn', title: 'min-char-rnn', charsPerSecond: 150000, gflops: 14.86, peer: { kind: 'numpy', name: 'min_char_rnn.py (numpy 2.4.6, float64)', charsPerSecond: 20000, gflops: 1.98, runs: [20000], command: '' }, ratio: 7.5, target: 10, targetMet: false }),
      ],
      machine,
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe('charnn bench: Test CPU @ 2.50GHz, 2 cores; node v20.0.0; backend native (avx512, 2 threads); load average 0.10 0.20 0.30 at start');
    expect(text).toMatch(/config\s+model\s+iters\s+chars\/s\s+GFLOP\/s\s+peer\s+peer chars\/s\s+peer GFLOP\/s\s+charnn\/peer\s+target/);
    expect(text).toMatch(/lstm128\s+2x128 LSTM, B 50, T 50, one-hot\s+200\s+96,154\s+118\s+PyTorch 2\.13\.0\+cpu\s+93,000\s+114\s+1\.03x\s+>= 1\.00x met/);
    expect(text).toMatch(/min-char-rnn\s+min-char-rnn\s+200\s+150,000\s+14\.9\s+numpy 2\.4\.6\s+20,000\s+1\.98\s+7\.50x\s+>= 10\.0x MISSED/);
    // columns line up: every row as wide as the header's underline, or narrower (trailing spaces trimmed)
    const rule = lines.find((l) => /^-+ /.test(l))!;
    expect(rule.length).toBeGreaterThanOrEqual(lines[lines.indexOf(rule) + 1].length);
  });

  it('without peers has no peer columns; a failed peer says so', () => {
    const plain = formatReport([record({ peer: null, ratio: null, targetMet: null })], machine);
    expect(plain).not.toMatch(/peer chars/);
    const failed = formatReport([record({ peer: null, ratio: null, targetMet: null, peerError: 'torch_charlstm.py failed (exit 1): ImportError' })], machine);
    expect(failed).toMatch(/lstm128 .* failed/);
    expect(failed).toMatch(/lstm128: peer failed: torch_charlstm.py failed \(exit 1\): ImportError/);
  });

  it('--json lines are single lines of JSON, non-finite numbers as null', () => {
    const line = formatJsonLine(record({ lastLoss: NaN }));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trimEnd()).not.toContain('\n');
    expect(JSON.parse(line).lastLoss).toBeNull();
  });

  it('with a roofline: an "of roofline" column (percent), the JSON fields and a note saying what measured it', () => {
    const roofline = { gflops: 348, source: 'numpy 2.4.6 sgemm 2048^3, 2 threads, best of 5' };
    const r = record({ rooflineGflops: 348, rooflineFraction: rooflineFraction(118.23, 348) });
    const text = formatReport([r], { ...machine, roofline });
    expect(text).toMatch(/GFLOP\/s\s+of roofline\s+peer/);
    expect(text).toMatch(/lstm128\s+2x128 LSTM, B 50, T 50, one-hot\s+200\s+96,154\s+118\s+34%\s+PyTorch/);
    expect(text).toMatch(/roofline: 348 GFLOP\/s \(numpy 2\.4\.6 sgemm 2048\^3, 2 threads, best of 5\)/);
    const json = JSON.parse(formatJsonLine(r));
    expect(json.rooflineGflops).toBe(348);
    expect(json.rooflineFraction).toBeCloseTo(118.23 / 348, 12);
    // without a roofline: no column; measured-but-failed says so
    expect(formatReport([record({})], machine)).not.toMatch(/of roofline/);
    expect(formatReport([record({})], { ...machine, roofline: null })).toMatch(/roofline: not measured/);
  });

  it('roofline: the fraction, the environment of its command, and its output', () => {
    expect(rooflineFraction(174, 348)).toBe(0.5);
    expect(rooflineFraction(174, null)).toBeNull();
    expect(rooflineFraction(174, 0)).toBeNull();
    expect(rooflineFraction(NaN, 348)).toBeNull();
    const env = rooflineEnv({ OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '1048576', OPENBLAS_NUM_THREADS: '1', HOME: '/h' }, 2);
    expect(env).toEqual({ HOME: '/h', OPENBLAS_NUM_THREADS: '2', OMP_NUM_THREADS: '2', MKL_NUM_THREADS: '2' });
    expect(parseRooflineOutput('warning\n{"gflops": 348.5, "numpy": "2.4.6"}\n')).toEqual({ gflops: 348.5, numpy: '2.4.6' });
    expect(parseRooflineOutput('{"gflops": 0}')).toBeNull();
    expect(parseRooflineOutput('Traceback: No module named numpy')).toBeNull();
  });

  it('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe('charnn bench (CLI)', () => {
  const fields = ['config', 'title', 'model', 'batch', 'seq', 'optimizer', 'backend', 'threads', 'warmup', 'iters', 'seconds', 'charsPerSecond', 'flopsPerChar', 'gflops', 'runs', 'lastLoss', 'peer', 'peerError', 'rooflineGflops', 'rooflineFraction', 'ratio', 'target', 'targetMet', 'loadAfter', 'machine'];

  it('runs 2 iterations of one configuration with --json, and the peers with their own flags', () => {
    // Stand-in peers: shell scripts that echo a JSON line with the flags they were given.
    const peers = join(dir, 'peers');
    spawnSync('mkdir', ['-p', peers]);
    const echo = (name: string) =>
      `#!/bin/sh\necho "starting" >&2\necho "noise"\necho "{\\"peer\\": \\"${name}\\", \\"train_chars_per_s\\": 1000.5, \\"steps\\": 3, \\"seconds\\": 0.1, \\"args\\": \\"$*\\", \\"openblas\\": \\"$OPENBLAS_NUM_THREADS\\"}"\n`;
    writeFileSync(join(peers, 'torch_charlstm.py'), echo('torch_charlstm.py (torch 9.9, 2 threads)'));
    writeFileSync(join(peers, 'min_char_rnn.py'), echo('min_char_rnn.py (numpy 9.9, float64)'));
    writeFileSync(join(peers, 'torch-env.sh'), '#!/bin/sh\necho /bin/sh\n');
    chmodSync(join(peers, 'torch-env.sh'), 0o755);
    // A stand-in Python without numpy: runs the (shell) peer scripts, and fails the roofline's
    // `-c` program as a Python without numpy does.
    const python = join(peers, 'python-without-numpy');
    writeFileSync(python, `#!/bin/sh\nif [ "$1" = "-c" ]; then echo "ModuleNotFoundError: No module named 'numpy'" >&2; exit 1; fi\nexec /bin/sh "$@"\n`);
    chmodSync(python, 0o755);

    const r = charnn(['bench', '--only', 'rnn128,min-char-rnn', '--iters', '2', '--warmup', '1', '--json', '--peers', '--peers-dir', peers, '--python', python, '--corpus', ARITHMETIC, '--cache-dir', dir]);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const [rnn, mcr] = lines.map((l) => JSON.parse(l) as Record<string, any>);
    for (const f of fields) expect(Object.keys(rnn)).toContain(f);
    expect(rnn).toMatchObject({ config: 'rnn128', iters: 2, warmup: 1, batch: 50, seq: 50, target: 1 });
    expect(rnn.model).toEqual({ cell: 'rnn', hidden: 128, layers: 2, embed: 0, vocabSize: 14 });
    expect(rnn.charsPerSecond).toBeGreaterThan(0);
    expect(rnn.flopsPerChar).toBe(flopsPerToken(rnn.model));
    expect(rnn.gflops).toBeCloseTo((rnn.charsPerSecond * rnn.flopsPerChar) / 1e9, 2);
    expect(rnn.peer).toMatchObject({ kind: 'torch', name: 'torch_charlstm.py (torch 9.9, 2 threads)', charsPerSecond: 1000.5 });
    expect(rnn.peer.command).toMatch(/torch_charlstm\.py .*--model rnn --hidden 128 --layers 2 --batch 50 --seq 50 .*--warmup 1 --steps 3/);
    expect(rnn.ratio).toBeCloseTo(rnn.charsPerSecond / 1000.5, 2);
    // the stand-in python has no numpy: the roofline fields are null, never a made-up number
    expect(rnn.rooflineGflops).toBeNull();
    expect(rnn.rooflineFraction).toBeNull();
    expect(r.stderr).toMatch(/roofline: not measured: .*python-without-numpy did not measure it \(exit 1: ModuleNotFoundError: No module named 'numpy'\); is numpy installed\?/);
    expect(rnn.machine).toMatchObject({ cores: expect.any(Number), cpu: expect.any(String) });
    expect(mcr).toMatchObject({ config: 'min-char-rnn', iters: 2, seq: 25, batch: 1, optimizer: 'adagrad', target: 10 });
    expect(mcr.peer.command).toMatch(/^OPENBLAS_NUM_THREADS=1 .*min_char_rnn\.py .*--hidden 100 --seq 25 --lr 0\.1 --iters 3 --seconds 0/);
    if (rnn.backend === 'native') expect(mcr.threads).toBe(1);
    // progress went to stderr
    expect(r.stderr).toMatch(/rnn128: charnn .* chars\/s/);
  });

  it('prints the table without --json, and says clearly when the corpus is missing', () => {
    const r = charnn(['bench', '--only', 'min-char-rnn', '--iters', '2', '--warmup', '0', '--corpus', ARITHMETIC, '--cache-dir', dir, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^charnn bench: .* cores; node v\d+/);
    expect(r.stdout).toMatch(/min-char-rnn\s+1x100 RNN, B 1, T 25, one-hot, Adagrad \(min-char-rnn\)\s+2\s+[\d,]+\s+[\d.]+\n/);

    const missing = charnn(['bench', '--corpus', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`charnn: the benchmark corpus ${join(dir, 'nope.txt')} was not found (pass --corpus FILE)\n`);
    const bad = charnn(['bench', '--only', 'lstm1024']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^charnn: --only: unknown configuration lstm1024 \(choose from lstm128, /);
  });

  it('--quality trains charnn (defaults, and the peer\'s recipe) and the peer for the same seconds per seed, and reports validation losses', () => {
    const peers = join(dir, 'quality-peers');
    spawnSync('mkdir', ['-p', peers]);
    writeFileSync(
      join(peers, 'torch_charlstm.py'),
      '#!/bin/sh\necho "{\\"peer\\": \\"torch\\", \\"train_chars_per_s\\": 9, \\"steps\\": 42, \\"seconds\\": 1, \\"val_loss_nats_per_char\\": 1.5, \\"args\\": \\"$*\\"}"\n',
    );
    writeFileSync(join(peers, 'torch-env.sh'), '#!/bin/sh\necho /bin/sh\n');
    chmodSync(join(peers, 'torch-env.sh'), 0o755);
    const r = charnn(['bench', '--quality', '--seconds', '1', '--repeat', '2', '--seed', '4', '--json', '--peers-dir', peers, '--corpus', ARITHMETIC, '--cache-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    const runs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as QualityRun & Record<string, unknown>);
    expect(runs.map((x) => [x.trainer, x.seed])).toEqual([
      ['charnn-default', 4], ['charnn-peer-recipe', 4], ['torch-peer', 4],
      ['charnn-default', 5], ['charnn-peer-recipe', 5], ['torch-peer', 5],
    ]);
    for (const x of runs.filter((y) => y.trainer !== 'torch-peer')) {
      // A real charnn run, cut short: it trained some steps and scored the held-out tail (near
      // ln 14, uniform guessing, after a second that the warm-up mostly takes).
      expect(x.steps).toBeGreaterThan(0);
      expect(x.valLoss).toBeGreaterThan(0.5);
      expect(x.valLoss).toBeLessThan(2 * Math.log(14));
      expect(x.command).toMatch(/^charnn train .*arithmetic\.txt --time 1s --val-frac 0\.1 --seed [45] --eval-every 0/);
    }
    expect(runs[1].command).toMatch(/--optim adam --lr 0\.002 --clip 0 --clip-norm 250 --lr-schedule constant --warmup 0$/);
    expect(runs[0].command).not.toMatch(/--optim/);
    expect(runs[2]).toMatchObject({ valLoss: 1.5, steps: 42 });
    expect(runs[2].command).toMatch(/torch_charlstm\.py --data .*arithmetic\.txt --time-budget 1 --seed 4 --val-frac 0\.1$/);
  }, 60_000);

  it('--quality\'s table: per trainer the losses per seed, their mean, spread and difference from the peer', () => {
    const run = (trainer: QualityRun['trainer'], seed: number, valLoss: number, steps: number): QualityRun => ({ trainer, seed, valLoss, steps, seconds: 300, command: '' });
    const text = formatQualityTable(
      [run('charnn-default', 1, 1.5, 11000), run('charnn-default', 2, 1.52, 11200), run('torch-peer', 1, 1.63, 4900), run('torch-peer', 2, 1.65, 4800)],
      300,
      'load average 0.10',
    );
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('validation loss (nats/char, last 10% held out) after 300 s of training each; load average 0.10');
    expect(lines[2]).toMatch(/^charnn, defaults\s+11100\s+1\.500 1\.520\s+1\.510\s+0\.020\s+-0\.130$/);
    expect(lines[3]).toMatch(/^PyTorch peer \(Adam\)\s+4850\s+1\.630 1\.650\s+1\.640\s+0\.020\s+\+0\.000$/);
    expect(lines).toHaveLength(4);
  });
});


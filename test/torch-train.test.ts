import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../src/modelfile/safetensors.js';
import { charnn, structuredCorpus, writeCorpus } from './sample-helpers.js';
import { ROOT, findTorchPython } from './torch-helpers.js';

/**
 * `python/charnn_torch.py train`: a charnn export trained on in PyTorch with
 * DistributedDataParallel under `torchrun --nproc_per_node 2` on CPU (gloo), then imported back
 * into charnn; and `charnn_torch.py tokenize` against charnn's own tokenizer. Needs the peers'
 * PyTorch (../shared/peers/torch-env.sh); skipped with a message without it.
 */
const torchFound = await findTorchPython();
const PYTHON = 'python' in torchFound ? torchFound.python : null;
if (!PYTHON) console.warn(`torch-train.test.ts: SKIPPING: no Python with PyTorch (${'why' in torchFound ? torchFound.why : ''})`);

const SCRIPT = join(ROOT, 'python', 'charnn_torch.py');
// One thread per process: the processes share this machine's cores (torchrun sets the same).
const ENV = { ...process.env, OMP_NUM_THREADS: '1', CHARNN_TORCH_BUILTIN: '1' };

interface Summary {
  steps: number;
  world_size: number;
  backend: string | null;
  first_loss: number;
  last_loss: number;
  rank_weight_sha256: string[];
}

/** Run charnn_torch.py train, under torchrun with `procs` processes (or plain python for 0); returns its JSON line. */
function torchTrain(procs: number, args: string[]): Summary {
  const launcher = procs > 0 ? [join(dirname(PYTHON!), 'torchrun'), '--standalone', '--nproc_per_node', String(procs)] : [PYTHON!];
  const r = spawnSync(launcher[0], [...launcher.slice(1), SCRIPT, 'train', ...args], { encoding: 'utf8', env: ENV, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`charnn_torch.py train (${procs} processes) failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function evalNats(model: string, text: string): number {
  const r = charnn(['eval', '-m', model, text, '--json', '--backend', 'ts']);
  if (r.code !== 0) throw new Error(`charnn eval failed: ${r.stderr}`);
  return JSON.parse(r.stdout).nats;
}

let dir: string;
let corpus: string;
let exported: string;
const COMMON = ['--batch', '4', '--seq', '16', '--log-every', '10', '--lr', '0.01'];

beforeAll(() => {
  if (!PYTHON) return;
  dir = mkdtempSync(join(tmpdir(), 'charnn-torch-train-'));
  corpus = writeCorpus(dir, 'corpus.txt', structuredCorpus());
  const model = join(dir, 'base.charnn');
  const train = ['train', corpus, '--out', model, '--hidden', '24', '--layers', '2', '--batch', '4', '--seq', '16', '--iters', '20', '--warmup', '0', '--clip', '5', '--clip-norm', '0', '--dropout', '0'];
  for (const args of [[...train, '--seed', '1', '--sample-length', '0', '--cache-dir', join(dir, 'cache'), '--backend', 'ts', '--quiet'], ['export', '-m', model, join(dir, 'base.safetensors')]]) {
    const r = charnn(args);
    if (r.code !== 0) throw new Error(`charnn ${args[0]} failed: ${r.stderr}`);
  }
  exported = join(dir, 'base.safetensors');
}, 120_000);

describe.skipIf(!PYTHON)('charnn_torch.py train: DistributedDataParallel under torchrun', { timeout: 600_000 }, () => {
  let two: Summary;
  const twoOut = () => join(dir, 'two.safetensors');

  beforeAll(() => {
    if (PYTHON) two = torchTrain(2, [exported, corpus, '--steps', '30', '--out', twoOut(), ...COMMON]);
  }, 300_000);

  it('2 processes on CPU (gloo): both ranks hold identical weights, the loss went down', () => {
    expect(two).toMatchObject({ steps: 30, world_size: 2, backend: 'gloo' });
    expect(two.rank_weight_sha256).toHaveLength(2);
    expect(two.rank_weight_sha256[1]).toBe(two.rank_weight_sha256[0]);
    expect(two.last_loss).toBeLessThan(two.first_loss);
  });

  it('the result imports into charnn, scores better than the model it started from, and samples', () => {
    const imported = join(dir, 'two.charnn');
    const r = charnn(['import', twoOut(), '-o', imported]);
    expect(r.code, r.stderr).toBe(0);
    expect(evalNats(imported, corpus)).toBeLessThan(evalNats(join(dir, 'base.charnn'), corpus));
    const s = charnn(['sample', '-m', imported, '--length', '100', '--seed', '1', '--backend', 'ts']);
    expect(s.code, s.stderr).toBe(0);
    expect([...s.stdout].length).toBeGreaterThanOrEqual(100);
  });

  it('takes the steps one process takes with the same B (each rank its share of the streams)', async () => {
    const oneOut = join(dir, 'one.safetensors');
    torchTrain(0, [exported, corpus, '--steps', '30', '--out', oneOut, ...COMMON]);
    const [a, b] = [await readSafetensors(oneOut), await readSafetensors(twoOut())];
    expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
    a.tensors.forEach((t, i) => {
      const other = b.tensors[i].data;
      let worst = 0;
      for (let k = 0; k < t.data.length; k++) worst = Math.max(worst, Math.abs(t.data[k] - other[k]));
      expect(worst, t.name).toBeLessThan(1e-5); // summation order differs, nothing else
    });
  });

  it('--resume continues exactly: 15 steps then 15 more give the weights of 30 at once', () => {
    const out = join(dir, 'resumed.safetensors');
    torchTrain(2, [exported, corpus, '--steps', '15', '--out', out, ...COMMON]);
    const resumed = torchTrain(2, [exported, corpus, '--steps', '30', '--out', out, '--resume', ...COMMON]);
    expect(resumed.steps).toBe(30);
    expect(resumed.rank_weight_sha256).toEqual(two.rank_weight_sha256);
  });

  it('bad input is one line and a non-zero exit', () => {
    const run = (args: string[]) => spawnSync(PYTHON!, [SCRIPT, 'train', exported, corpus, '--out', join(dir, 'bad.safetensors'), ...args], { encoding: 'utf8', env: ENV });
    const cases: Array<[string[], number, RegExp]> = [
      [['--steps', '0'], 2, /--steps must be a positive integer/],
      [['--steps', '5', '--batch', '1000'], 1, /too few for --batch 1000/],
      [['--steps', '5', '--resume'], 2, /--resume: .*bad\.train\.pt does not exist/],
      [['--steps', '5', '--optim', 'lbfgs'], 2, /invalid choice: 'lbfgs'/],
    ];
    for (const [args, code, pattern] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(/^charnn_torch: [^\n]+\n$/);
      expect(r.stderr).toMatch(pattern);
    }
    const strange = writeCorpus(dir, 'strange.txt', 'QQQQ'.repeat(100));
    const r = spawnSync(PYTHON!, [SCRIPT, 'train', exported, strange, '--steps', '5', '--out', join(dir, 'bad.safetensors')], { encoding: 'utf8', env: ENV });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^charnn_torch: .*strange\.txt has 1 token the model's vocabulary lacks: "Q" \(pass --unknown skip to drop them\)\n$/);
  });
});

/**
 * Text that exercises every rule of charnn's tokenizers: a byte-order mark, CRLF and lone CR,
 * punctuation on word edges and all-punctuation chunks, flags, ZWJ sequences, skin-tone
 * modifiers, tag sequences, combining marks, an Indic vowel sign, JavaScript's whitespace
 * (NBSP, U+2028, U+3000) and characters Python counts as whitespace but JavaScript does not
 * (U+001C, U+0085).
 */
const TRICKY =
  '\ufeffHello, world! (hello),  "quoted" -- @-@ 3.14 e.g. don\'t\r\nline2\rline3\n\n' +
  'flags 🇫🇷🇩🇪! family 👨‍👩‍👧. wave 👋🏽, cafe\u0301) (e\u0301\n' +
  'नमस्ते। हिन्दी, «guillemets» ¿qué? ¡sí! $100 +5 =) :-) ...\n' +
  'a\u00a0b\u2028c\u3000d x\u001cy z\u0085w tags 🏴󠁧󠁢󠁳󠁣󠁴󠁿! zwj\u200dend \u200dlead )\u0301\u200d\n';

describe.skipIf(!PYTHON)('charnn_torch.py tokenize: the tokens and ids charnn reads', { timeout: 120_000 }, () => {
  const cases = [
    { name: 'char', args: ['--level', 'char'] },
    { name: 'word-punct', args: ['--level', 'word', '--word-split', 'punct'] },
    { name: 'word-space', args: ['--level', 'word', '--word-split', 'space'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const text = join(dir, `tricky-${c.name}.txt`);
      writeFileSync(text, TRICKY);
      const model = join(dir, `tricky-${c.name}.charnn`);
      const st = join(dir, `tricky-${c.name}.safetensors`);
      for (const args of [
        ['train', text, '--out', model, ...c.args, '--hidden', '4', '--layers', '1', '--batch', '1', '--seq', '4', '--iters', '1', '--val-frac', '0', '--seed', '1', '--cache-dir', join(dir, 'cache'), '--backend', 'ts', '--quiet'],
        ['export', '-m', model, st],
      ]) {
        const r = charnn(args);
        expect(r.code, r.stderr).toBe(0);
      }
      const dump = charnn(['dump', '-m', model, text, '--what', 'h', '--backend', 'ts', '--quiet']);
      expect(dump.code, dump.stderr).toBe(0);
      const charnnTokens = dump.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; token: string });
      const r = spawnSync(PYTHON!, [SCRIPT, 'tokenize', st, text], { encoding: 'utf8', env: ENV });
      expect(r.status, r.stderr).toBe(0);
      const py = JSON.parse(r.stdout) as { tokens: string[]; ids: number[]; unknown: Record<string, number> };
      expect(py.tokens).toEqual(charnnTokens.map((t) => t.token));
      expect(py.ids).toEqual(charnnTokens.map((t) => t.id));
      expect(py.unknown).toEqual({});
    });
  }
});

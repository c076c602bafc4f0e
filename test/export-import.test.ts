import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { loadModelFile, saveModelFile } from '../src/modelfile/contents.js';
import {
  type SafetensorsContents,
  decodeSafetensors,
  encodeSafetensors,
  halfToFloat,
  readSafetensors,
  writeSafetensors,
} from '../src/modelfile/safetensors.js';
import { DESCRIPTION_KIND, LAYOUT_VERSION, METADATA_DESCRIPTION_KEY, type TorchModelDescription, sidecarPathFor } from '../src/modelfile/torch-export.js';
import { type TorchTensor, fromTorchTensors, toTorchTensors, torchTensorSpecs } from '../src/modelfile/torch-layout.js';
import type { TokenizerConfig } from '../src/data/config.js';
import { Vocabulary } from '../src/data/vocabulary.js';
import { CharnnError } from '../src/errors.js';
import type { CellType, ModelConfig } from '../src/model/config.js';
import { Model } from '../src/model/model.js';
import { paramSpecs } from '../src/model/params.js';
import { Random } from '../src/util/random.js';
import { type RunResult, charnn } from './sample-helpers.js';
import { ROOT, findTorchPython } from './torch-helpers.js';

/**
 * charnn export / import and the safetensors files between charnn and PyTorch
 * (python/charnn_torch.py). The PyTorch half needs the peers' PyTorch (../shared/peers/torch-env.sh,
 * found as charnn bench finds it) and is skipped, with a message saying why, without it.
 */
const PY_SCRIPT = join(ROOT, 'python', 'charnn_torch.py');
const dir = mkdtempSync(join(tmpdir(), 'charnn-export-'));
const TOLERANCE = 1e-4;

// ------------------------------------------------------------------------------ finding Python

const torchFound = await findTorchPython();
const PYTHON = 'python' in torchFound ? torchFound.python : null;
if (!PYTHON) console.warn(`export-import.test.ts: SKIPPING the PyTorch comparisons: no Python with PyTorch (${'why' in torchFound ? torchFound.why : ''})`);

/** PYTHONPATH giving the real `safetensors` package (installed into node_modules/.cache from the local wheel), or null. */
function safetensorsLibrary(): string | null {
  if (!PYTHON) return null;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'ensure-py-safetensors.sh'), PYTHON], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim().split('\n').pop() ?? '' : '';
  if (!path) console.warn(`export-import.test.ts: the Python safetensors package is not available (${r.stderr.trim() || 'no wheel'}); files are checked with charnn_torch.py's built-in reader only`);
  return path || null;
}
const SAFETENSORS_LIB = safetensorsLibrary();

interface PyLogProbs {
  reader: string;
  results: Record<string, number[][]>;
}

function python(args: string[], opts: { lib?: boolean } = {}): string {
  // Without `lib`, the built-in reader and writer, even where the venv has safetensors itself.
  const env = opts.lib && SAFETENSORS_LIB ? { ...process.env, PYTHONPATH: SAFETENSORS_LIB } : { ...process.env, CHARNN_TORCH_BUILTIN: '1' };
  env.OMP_NUM_THREADS = '1';
  const r = spawnSync(PYTHON!, [PY_SCRIPT, ...args], { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`charnn_torch.py ${args[0]} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** PyTorch's next-token log-probabilities for each model file, one Python run for them all. */
let idFiles = 0;
function pytorchLogProbs(files: string[], ids: number[], opts: { lib?: boolean } = {}): PyLogProbs {
  const idsPath = join(dir, `ids-${++idFiles}.json`);
  writeFileSync(idsPath, JSON.stringify(ids));
  return JSON.parse(python(['logprobs', idsPath, ...files], opts).trim().split('\n').pop()!) as PyLogProbs;
}

// ------------------------------------------------------------------------------ charnn side

const CHAR_TOKENIZER: TokenizerConfig = { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' };
const CHARS = new Vocabulary('char', ['\n', ' ', '.', 'a', 'b', 'c', 'd', 'e', 'h', 'l', 'o', 'r']);

/** A model with every parameter random in +-0.5 (biases included, so none is silently dropped). */
function randomModel(config: ModelConfig, seed: number): Model {
  const rng = new Random(seed);
  const sizes = new Map(paramSpecs(config).map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]));
  return Model.fromValues(new ReferenceBackend(), config, (name) => Float32Array.from({ length: sizes.get(name)! }, () => rng.uniform(-0.5, 0.5)));
}

/** charnn's next-token log-probabilities for one id sequence, B = 1, from a zero state. */
async function charnnLogProbs(model: Model, ids: number[]): Promise<number[][]> {
  const runner = model.runner(ids.length, 1, { training: false });
  runner.setWindow(Int32Array.from(ids));
  runner.forward(false);
  const logits = await model.backend.read(runner.logits);
  const V = model.config.vocabSize;
  const out: number[][] = [];
  for (let t = 0; t < ids.length; t++) {
    const row = Array.from(logits.subarray(t * V, (t + 1) * V));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    out.push(row.map((x) => x - lse));
  }
  return out;
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(b.length).toBe(a.length);
  let m = 0;
  a.forEach((row, t) => {
    expect(b[t].length).toBe(row.length);
    row.forEach((x, v) => (m = Math.max(m, Math.abs(x - b[t][v]))));
  });
  return m;
}

function idSequence(n: number, V: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Math.floor(rng.uniform(0, V)) % V);
}

/** One line `charnn: ...` on stderr, no stack trace, the given exit code. */
function expectOneLineError(r: RunResult, code: number, message: RegExp): void {
  expect(r.stderr, r.stderr).not.toMatch(/^\s+at |internal error/m);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^charnn: /);
  expect(r.stderr).toMatch(message);
  expect(r.code, r.stderr).toBe(code);
}

function description(model: ModelConfig, vocabulary = CHARS, tokenizer = CHAR_TOKENIZER): TorchModelDescription {
  return { kind: DESCRIPTION_KIND, layout: LAYOUT_VERSION, writer: 'test', model, tokenizer, vocabulary: vocabulary.toJSON() };
}

/** A safetensors file as charnn export writes it, with the tensors edited by `edit`. */
async function writeTorchFile(path: string, model: Model, edit: (t: TorchTensor[]) => TorchTensor[] = (t) => t, metadata = true): Promise<void> {
  const values = new Map<string, Float32Array>();
  for (let i = 0; i < model.params.specs.length; i++) values.set(model.params.specs[i].name, Float32Array.from(await model.backend.read(model.params.tensors[i])));
  const tensors = edit(toTorchTensors(model.config, (n) => values.get(n)!));
  const meta: Record<string, string> = metadata ? { format: 'pt', [METADATA_DESCRIPTION_KEY]: JSON.stringify(description(model.config)) } : {};
  await writeSafetensors(path, { metadata: meta, tensors });
}

// ============================================================================== safetensors

/** A file from a hand-written header object and data bytes (for dtypes and corruptions the writer never makes). */
function handMade(header: unknown, data: Uint8Array, opts: { pad?: boolean } = {}): Uint8Array {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  if (opts.pad !== false) json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

describe('safetensors reader and writer', () => {
  it('writes the layout of the spec, byte for byte (checked by hand on a tiny file)', () => {
    const bytes = concat(encodeSafetensors({ metadata: { k: 'v' }, tensors: [{ name: 'a', shape: [2], data: Float32Array.of(1, -2) }] }));
    const header = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 79 bytes
    expect(bytes.length).toBe(8 + 80 + 8);
    expect([...bytes.subarray(0, 8)]).toEqual([80, 0, 0, 0, 0, 0, 0, 0]); // u64 LE header length, padded to 80
    expect(Buffer.from(bytes.subarray(8, 88)).toString('latin1')).toBe(`${header} `); // one space of padding
    expect([...bytes.subarray(88)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]); // 1.0f, -2.0f little-endian
  });

  it('round-trips tensors of every rank (scalar and empty included) and metadata; the data starts 8-byte aligned', () => {
    const contents: SafetensorsContents = {
      metadata: { format: 'pt', note: 'ünïcödé "quoted"' },
      tensors: [
        { name: 'w', shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, -6.5) },
        { name: 'scalar', shape: [], data: Float32Array.of(Math.PI) },
        { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
        { name: 'cube', shape: [2, 1, 3], data: Float32Array.of(0.1, 0.2, 0.3, -1e-30, 1e30, -0) },
      ],
    };
    const bytes = concat(encodeSafetensors(contents));
    expect(Number(Buffer.from(bytes).readBigUInt64LE(0)) % 8).toBe(0);
    const back = decodeSafetensors(bytes, 'x');
    expect(back.metadata).toEqual(contents.metadata);
    // Read back in offset order, which is the order written.
    expect(back.tensors.map((t) => [t.name, t.shape, [...t.data]])).toEqual(contents.tensors.map((t) => [t.name, t.shape, [...t.data]]));
  });

  it('reads F16, BF16 and F64 tensors as float32', () => {
    const data = Buffer.alloc(2 * 2 + 2 * 2 + 8);
    data.writeUInt16LE(0x3c00, 0); // F16 1.0
    data.writeUInt16LE(0xc100, 2); // F16 -2.5
    data.writeUInt16LE(0x3f80, 4); // BF16 1.0
    data.writeUInt16LE(0xc040, 6); // BF16 -3.0
    data.writeDoubleLE(0.1, 8);
    const file = handMade({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] }, d: { dtype: 'F64', shape: [1], data_offsets: [8, 16] } }, data);
    const t = Object.fromEntries(decodeSafetensors(file, 'x').tensors.map((x) => [x.name, [...x.data]]));
    expect(t).toEqual({ h: [1, -2.5], b: [1, -3], d: [Math.fround(0.1)] });
    expect([halfToFloat(0x0001), halfToFloat(0x7bff), halfToFloat(0x7c00), halfToFloat(0x8000)]).toEqual([2 ** -24, 65504, Infinity, -0]);
  });

  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);
  const corrupt: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(0), /it is empty/],
    ['shorter than the length prefix', Uint8Array.of(1, 2, 3), /only 3 bytes/],
    ['header length past the end', handMade(ok, eight).subarray(0, 40), /header length \(\d+ bytes\) runs past the end/],
    ['a text file', Buffer.from('hello world, this is not a safetensors file at all\n'), /runs past the end/],
    ['header not JSON', handMade('{"a": {"dtype": "F32",', eight), /not valid JSON/],
    ['header not starting with {', handMade(' {}', new Uint8Array(0)), /does not start with "\{"/],
    ['header not an object', handMade('{}', new Uint8Array(0)).fill(0x5b, 8, 9), /does not start|not valid JSON/],
    ['header not UTF-8', handMade(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('latin1'), new Uint8Array(0)).fill(0xff, 9, 10), /not UTF-8|not valid JSON/],
    ['integer dtype', handMade({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, eight), /tensor "a" has dtype I64/],
    ['no dtype', handMade({ a: { shape: [2], data_offsets: [0, 8] } }, eight), /tensor "a" has no dtype/],
    ['shape not matching the bytes', handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight), /tensor "a" has shape \[3\] of F32, which does not fill its 8 bytes/],
    ['negative dimension', handMade({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eight), /malformed shape/],
    ['a shape whose product overflows', handMade({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, eight), /does not fill its 8 bytes/],
    ['a fractional dimension', handMade({ a: { dtype: 'F32', shape: [0.5, 16], data_offsets: [0, 8] } }, eight), /malformed shape/],
    ['offsets reversed', handMade({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight), /end before they begin/],
    ['offsets past the data (truncated)', handMade({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight), /ends at data byte 16, past the end/],
    ['a gap between tensors', handMade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [0], data_offsets: [8, 8] } }, eight), /tensor "b" starts at data byte 8, but the previous tensor ends at 4/],
    ['overlapping tensors', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /starts at data byte 4, but the previous tensor ends at 8/],
    ['bytes after the last tensor', handMade(ok, new Uint8Array(12)), /take 8 bytes of data but the file has 12/],
    ['metadata value not a string', handMade({ __metadata__: { n: 1 }, ...ok }, eight), /"__metadata__" entry "n" is not a string/],
    ['offsets not integers', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, '8'] } }, eight), /malformed data_offsets/],
  ];
  it.each(corrupt)('%s: a one-line CharnnError naming the file', (_, bytes, message) => {
    let error: unknown;
    try {
      decodeSafetensors(bytes, 'bad.safetensors');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CharnnError);
    expect((error as Error).message).toMatch(/^bad\.safetensors is not a valid safetensors file: /);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it('every truncation and every single-byte corruption of a valid file is a CharnnError or a valid read, never a crash', () => {
    const bytes = concat(encodeSafetensors({ metadata: { k: 'v' }, tensors: [{ name: 'a', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, { name: 'b', shape: [1], data: Float32Array.of(5) }] }));
    for (let n = 0; n < bytes.length; n++) expect(() => decodeSafetensors(bytes.subarray(0, n), 'cut')).toThrow(CharnnError);
    const rng = new Random(7);
    for (let i = 0; i < 2000; i++) {
      const copy = Uint8Array.from(bytes);
      copy[Math.floor(rng.uniform(0, copy.length)) % copy.length] = Math.floor(rng.uniform(0, 256)) & 0xff;
      try {
        decodeSafetensors(copy, 'flip');
      } catch (e) {
        expect(e).toBeInstanceOf(CharnnError);
      }
    }
  });

  it('reads and writes files: atomically, no temp file left; missing files and directories are one-line errors', async () => {
    const path = join(dir, 'rw.safetensors');
    await writeSafetensors(path, { metadata: {}, tensors: [{ name: 'x', shape: [1], data: Float32Array.of(7) }] });
    expect((await readSafetensors(path)).tensors[0].data[0]).toBe(7);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    await expect(readSafetensors(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors does not exist/);
    await expect(readSafetensors(dir)).rejects.toThrow(/cannot read .*: it is a directory/);
    await expect(writeSafetensors(join(dir, 'no', 'such', 'x.safetensors'), { metadata: {}, tensors: [] })).rejects.toThrow(/cannot write .*no such file or directory/);
  });
});

// ============================================================================== the layout

describe('the charnn <-> PyTorch tensor layout', () => {
  it('names and shapes follow nn.LSTM / nn.GRU / nn.RNN and word_language_model (encoder, rnn, decoder)', () => {
    expect(torchTensorSpecs({ cell: 'lstm', vocabSize: 10, hidden: 4, layers: 2, embed: 3, dropout: 0 })).toEqual([
      { name: 'encoder.weight', shape: [10, 3] },
      { name: 'rnn.weight_ih_l0', shape: [16, 3] },
      { name: 'rnn.weight_hh_l0', shape: [16, 4] },
      { name: 'rnn.bias_ih_l0', shape: [16] },
      { name: 'rnn.bias_hh_l0', shape: [16] },
      { name: 'rnn.weight_ih_l1', shape: [16, 4] },
      { name: 'rnn.weight_hh_l1', shape: [16, 4] },
      { name: 'rnn.bias_ih_l1', shape: [16] },
      { name: 'rnn.bias_hh_l1', shape: [16] },
      { name: 'decoder.weight', shape: [10, 4] },
      { name: 'decoder.bias', shape: [10] },
    ]);
    // One-hot GRU: no encoder, input size V, G = 3H.
    expect(torchTensorSpecs({ cell: 'gru', vocabSize: 10, hidden: 4, layers: 1, embed: 0, dropout: 0 }).map((s) => `${s.name}[${s.shape}]`).join(' ')).toBe(
      'rnn.weight_ih_l0[12,10] rnn.weight_hh_l0[12,4] rnn.bias_ih_l0[12] rnn.bias_hh_l0[12] decoder.weight[10,4] decoder.bias[10]',
    );
  });

  it('transposes the weights; LSTM and RNN export bias_hh as zeros and import bias_ih + bias_hh', async () => {
    const c: ModelConfig = { cell: 'lstm', vocabSize: 3, hidden: 1, layers: 1, embed: 2, dropout: 0 };
    const m = randomModel(c, 3);
    const v = async (n: string) => Float32Array.from(await m.backend.read(m.params.get(n)));
    const values = new Map<string, Float32Array>();
    for (const s of paramSpecs(c)) values.set(s.name, await v(s.name));
    const t = Object.fromEntries(toTorchTensors(c, (n) => values.get(n)!).map((x) => [x.name, x]));
    const Wx = values.get('layers.0.Wx')!; // [D = 2, G = 4]
    expect([...t['rnn.weight_ih_l0'].data]).toEqual([Wx[0], Wx[4], Wx[1], Wx[5], Wx[2], Wx[6], Wx[3], Wx[7]]); // [G, D]
    expect([...t['rnn.bias_hh_l0'].data]).toEqual([0, 0, 0, 0]);
    const outW = values.get('out.W')!; // [H = 1, V = 3] -> [3, 1]: same values
    expect([...t['decoder.weight'].data]).toEqual([...outW]);
    const bh = Float32Array.of(1, 2, 3, 4);
    const back = fromTorchTensors(c, Object.values(t).map((x) => (x.name === 'rnn.bias_hh_l0' ? { ...x, data: bh } : x)), 'f');
    expect([...back.get('layers.0.b')!]).toEqual([...values.get('layers.0.b')!].map((b, i) => Math.fround(b + bh[i])));
    expect([...back.get('layers.0.Wx')!]).toEqual([...Wx]);
  });

  it('a tied model exports decoder.weight as a copy of encoder.weight; import accepts either one alone', async () => {
    const c: ModelConfig = { cell: 'gru', vocabSize: 5, hidden: 3, layers: 1, embed: 3, dropout: 0, tie: true };
    const m = randomModel(c, 4);
    const values = new Map<string, Float32Array>();
    for (const s of paramSpecs(c)) values.set(s.name, Float32Array.from(await m.backend.read(m.params.get(s.name))));
    const tensors = toTorchTensors(c, (n) => values.get(n)!);
    const enc = tensors.find((x) => x.name === 'encoder.weight')!;
    const dec = tensors.find((x) => x.name === 'decoder.weight')!;
    expect(dec.data).not.toBe(enc.data);
    expect([...dec.data]).toEqual([...enc.data]);
    for (const dropped of ['encoder.weight', 'decoder.weight']) {
      const back = fromTorchTensors(c, tensors.filter((x) => x.name !== dropped), 'f');
      expect([...back.get('embed')!]).toEqual([...values.get('embed')!]);
      expect(back.has('out.W')).toBe(false);
    }
  });
});

// ============================================================================== charnn -> PyTorch

interface ExportCase {
  name: string;
  config: ModelConfig;
}

const exportCases: ExportCase[] = [];
for (const cell of ['rnn', 'lstm', 'gru', 'mlstm'] as CellType[]) {
  for (const embed of [0, 6]) {
    for (const layers of [1, 2]) {
      exportCases.push({ name: `${cell} ${embed ? `embed ${embed}` : 'one-hot'} ${layers} layer${layers > 1 ? 's' : ''}`, config: { cell, vocabSize: CHARS.size, hidden: 8, layers, embed, dropout: layers > 1 ? 0.25 : 0 } });
    }
  }
  exportCases.push({ name: `${cell} tied 2 layers`, config: { cell, vocabSize: CHARS.size, hidden: 8, layers: 2, embed: 8, dropout: 0.1, tie: true } });
}

describe.skipIf(!PYTHON)('charnn -> PyTorch: charnn export, loaded by charnn_torch.py (load_state_dict strict)', { timeout: 120_000 }, () => {
  const ids = idSequence(24, CHARS.size, 11);
  const expected = new Map<string, number[][]>();
  const files = new Map<string, string>();
  let builtin: PyLogProbs;
  let lib: PyLogProbs | null = null;
  const diffs: string[] = [];

  beforeAll(async () => {
    for (const [i, c] of exportCases.entries()) {
      const model = randomModel(c.config, 100 + i);
      const modelPath = join(dir, `export-${i}.charnn`);
      await saveModelFile(modelPath, { model, tokenizer: CHAR_TOKENIZER, vocabulary: CHARS });
      const out = join(dir, `export-${i}.safetensors`);
      const r = charnn(['export', '-m', modelPath, out, '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      expected.set(c.name, await charnnLogProbs(model, ids));
      files.set(c.name, out);
    }
    builtin = pytorchLogProbs([...files.values()], ids);
    if (SAFETENSORS_LIB) lib = pytorchLogProbs([...files.values()], ids, { lib: true });
  }, 120_000);

  it.each(exportCases.map((c) => [c.name, c]))('%s: the same next-token log-probabilities to 1e-4', (_, c) => {
    const ours = expected.get(c.name)!;
    const d = maxAbsDiff(ours, builtin.results[files.get(c.name)!]);
    expect(builtin.reader).toBe('built-in');
    expect(d).toBeLessThan(TOLERANCE);
    let line = `${c.name}: max |log p diff| ${d.toExponential(2)} (built-in reader)`;
    if (lib) {
      expect(lib.reader).toBe('safetensors');
      const dl = maxAbsDiff(ours, lib.results[files.get(c.name)!]);
      expect(dl).toBeLessThan(TOLERANCE);
      line += `, ${dl.toExponential(2)} (safetensors package)`;
    }
    diffs.push(line);
    // Far from uniform: a comparison of near-constant outputs would prove little.
    expect(Math.max(...ours.flat()) - Math.min(...ours.flat())).toBeGreaterThan(0.5);
    if (diffs.length === exportCases.length) console.log(`charnn -> PyTorch\n  ${diffs.join('\n  ')}`);
  });

  it('the sidecar holds the same description as the metadata', async () => {
    const out = files.get(exportCases[0].name)!;
    const meta = (await readSafetensors(out)).metadata;
    expect(meta.format).toBe('pt');
    const sidecar = JSON.parse(readFileSync(sidecarPathFor(out), 'utf8'));
    expect(sidecar).toEqual(JSON.parse(meta[METADATA_DESCRIPTION_KEY]));
    expect(sidecar).toMatchObject({ kind: 'charnn-torch', layout: 1, model: exportCases[0].config, vocabulary: CHARS.toJSON(), tokenizer: CHAR_TOKENIZER });
  });
});

// ============================================================================== PyTorch -> charnn

interface ImportCase {
  name: string;
  args: string[];
  /** Save with the real safetensors package (when it is available). */
  lib: boolean;
}

const importCases: ImportCase[] = [
  { name: 'lstm embed 8 tied 2 layers dropout 0.1', args: ['--cell', 'lstm', '--embed', '8', '--hidden', '8', '--layers', '2', '--tie', '--dropout', '0.1'], lib: true },
  { name: 'gru one-hot 1 layer', args: ['--cell', 'gru', '--hidden', '10', '--layers', '1'], lib: false },
  { name: 'rnn embed 6 2 layers', args: ['--cell', 'rnn', '--embed', '6', '--hidden', '8', '--layers', '2'], lib: false },
];

describe.skipIf(!PYTHON)('PyTorch -> charnn: a model trained in PyTorch, charnn import, sample and the same log-probabilities', { timeout: 120_000 }, () => {
  const text = 'hello there. a cab. a bed. herb ale.\n'.repeat(30);
  const files = new Map<string, { st: string; model: string; importStderr: string }>();
  const tokens = [...new Set(text)].sort();
  const ids = [...'a bed. hello there. herb'].map((ch) => tokens.indexOf(ch));
  let theirs: PyLogProbs;

  beforeAll(() => {
    const corpus = join(dir, 'torch-corpus.txt');
    writeFileSync(corpus, text);
    for (const [i, c] of importCases.entries()) {
      const st = join(dir, `torch-${i}.safetensors`);
      const report = JSON.parse(python(['make-model', st, '--text', corpus, '--steps', '15', '--seed', String(i + 1), ...c.args], { lib: c.lib }).trim());
      expect(report.reader).toBe(c.lib && SAFETENSORS_LIB ? 'safetensors' : 'built-in');
      expect(report.last_loss).toBeLessThan(report.first_loss); // it did train
      const model = join(dir, `torch-${i}.charnn`);
      const r = charnn(['import', st, '-o', model]);
      expect(r.code, r.stderr).toBe(0);
      files.set(c.name, { st, model, importStderr: r.stderr });
    }
    theirs = pytorchLogProbs([...files.values()].map((f) => f.st), ids);
  }, 120_000);

  it.each(importCases.map((c) => [c.name]))('%s: imports, samples text from its vocabulary, and matches PyTorch to 1e-4', async (name) => {
    const { st, model, importStderr } = files.get(name)!;
    expect(importStderr).toMatch(/^wrote .*torch-\d\.charnn: \d-layer (LSTM|GRU|RNN) .* parameters \(description from the metadata of .*\)\n$/);
    const s = charnn(['sample', '-m', model, '--length', '80', '--seed', '3', '--quiet']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toBe('');
    expect(s.stdout.length).toBeGreaterThan(0);
    for (const ch of s.stdout) expect(tokens).toContain(ch);
    const info = charnn(['info', '-m', model, '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout).training).toBeNull();

    const loaded = await loadModelFile(model, new ReferenceBackend());
    expect(loaded.vocabulary.tokens).toEqual(tokens);
    expect(Array.from(loaded.vocabulary.encode('a bed. hello there. herb'))).toEqual(ids);
    const d = maxAbsDiff(await charnnLogProbs(loaded.model, ids), theirs.results[st]);
    console.log(`PyTorch -> charnn, ${name}: max |log p diff| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(TOLERANCE);
  });
});

describe.skipIf(!PYTHON)('PyTorch -> charnn: the multiplicative LSTM, trained by charnn_torch.py (its MLSTM module)', { timeout: 120_000 }, () => {
  it('imports, samples, and matches PyTorch to 1e-4', async () => {
    const text = 'a cab. a bed. herb ale. hello there.\n'.repeat(30);
    const tokens = [...new Set(text)].sort();
    const ids = [...'hello there. a bed. herb'].map((ch) => tokens.indexOf(ch));
    const corpus = join(dir, 'mlstm-corpus.txt');
    writeFileSync(corpus, text);
    const st = join(dir, 'torch-mlstm.safetensors');
    const report = JSON.parse(python(['make-model', st, '--text', corpus, '--steps', '15', '--seed', '5', '--cell', 'mlstm', '--embed', '6', '--hidden', '8', '--layers', '2', '--dropout', '0.1']).trim());
    expect(report.last_loss).toBeLessThan(report.first_loss);
    const model = join(dir, 'torch-mlstm.charnn');
    const r = charnn(['import', st, '-o', model]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/: 2-layer mLSTM \(hidden 8, embedding 6, \d+ tokens\), [\d,]+ parameters/);
    const s = charnn(['sample', '-m', model, '--length', '80', '--seed', '3', '--quiet']);
    expect(s.code, s.stderr).toBe(0);
    for (const ch of s.stdout) expect(tokens).toContain(ch);
    const loaded = await loadModelFile(model, new ReferenceBackend());
    const theirs = pytorchLogProbs([st], ids);
    const d = maxAbsDiff(await charnnLogProbs(loaded.model, ids), theirs.results[st]);
    console.log(`PyTorch -> charnn, mlstm embed 6 2 layers dropout 0.1: max |log p diff| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(TOLERANCE);
  });
});

// ============================================================================== without Python

describe('charnn export + import round trip (no Python needed)', { timeout: 60_000 }, () => {
  it.each([
    ['lstm one-hot 2 layers', { cell: 'lstm', vocabSize: CHARS.size, hidden: 6, layers: 2, embed: 0, dropout: 0 }],
    ['gru embed tied', { cell: 'gru', vocabSize: CHARS.size, hidden: 5, layers: 1, embed: 5, dropout: 0.2, tie: true }],
    ['rnn embed', { cell: 'rnn', vocabSize: CHARS.size, hidden: 4, layers: 1, embed: 3, dropout: 0 }],
  ] as Array<[string, ModelConfig]>)('%s: every parameter comes back exactly; sample and info work on the result', async (name, config) => {
    const model = randomModel(config, 9);
    const src = join(dir, `rt-${config.cell}.charnn`);
    await saveModelFile(src, { model, tokenizer: CHAR_TOKENIZER, vocabulary: CHARS });
    const st = join(dir, `rt-${config.cell}.safetensors`);
    const e = charnn(['export', '-m', src, st]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toMatch(/^wrote .*\.safetensors \(\d+ tensors, [\d,]+ parameters\) and .*rt-\w+\.json\n$/);
    const back = join(dir, `rt-${config.cell}-back.charnn`);
    const i = charnn(['import', st, '-o', back, '--quiet']);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).toBe('');
    const loaded = await loadModelFile(back, new ReferenceBackend());
    expect(loaded.meta.model).toEqual(config);
    expect(loaded.meta.training).toBeUndefined();
    for (const s of paramSpecs(config)) {
      expect([...(await loaded.model.backend.read(loaded.model.params.get(s.name)))], `${name}: ${s.name}`).toEqual([...(await model.backend.read(model.params.get(s.name)))]);
    }
    const sample = charnn(['sample', '-m', back, '--length', '30', '--seed', '1', '--backend', 'ts']);
    expect(sample.code, sample.stderr).toBe(0);
    expect(sample.stdout.length).toBeGreaterThan(0);
  });

  it('a word-level model keeps its vocabulary and tokenizer; the sidecar or --config stands in for missing metadata', async () => {
    const words = new Vocabulary('word', ['<unk>', 'the', 'cat', '.', '\n'], 'space');
    const tokenizer: TokenizerConfig = { level: 'word', invalidUtf8: 'replace', wordSplit: 'space' };
    const config: ModelConfig = { cell: 'gru', vocabSize: words.size, hidden: 4, layers: 1, embed: 3, dropout: 0 };
    const model = randomModel(config, 5);
    const src = join(dir, 'words.charnn');
    await saveModelFile(src, { model, tokenizer, vocabulary: words });
    const st = join(dir, 'words.safetensors');
    expect(charnn(['export', '-m', src, st, '-q']).code).toBe(0);
    const sidecar = JSON.parse(readFileSync(join(dir, 'words.json'), 'utf8'));
    expect(sidecar.vocabulary).toEqual(words.toJSON());
    expect(sidecar.tokenizer).toEqual(tokenizer);

    // The same tensors without metadata: the sidecar beside it is found; elsewhere, --config names it.
    const bare = join(dir, 'bare.safetensors');
    const file = await readSafetensors(st);
    await writeSafetensors(bare, { metadata: {}, tensors: file.tensors });
    const none = charnn(['import', bare, '-o', join(dir, 'bare.charnn')]);
    expectOneLineError(none, 1, /bare\.safetensors carries no charnn model description .*pass --config/);
    expect(existsSync(join(dir, 'bare.charnn'))).toBe(false);
    // A --config that is missing or a directory: the cause in plain words, not node's ENOENT text.
    const missing = charnn(['import', bare, '--config', join(dir, 'nope.json'), '-o', join(dir, 'bare.charnn')]);
    expectOneLineError(missing, 1, /^charnn: cannot read the description .*nope\.json: no such file or directory \(pass the \.json file/);
    const directory = charnn(['import', bare, '--config', dir, '-o', join(dir, 'bare.charnn')]);
    expectOneLineError(directory, 1, /^charnn: cannot read the description .*: it is a directory \(/);
    expect(existsSync(join(dir, 'bare.charnn'))).toBe(false);
    const withConfig = charnn(['import', bare, '--config', join(dir, 'words.json'), '-o', join(dir, 'bare.charnn')]);
    expect(withConfig.code, withConfig.stderr).toBe(0);
    expect(withConfig.stderr).toMatch(/description from .*words\.json\)/);
    writeFileSync(sidecarPathFor(bare), readFileSync(join(dir, 'words.json')));
    const beside = charnn(['import', bare, '-o', join(dir, 'bare2.charnn')]);
    expect(beside.code, beside.stderr).toBe(0);
    expect(beside.stderr).toMatch(/description from .*bare\.json\)/);
    const loaded = await loadModelFile(join(dir, 'bare2.charnn'), new ReferenceBackend());
    expect(loaded.vocabulary.toJSON()).toEqual(words.toJSON());
    expect(loaded.meta.tokenizer).toEqual(tokenizer);
  });
});

describe('charnn import / export: bad input is a one-line error, and nothing is written', { timeout: 60_000 }, () => {
  const bad = join(dir, 'bad');
  const config: ModelConfig = { cell: 'lstm', vocabSize: CHARS.size, hidden: 4, layers: 2, embed: 3, dropout: 0 };
  let model: Model;

  beforeAll(() => {
    mkdirSync(bad);
    model = randomModel(config, 21);
  });

  const cases: Array<[string, (path: string) => Promise<void>, RegExp]> = [
    ['a missing tensor', (p) => writeTorchFile(p, model, (t) => t.filter((x) => x.name !== 'rnn.bias_hh_l1')), /has no tensor "rnn\.bias_hh_l1", which a 2-layer LSTM \(hidden 4, embedding 3, 12 tokens\) needs/],
    [
      'a tensor of the wrong shape',
      (p) => writeTorchFile(p, model, (t) => t.map((x) => (x.name === 'decoder.weight' ? { ...x, shape: [4, 12] } : x))),
      /tensor "decoder\.weight" has shape \[4, 12\], expected \[12, 4\]/,
    ],
    ['an extra tensor', (p) => writeTorchFile(p, model, (t) => [...t, { name: 'rnn.weight_ih_l2', shape: [1], data: Float32Array.of(0) }]), /has tensors a 2-layer LSTM .* does not: "rnn\.weight_ih_l2"/],
    ['garbage', async (p) => writeFileSync(p, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff))), /is not a valid safetensors file/],
    ['an empty file', async (p) => writeFileSync(p, ''), /is not a valid safetensors file: it is empty/],
    [
      'a description whose vocabulary does not match the model',
      (p) =>
        writeSafetensors(p, {
          metadata: { [METADATA_DESCRIPTION_KEY]: JSON.stringify({ ...description(config), vocabulary: { level: 'char', tokens: ['a', 'b'] } }) },
          tensors: [],
        }),
      /malformed charnn model description: the vocabulary has 2 tokens but model\.vocabSize is 12/,
    ],
    [
      'a description of an impossible model',
      (p) => writeSafetensors(p, { metadata: { [METADATA_DESCRIPTION_KEY]: JSON.stringify(description({ ...config, hidden: -3 })) }, tensors: [] }),
      /malformed charnn model description: --hidden must be a positive integer/,
    ],
    [
      'a forged description with 10^12 layers',
      (p) => writeSafetensors(p, { metadata: { [METADATA_DESCRIPTION_KEY]: JSON.stringify(description({ ...config, layers: 1e12 })) }, tensors: [] }),
      /holds 0 tensors, too few for a 1000000000000-layer LSTM/,
    ],
    ['a description that is not JSON', (p) => writeSafetensors(p, { metadata: { [METADATA_DESCRIPTION_KEY]: '{"kind": ' }, tensors: [] }), /malformed charnn model description: not valid JSON/],
    [
      'tied weights that differ',
      async (p) => {
        const tied = randomModel({ ...config, embed: 4, tie: true }, 3);
        await writeTorchFile(p, tied, (t) => t.map((x) => (x.name === 'decoder.weight' ? { ...x, data: x.data.map((v) => v + 1) } : x)));
      },
      /decoder\.weight differs from encoder\.weight, but the description says the weights are tied/,
    ],
    [
      'a NaN weight',
      (p) => writeTorchFile(p, model, (t) => t.map((x) => (x.name === 'rnn.weight_hh_l1' ? { ...x, data: x.data.map((v, i) => (i === 5 ? NaN : v)) } : x))),
      /tensor "rnn\.weight_hh_l1" holds NaN at element 5; a model needs finite weights/,
    ],
    [
      'an infinite bias',
      (p) => writeTorchFile(p, model, (t) => t.map((x) => (x.name === 'decoder.bias' ? { ...x, data: x.data.map((v, i) => (i === 0 ? -Infinity : v)) } : x))),
      /tensor "decoder\.bias" holds -Infinity at element 0/,
    ],
  ];

  it.each(cases)('%s', async (name, make, message) => {
    const input = join(bad, `${name.replace(/\W+/g, '-')}.safetensors`);
    await make(input);
    const out = join(bad, `${name.replace(/\W+/g, '-')}.charnn`);
    expectOneLineError(charnn(['import', input, '-o', out]), 1, message);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(bad).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a model file whose weights hold NaN or Infinity is refused where it is loaded, naming the tensor', async () => {
    const path = join(bad, 'nan.charnn');
    const poisoned = randomModel(config, 5);
    const i = poisoned.params.specs.findIndex((s) => s.name === 'out.b');
    const values = Float32Array.from(await poisoned.backend.read(poisoned.params.tensors[i]));
    values[2] = Infinity;
    poisoned.backend.write(poisoned.params.tensors[i], values);
    await saveModelFile(path, { model: poisoned, tokenizer: CHAR_TOKENIZER, vocabulary: CHARS });
    const text = join(bad, 'nan-text.txt');
    writeFileSync(text, 'abcabc\n');
    for (const args of [['eval', '-m', path, text], ['sample', '-m', path, '--length', '3', '--seed', '1'], ['export', '-m', path, join(bad, 'nan.safetensors')]]) {
      expectOneLineError(charnn(args), 1, /nan\.charnn: tensor "out\.b" holds Infinity at element 2; a model needs finite weights/);
    }
    expect(existsSync(join(bad, 'nan.safetensors'))).toBe(false);
  });

  it('a missing input, an -o that is not a model file, and export mistakes', async () => {
    const out = join(bad, 'x.charnn');
    expectOneLineError(charnn(['import', join(bad, 'none.safetensors'), '-o', out]), 1, /none\.safetensors does not exist/);
    expect(existsSync(out)).toBe(false);
    const good = join(bad, 'good.safetensors');
    await writeTorchFile(good, model);
    const notes = join(bad, 'notes.txt');
    writeFileSync(notes, 'keep me');
    expectOneLineError(charnn(['import', good, '-o', notes]), 1, /notes\.txt exists and is not a charnn checkpoint; import would overwrite it/);
    expect(readFileSync(notes, 'utf8')).toBe('keep me');
    expectOneLineError(charnn(['import', good]), 2, /Missing required argument: out/);

    const src = join(bad, 'src.charnn');
    await saveModelFile(src, { model, tokenizer: CHAR_TOKENIZER, vocabulary: CHARS });
    expectOneLineError(charnn(['export', '-m', src, src]), 2, /src\.charnn is the model export reads; writing it would destroy it/);
    const other = join(bad, 'other.charnn');
    await saveModelFile(other, { model, tokenizer: CHAR_TOKENIZER, vocabulary: CHARS });
    expectOneLineError(charnn(['export', '-m', src, other]), 1, /other\.charnn exists and is not a safetensors file; export would overwrite it/);
    expectOneLineError(charnn(['export', '-m', join(bad, 'missing.charnn'), join(bad, 'm.safetensors')]), 1, /missing\.charnn does not exist/);
    expectOneLineError(charnn(['export', '-m', src, '--format', 'onnx', join(bad, 'm.onnx')]), 2, /Invalid values:.*format/);
    expect(existsSync(join(bad, 'm.safetensors'))).toBe(false);
    expect(existsSync(join(bad, 'm.onnx'))).toBe(false);
  });
});

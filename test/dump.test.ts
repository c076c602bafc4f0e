import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import { type LoadedModelFile, loadModelFile } from '../src/modelfile/contents.js';
import { Vocabulary } from '../src/data/vocabulary.js';
import { type StateBlock, StateStreamer, quantitiesFor } from '../src/inspect/states.js';
import { dictLine, dictText, loadH5wasm } from '../src/inspect/lstmvis.js';
import { charnn, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

let dir: string;
let text: string;
let textPath: string;
let lstm: string;
let gru: string;
let loaded: LoadedModelFile;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-dump-'));
  text = structuredCorpus(200);
  const corpus = writeCorpus(dir, 'corpus.txt', text);
  lstm = trainTiny(dir, 'lstm', corpus, { layers: '2', hidden: '8', iters: '40', 'eval-every': '40' });
  gru = trainTiny(dir, 'gru', corpus, { model: 'gru', hidden: '8', iters: '20', 'eval-every': '20' });
  textPath = writeCorpus(dir, 'text.txt', text.slice(0, 300));
  loaded = await loadModelFile(lstm, new ReferenceBackend('f32'));
}, 20000);

/** Reads a .npy file (format 1.0/2.0, little-endian f4 or i4, C order). */
function readNpy(path: string): { shape: number[]; data: Float32Array | Int32Array } {
  const buf = readFileSync(path);
  expect(buf.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  expect((start + headerLen) % 64).toBe(0);
  const descr = /'descr': '([^']+)'/.exec(header)![1];
  expect(header).toMatch(/'fortran_order': False/);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = buf.subarray(start + headerLen);
  const copy = new Uint8Array(body).buffer;
  const data = descr === '<f4' ? new Float32Array(copy) : descr === '<i4' ? new Int32Array(copy) : null;
  if (!data) throw new Error(`unexpected dtype ${descr}`);
  expect(data.length).toBe(shape.reduce((a, b) => a * b, 1));
  return { shape, data };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function idsOf(vocab: Vocabulary, s: string): number[] {
  return [...s].map((ch) => vocab.id(ch));
}

describe('charnn dump (CLI)', { timeout: 20000 }, () => {
  it('--format jsonl: a line per token with h, c and the gates of every layer; npy holds the same numbers', () => {
    const r = charnn(['dump', '-m', lstm, textPath, '--backend', 'ts', '--seq', '7']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^dumped 300 tokens × 2 layers \(h, c, i, f, g, o\) to stdout\n$/);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(300);
    let worst = 0;
    const ids = idsOf(loaded.vocabulary, text.slice(0, 300));
    lines.forEach((l, t) => {
      expect(l.t).toBe(t);
      expect(l.id).toBe(ids[t]);
      expect(l.token).toBe(text[t]);
      expect(l.layers.map((x: any) => x.layer)).toEqual([0, 1]);
      for (const layer of l.layers) {
        for (const q of ['h', 'c', 'i', 'f', 'g', 'o']) expect(layer[q]).toHaveLength(8);
        // The LSTM's own identity: h = o * tanh(c).
        worst = Math.max(worst, maxDiff(layer.h, layer.o.map((o: number, j: number) => o * Math.tanh(layer.c[j]))));
      }
    });
    expect(worst).toBeLessThan(1e-5);

    const npyDir = join(dir, 'npy');
    const n = charnn(['dump', '-m', lstm, textPath, '--backend', 'ts', '--format', 'npy', '--out', npyDir, '--quiet']);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toBe('');
    const tokens = readNpy(join(npyDir, 'tokens.npy'));
    expect(tokens.shape).toEqual([300]);
    expect(Array.from(tokens.data)).toEqual(ids);
    const manifest = JSON.parse(readFileSync(join(npyDir, 'manifest.json'), 'utf8'));
    expect(manifest.vocabulary).toEqual(loaded.vocabulary.tokens);
    expect(manifest.files).toHaveLength(1 + 2 * 6);
    for (const l of [0, 1]) {
      for (const q of ['h', 'c', 'i', 'f', 'g', 'o']) {
        const a = readNpy(join(npyDir, `layer${l}.${q}.npy`));
        expect(a.shape).toEqual([300, 8]);
        expect(a.data).toBeInstanceOf(Float32Array);
        // JSON numbers are the float32 values written in their shortest exact form.
        const fromJson = lines.flatMap((line) => line.layers[l][q].map((v: number) => Math.fround(v)));
        expect(Array.from(a.data)).toEqual(fromJson);
      }
    }
  });

  it('--format lstmvis: HDF5 files h5wasm reads back as [T, H] states and the token ids, plus the .dict and lstm.yml', async () => {
    const out = join(dir, 'lstmvis');
    const r = charnn(['dump', '-m', lstm, '-', '--backend', 'ts', '--format', 'lstmvis', '--out', out], text.slice(0, 300));
    expect(r.code, r.stderr).toBe(0);
    const h5 = await loadH5wasm();
    const states = new h5.File(join(out, 'states.hdf5'), 'r');
    const words = new h5.File(join(out, 'train.hdf5'), 'r');
    try {
      expect(states.keys().sort()).toEqual(['output1', 'output2', 'states1', 'states2']);
      const npyDir = join(dir, 'npy');
      for (const [path, file] of [['states1', 'layer0.c'], ['output1', 'layer0.h'], ['states2', 'layer1.c'], ['output2', 'layer1.h']]) {
        const ds = states.get(path) as any;
        expect(ds.shape).toEqual([300, 8]);
        expect(ds.dtype).toBe('<f');
        const expected = readNpy(join(npyDir, `${file}.npy`)).data;
        expect(Array.from(ds.value as Float32Array)).toEqual(Array.from(expected));
      }
      const ids = words.get('word_ids') as any;
      expect(ids.shape).toEqual([300]);
      expect(Array.from(ids.value as Int32Array)).toEqual(idsOf(loaded.vocabulary, text.slice(0, 300)));
    } finally {
      states.close();
      words.close();
    }
    const dict = readFileSync(join(out, 'train.dict'), 'utf8').split('\n').filter((l) => l !== '');
    expect(dict).toHaveLength(loaded.vocabulary.size);
    dict.forEach((line, id) => {
      // LSTMVis's reader: "token id" split on whitespace, or " id" for the space token.
      const parts = line.split(/\s+/).filter(Boolean);
      if (loaded.vocabulary.token(id) === ' ') expect(line).toBe(` ${id}`);
      else expect(parts).toEqual([dictLine(loaded.vocabulary.token(id), id).split(' ')[0], String(id)]);
    });
    expect(dict[loaded.vocabulary.id('\n')]).toBe(`\\n ${loaded.vocabulary.id('\n')}`);
    const yml = readFileSync(join(out, 'lstm.yml'), 'utf8');
    expect(yml).toMatch(/^ {2}states: states\.hdf5$/m);
    expect(yml).toMatch(/^ {2}train: train\.hdf5$/m);
    expect(yml).toMatch(/^ {2}words: train\.dict$/m);
    expect(yml).toMatch(/^ {2}path: word_ids$/m);
    expect(yml).toMatch(/^ {4}- \{type: state, layer: 2, path: states2\}$/m);
    expect(yml).toMatch(/^ {4}- \{type: output, layer: 1, path: output1, transform: none\}$/m);
  });

  it('GRU: h and the r, z, n gates (no c), with h = (1 - z) n + z h_prev; --layers, --what and --max-tokens select', () => {
    const r = charnn(['dump', '-m', gru, textPath, '--backend', 'ts', '--max-tokens', '50', '--what', 'h,gates', '--layers', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stopped at --max-tokens 50/);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(50);
    expect(Object.keys(lines[0].layers[0]).sort()).toEqual(['h', 'layer', 'n', 'r', 'z']);
    let prev = new Array(8).fill(0);
    let worst = 0;
    for (const l of lines) {
      const { h, z, n } = l.layers[0];
      worst = Math.max(worst, maxDiff(h, z.map((zj: number, j: number) => (1 - zj) * n[j] + zj * prev[j])));
      prev = h;
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('reports usage errors in one line', () => {
    const noDir = charnn(['dump', '-m', lstm, textPath, '--format', 'npy']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toBe('charnn: --format npy writes several files (name a directory with --out DIR)\n');
  });
});

describe('dump of a multiplicative LSTM', () => {
  it('records h, c, the gates and m = (x Wmx) * (h_prev Wmh) of every layer, and the CLI writes them', async () => {
    const corpus = join(dir, 'corpus.txt');
    const path = trainTiny(dir, 'mlstm', corpus, { model: 'mlstm', layers: '2', hidden: '8', iters: '20', 'eval-every': '20' });
    const m = await loadModelFile(path, new ReferenceBackend('f32'));
    const quantities = quantitiesFor(m.model.config.cell, [0, 1], ['h', 'c', 'gates', 'm']);
    expect(quantities.map((q) => `${q.layer}${q.name}`).join(' ')).toBe('0h 0c 0i 0f 0g 0o 0m 1h 1c 1i 1f 1g 1o 1m');
    const ids = idsOf(m.vocabulary, text.slice(0, 20));
    const blocks: StateBlock[] = [];
    const s = new StateStreamer(m.model, 7, quantities, (b) => {
      blocks.push(b);
    });
    for (const id of ids) await s.push(id, m.vocabulary.token(id));
    await s.end();
    const all = quantities.map((_, q) => Float32Array.from(blocks.flatMap((b) => Array.from(b.values[q]))));
    // Layer 0 reads one-hot input: x Wmx is row `id` of Wmx. m_t from h_{t-1} (zero before the text).
    const H = 8;
    const Wmx = Array.from(await m.model.backend.read(m.model.params.get('layers.0.Wmx')));
    const Wmh = Array.from(await m.model.backend.read(m.model.params.get('layers.0.Wmh')));
    const h0 = all[quantities.findIndex((q) => q.layer === 0 && q.name === 'h')];
    const m0 = all[quantities.findIndex((q) => q.layer === 0 && q.name === 'm')];
    for (let t = 0; t < ids.length; t++) {
      for (let j = 0; j < H; j++) {
        let hm = 0;
        for (let k = 0; k < H; k++) hm += (t > 0 ? h0[(t - 1) * H + k] : 0) * Wmh[k * H + j];
        expect(m0[t * H + j]).toBeCloseTo(Wmx[ids[t] * H + j] * hm, 5);
      }
    }
    expect(Math.max(...m0.map(Math.abs))).toBeGreaterThan(1e-3);
    const r = charnn(['dump', '-m', path, textPath, '--what', 'm', '--max-tokens', '5']);
    expect(r.code, r.stderr).toBe(0);
    const first = JSON.parse(r.stdout.split('\n')[0]);
    expect(Object.keys(first.layers[0])).toEqual(['layer', 'm']);
    const refused = charnn(['dump', '-m', lstm, textPath, '--what', 'm']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('charnn: a LSTM has no m to dump (it has h, c, gates)\n');
    // Named beside quantities the cell has, it is still refused (not silently left out).
    const partly = charnn(['dump', '-m', lstm, textPath, '--what', 'h,m']);
    expect(partly.code).toBe(2);
    expect(partly.stdout).toBe('');
    expect(partly.stderr).toBe('charnn: a LSTM has no m to dump (it has h, c, gates)\n');
  });
});

describe('StateStreamer', () => {
  it('gives the same states whatever the window length (state is carried across windows)', async () => {
    const ids = idsOf(loaded.vocabulary, text.slice(0, 100));
    const quantities = quantitiesFor('lstm', [0, 1], ['h', 'c', 'gates']);
    const collect = async (T: number) => {
      const blocks: StateBlock[] = [];
      const s = new StateStreamer(loaded.model, T, quantities, (b) => {
        blocks.push(b);
      });
      for (const id of ids) await s.push(id, loaded.vocabulary.token(id));
      await s.end();
      expect(s.tokensDone).toBe(100);
      return quantities.map((_, q) => Float32Array.from(blocks.flatMap((b) => Array.from(b.values[q]))));
    };
    const one = await collect(1);
    const many = await collect(13);
    const all = await collect(100);
    for (let q = 0; q < quantities.length; q++) {
      expect(many[q]).toHaveLength(100 * 8);
      expect(maxDiff(many[q], one[q])).toBeLessThan(1e-6);
      expect(maxDiff(all[q], one[q])).toBeLessThan(1e-6);
    }
  });

  it('dictLine escapes whitespace inside tokens the way LSTMVis can read back', () => {
    expect(dictLine(' ', 3)).toBe(' 3');
    expect(dictLine('\n', 0)).toBe('\\n 0');
    expect(dictLine('\t', 1)).toBe('\\t 1');
    expect(dictLine('\u00a0', 2)).toBe('\\u00a0 2');
    expect(dictLine('word', 7)).toBe('word 7');
    // Python's whitespace, wider than JavaScript's: information separators and NEL.
    expect(dictLine('\x1c', 4)).toBe('\\u001c 4');
    expect(dictLine('a\x85b', 5)).toBe('a\\u0085b 5');
  });

  it("train.dict reads back whole with LSTMVis's own parser (Python's str.split)", () => {
    // Every character Python or JavaScript counts as whitespace, alone and inside a word.
    const spaces = [...'\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'];
    const tokens = ['<unk>', 'word', ...spaces, ...spaces.map((c) => `a${c}b`)];
    const path = join(dir, 'python-split.dict');
    writeFileSync(path, dictText(tokens));
    // lstmdata/data_handler.py (LSTMVis), run under Python 3: the lines it keeps, as id -> token.
    const reader = [
      'import json, sys',
      'vk = {}',
      "with open(sys.argv[1], 'r', encoding='utf-8') as f:",
      '    for line in f:',
      '        if len(line) > 0:',
      '            if len(line.split()) == 2:',
      '                k, v = line.split()',
      '                vk[int(v)] = k',
      "            elif line[0] == ' ':",
      "                vk[int(line.strip())] = ' '",
      'print(json.dumps(vk))',
    ].join('\n');
    const read = JSON.parse(execFileSync('python3', ['-c', reader, path], { encoding: 'utf8' })) as Record<string, string>;
    expect(Object.keys(read)).toHaveLength(tokens.length);
    tokens.forEach((t, id) => expect(read[id]).toBe(t === ' ' ? ' ' : dictLine(t, id).split(' ')[0]));
  });
});


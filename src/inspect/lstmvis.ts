import { basename, join, resolve } from 'node:path';
import type { Dataset, File as H5File } from 'h5wasm';
import { CharnnError } from '../errors.js';
import { cellSpec, cellTitle, quantityBounded } from '../model/cells/index.js';
import type { DumpContext, DumpWriter } from './dump-writer.js';
import { openDataOut } from './output.js';
import type { StateBlock } from './states.js';

/** Names of the files LSTMVis reads, inside the --out directory. */
export const LSTMVIS_FILES = {
  states: 'states.hdf5',
  words: 'train.hdf5',
  dict: 'train.dict',
  config: 'lstm.yml',
} as const;

/** The HDF5 dataset holding the token ids in train.hdf5. */
export const LSTMVIS_WORD_PATH = 'word_ids';

/**
 * HDF5 dataset paths in states.hdf5 for a quantity, LSTMVis style (layers counted from 1): in
 * a cell with a memory cell (LSTM, mLSTM), c is `states<l>` (type state) and h `output<l>`
 * (type output); a GRU or vanilla RNN has only h, which is its state: `states<l>`.
 */
export function lstmVisPath(cell: string, layer: number, quantity: string): { path: string; type: 'state' | 'output' } {
  if (cellSpec(cell).hasCellState) return quantity === 'c' ? { path: `states${layer + 1}`, type: 'state' } : { path: `output${layer + 1}`, type: 'output' };
  return { path: `states${layer + 1}`, type: 'state' };
}

/**
 * Whitespace as LSTMVis's reader sees it: it parses each .dict line with Python's
 * `str.split()`, whose whitespace (`str.isspace`) is wider than JavaScript's `\s`: it adds the
 * information separators \x1c-\x1f and NEL \x85. JavaScript's extra, the BOM \uFEFF, is kept
 * in the set so that the file reads the same in both.
 */
const DICT_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/gu;

/**
 * A token as one field of a .dict line. LSTMVis reads `token id` lines with `line.split()`
 * (a line that splits into two fields), or a line starting with a space as the space token; any
 * other line is dropped. So whitespace inside a token (by Python's definition, see
 * DICT_WHITESPACE) is escaped as \n, \r, \t or \uXXXX, and the space token is written as
 * ` id`, the line LSTMVis reads as the space.
 */
export function dictLine(token: string, id: number): string {
  if (token === ' ') return ` ${id}`;
  const escaped = token.replace(DICT_WHITESPACE, (ch) => {
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    return `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
  });
  return `${escaped} ${id}`;
}

/** The whole train.dict: one dictLine per token, in id order. */
export function dictText(tokens: readonly string[]): string {
  return tokens.map((t, id) => dictLine(t, id)).join('\n') + '\n';
}

type H5Module = typeof import('h5wasm').default;

/**
 * The files LSTMVis (Strobelt et al.) reads, written with h5wasm (the HDF5 C library compiled to
 * WebAssembly): states.hdf5 with one float32 dataset [T, H] per layer and quantity, train.hdf5
 * with the int32 token ids [T] at `word_ids`, train.dict (`token id` per line) and lstm.yml.
 * Datasets are chunked and grow a window at a time, so nothing is held in memory.
 */
export class LstmVisWriter implements DumpWriter {
  private readonly datasets: Dataset[];
  private readonly words: Dataset;
  private rows = 0;

  private constructor(
    private readonly ctx: DumpContext,
    private readonly dir: string,
    private readonly states: H5File,
    private readonly wordFile: H5File,
  ) {
    const H = ctx.model.config.hidden;
    const chunkRows = Math.max(1, Math.min(1024, Math.floor((256 * 1024) / (4 * H))));
    this.datasets = ctx.quantities.map((q) =>
      states.create_dataset({
        name: lstmVisPath(ctx.model.config.cell, q.layer, q.name).path,
        data: new Float32Array(0),
        shape: [0, H],
        maxshape: [null, H],
        chunks: [chunkRows, H],
        dtype: '<f',
      }),
    );
    this.words = wordFile.create_dataset({
      name: LSTMVIS_WORD_PATH,
      data: new Int32Array(0),
      shape: [0],
      maxshape: [null],
      chunks: [4096],
      dtype: '<i',
    });
  }

  static async open(ctx: DumpContext, dir: string): Promise<LstmVisWriter> {
    for (const q of ctx.quantities) {
      if (q.name !== 'h' && q.name !== 'c') throw new CharnnError(`LSTMVis shows hidden and cell states only, not ${q.name}`, 'ask for --what h,c with --format lstmvis');
    }
    const h5 = await loadH5wasm();
    const open = (name: string) => {
      try {
        return new h5.File(resolve(dir, name), 'w');
      } catch (err) {
        throw new CharnnError(`cannot create ${join(dir, name)}: ${(err as Error).message}`);
      }
    };
    return new LstmVisWriter(ctx, dir, open(LSTMVIS_FILES.states), open(LSTMVIS_FILES.words));
  }

  async block(b: StateBlock): Promise<void> {
    const n = b.ids.length;
    const H = this.ctx.model.config.hidden;
    const from = this.rows;
    const to = from + n;
    this.datasets.forEach((ds, i) => {
      ds.resize([to, H]);
      ds.write_slice([[from, to], [0, H]], b.values[i]);
    });
    this.words.resize([to]);
    this.words.write_slice([[from, to]], b.ids);
    this.rows = to;
  }

  async finish(): Promise<string[]> {
    this.states.close();
    this.wordFile.close();
    const dictPath = join(this.dir, LSTMVIS_FILES.dict);
    const dict = openDataOut(dictPath);
    await dict.write(dictText(this.ctx.vocab.tokens));
    await dict.close();
    const configPath = join(this.dir, LSTMVIS_FILES.config);
    const config = openDataOut(configPath);
    await config.write(this.config());
    await config.close();
    return [join(this.dir, LSTMVIS_FILES.states), join(this.dir, LSTMVIS_FILES.words), dictPath, configPath];
  }

  private config(): string {
    const c = this.ctx.model.config;
    const q = (s: string) => JSON.stringify(s);
    const types = this.ctx.quantities.map((quantity) => {
      const { path, type } = lstmVisPath(c.cell, quantity.layer, quantity.name);
      // h is already in [-1, 1]; LSTMVis's default tanh is meant for unbounded cell states.
      const transform = quantityBounded(c.cell, quantity.name) ? ', transform: none' : '';
      return `    - {type: ${type}, layer: ${quantity.layer + 1}, path: ${path}${transform}}`;
    });
    return [
      `# LSTMVis project written by charnn dump --format lstmvis`,
      `name: ${q(basename(this.ctx.modelPath))}`,
      `description: ${q(`${c.layers}-layer ${cellTitle(c.cell)}, ${c.hidden} cells per layer, ${this.ctx.vocab.level} level, states over ${this.ctx.sourceName}`)}`,
      ``,
      `files:`,
      `  states: ${LSTMVIS_FILES.states}`,
      `  train: ${LSTMVIS_FILES.words}`,
      `  words: ${LSTMVIS_FILES.dict}`,
      ``,
      `word_sequence:`,
      `  file: train`,
      `  path: ${LSTMVIS_WORD_PATH}`,
      `  dict_file: words`,
      ``,
      `states:`,
      `  file: states`,
      `  types:`,
      ...types,
      ``,
    ].join('\n');
  }
}

let h5Module: Promise<H5Module> | null = null;

/** h5wasm's Node build (it reads and writes host files directly), loaded once on first use. */
export function loadH5wasm(): Promise<H5Module> {
  h5Module ??= (async () => {
    const h5 = (await import('h5wasm/node')).default;
    await h5.ready;
    return h5;
  })();
  return h5Module;
}

import { endianness } from 'node:os';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelFileMeta } from '../checkpoint/contents.js';
import type { InvalidUtf8Mode } from '../data/config.js';
import { VocabularyEncoder, type UnknownTally } from '../data/encoder.js';
import type { UnknownTokenPolicy, Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import type { Model } from '../model/model.js';
import { HtmlWriter } from './html.js';
import { type DataOut, ensureDirectory, f32ArrayJSON, fileError, openDataOut } from './output.js';
import { type Quantity, type StateBlock, StateStreamer } from './states.js';
import { LSTMVIS_FILES } from './lstmvis.js';
import type { GuardedOutput } from '../util/output-guard.js';

export type DumpFormat = 'jsonl' | 'npy' | 'html' | 'lstmvis';
export const DUMP_FORMATS: readonly DumpFormat[] = ['jsonl', 'npy', 'html', 'lstmvis'];

/** What every dump writer knows about the run. */
export interface DumpContext {
  model: Model;
  vocab: Vocabulary;
  meta: ModelFileMeta;
  /** The recorded quantities, in the order of StateBlock.values. */
  quantities: readonly Quantity[];
  /** The layers recorded (0-based). */
  layers: readonly number[];
  modelPath: string;
  /** The text's name: its path, or `stdin`. */
  sourceName: string;
}

/** Receives the states a window at a time; `finish` completes the files and names them. */
export interface DumpWriter {
  block(b: StateBlock): Promise<void>;
  finish(tokens: number): Promise<string[]>;
}

/** The longest forward window dump runs (tokens); a larger --seq runs windows of this length. */
export const MAX_DUMP_WINDOW = 4096;

export interface DumpOptions {
  format: DumpFormat;
  /** jsonl, html: a file or stdout (undefined / '-'); npy, lstmvis: a directory (required). */
  out: string | undefined;
  /** Tokens per forward window (B = 1; the results do not depend on it). */
  seq: number;
  /** Stop after this many tokens (0 = the whole text). */
  maxTokens: number;
  unknown: UnknownTokenPolicy;
  invalidUtf8: InvalidUtf8Mode;
  /** html: the regex (or @column) whose correlation ranks the cells when the page opens. */
  pattern?: string;
}

export interface DumpResult {
  tokens: number;
  tokensRead: number;
  tally: UnknownTally;
  files: string[];
  /** True when --max-tokens cut the text short. */
  truncated: boolean;
}

/** File names of the npy format, inside the --out directory. */
const NPY_TOKENS = 'tokens.npy';
const NPY_MANIFEST = 'manifest.json';
function npyFileName(q: Quantity): string {
  return `layer${q.layer}.${q.name}.npy`;
}

/**
 * Every file a dump in `format` to `out` writes, with its kind, for guardOutputs: one file (or
 * stdout) for jsonl and html; for npy and lstmvis, the directory and its files by name.
 */
export function dumpOutputs(format: DumpFormat, out: string | undefined, quantities: readonly Quantity[]): GuardedOutput[] {
  switch (format) {
    case 'jsonl':
    case 'html':
      return [{ path: out, kind: format }];
    case 'npy':
      if (out === undefined) return [];
      return [
        { path: out, kind: 'directory' },
        { path: join(out, NPY_TOKENS), kind: 'npy' },
        ...quantities.map((q) => ({ path: join(out, npyFileName(q)), kind: 'npy' as const })),
        { path: join(out, NPY_MANIFEST), kind: 'npy-manifest' },
      ];
    case 'lstmvis':
      if (out === undefined) return [];
      return [
        { path: out, kind: 'directory' },
        { path: join(out, LSTMVIS_FILES.states), kind: 'hdf5' },
        { path: join(out, LSTMVIS_FILES.words), kind: 'hdf5' },
        { path: join(out, LSTMVIS_FILES.dict), kind: 'lstmvis-dict' },
        { path: join(out, LSTMVIS_FILES.config), kind: 'lstmvis-config' },
      ];
  }
}

/**
 * Reads a text, runs the model over it with state carried throughout, and writes every token's
 * states in the chosen format, a window at a time (memory does not grow with the text, except
 * for an HTML page's own size, which a browser must hold anyway).
 */
export async function runDump(ctx: DumpContext, source: AsyncIterable<Uint8Array> & { description?: string }, o: DumpOptions): Promise<DumpResult> {
  const writer = await createWriter(ctx, o);
  // The values do not depend on the window, only memory does: a window longer than the tokens
  // wanted, or than MAX_DUMP_WINDOW, would only allocate more (--seq 1e9 asked for 68 GB).
  const window = Math.min(o.seq, o.maxTokens > 0 ? o.maxTokens : Infinity, MAX_DUMP_WINDOW);
  const streamer = new StateStreamer(ctx.model, window, ctx.quantities, (b) => writer.block(b));
  let ids: number[] = [];
  let tokens: string[] = [];
  const encoder = new VocabularyEncoder(ctx.vocab, { unknown: o.unknown, invalidUtf8: o.invalidUtf8, sourceName: ctx.sourceName }, (id, token) => {
    ids.push(id);
    tokens.push(token);
  });
  const limit = o.maxTokens > 0 ? o.maxTokens : Infinity;
  let taken = 0;
  let truncated = false;
  const drain = async () => {
    for (let i = 0; i < ids.length; i++) {
      if (taken >= limit) {
        truncated = true;
        break;
      }
      await streamer.push(ids[i], tokens[i]);
      taken++;
    }
    ids = [];
    tokens = [];
  };
  for await (const chunk of source) {
    encoder.push(chunk);
    await drain();
    if (truncated || taken >= limit) break;
  }
  if (!truncated && taken < limit) {
    encoder.end();
    await drain();
  }
  await streamer.end();
  truncated ||= taken >= limit;
  if (streamer.tokensDone === 0) {
    throw new CharnnError(`${ctx.sourceName} has no tokens the model knows`, 'dump some text the model was trained on');
  }
  const files = await writer.finish(streamer.tokensDone);
  return { tokens: streamer.tokensDone, tokensRead: encoder.tokensRead, tally: encoder.tally, files, truncated };
}

async function createWriter(ctx: DumpContext, o: DumpOptions): Promise<DumpWriter> {
  switch (o.format) {
    case 'jsonl':
      return new JsonlWriter(ctx, openDataOut(o.out));
    case 'html':
      return HtmlWriter.open(ctx, openDataOut(o.out), o.pattern);
    case 'npy':
      ensureDirectory(requireDir(o));
      return new NpyWriter(ctx, o.out!);
    case 'lstmvis': {
      ensureDirectory(requireDir(o));
      const { LstmVisWriter } = await import('./lstmvis.js');
      return LstmVisWriter.open(ctx, o.out!);
    }
  }
}

function requireDir(o: DumpOptions): string {
  if (!o.out || o.out === '-') {
    throw new CharnnError(`--format ${o.format} writes several files`, 'name a directory with --out DIR');
  }
  return o.out;
}

/** The quantities grouped by layer, with each one's index in StateBlock.values. */
function byLayer(ctx: DumpContext): Array<{ layer: number; entries: Array<{ name: string; index: number }> }> {
  return ctx.layers.map((layer) => ({
    layer,
    entries: ctx.quantities.flatMap((q, index) => (q.layer === layer ? [{ name: q.name, index }] : [])),
  }));
}

/**
 * One JSON object per line and token:
 * {"t":0,"id":3,"token":"a","layers":[{"layer":0,"h":[...],"c":[...],"i":[...],...}]}
 * Numbers are the float32 values, written in the fewest digits that read back exactly.
 */
class JsonlWriter implements DumpWriter {
  private readonly groups;
  private readonly H: number;

  constructor(
    ctx: DumpContext,
    private readonly out: DataOut,
  ) {
    this.groups = byLayer(ctx);
    this.H = ctx.model.config.hidden;
  }

  async block(b: StateBlock): Promise<void> {
    const H = this.H;
    let text = '';
    for (let t = 0; t < b.ids.length; t++) {
      const layers = this.groups.map(({ layer, entries }) => {
        let s = `{"layer":${layer}`;
        for (const { name, index } of entries) s += `,"${name}":${f32ArrayJSON(b.values[index], t * H, (t + 1) * H)}`;
        return s + '}';
      });
      text += `{"t":${b.start + t},"id":${b.ids[t]},"token":${JSON.stringify(b.tokens[t])},"layers":[${layers.join(',')}]}\n`;
    }
    await this.out.write(text);
  }

  async finish(): Promise<string[]> {
    await this.out.close();
    return [this.out.name];
  }
}

/** Bytes reserved for a .npy header, so the final shape can be written in place at the end. */
const NPY_HEADER_BYTES = 128;
const LITTLE_ENDIAN = endianness() === 'LE';

/** A .npy header (format 1.0) of exactly NPY_HEADER_BYTES bytes. */
export function npyHeader(descr: '<f4' | '<i4', shape: readonly number[]): Buffer {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${dims}, }`;
  const room = NPY_HEADER_BYTES - 10 - 1;
  if (dict.length > room) throw new Error('npy header too long');
  dict = dict.padEnd(room, ' ') + '\n';
  const header = Buffer.alloc(NPY_HEADER_BYTES);
  header.write('\x93NUMPY', 0, 'latin1');
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(NPY_HEADER_BYTES - 10, 8);
  header.write(dict, 10, 'latin1');
  return header;
}

/** Little-endian bytes of a float32 or int32 array. */
function littleEndianBytes(a: Float32Array | Int32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const out = Buffer.alloc(a.byteLength);
  for (let i = 0; i < a.length; i++) {
    if (a instanceof Float32Array) out.writeFloatLE(a[i], i * 4);
    else out.writeInt32LE(a[i], i * 4);
  }
  return out;
}

/** A .npy file written row block by row block; the header's row count is filled in at the end. */
class NpyFile {
  private readonly fd: number;
  rows = 0;

  constructor(
    readonly path: string,
    private readonly descr: '<f4' | '<i4',
    private readonly rowShape: readonly number[],
  ) {
    try {
      this.fd = openSync(path, 'w');
      writeSync(this.fd, npyHeader(descr, [0, ...rowShape]));
    } catch (err) {
      throw fileError(path, err);
    }
  }

  append(data: Float32Array | Int32Array, rows: number): void {
    try {
      writeSync(this.fd, littleEndianBytes(data));
    } catch (err) {
      throw fileError(this.path, err);
    }
    this.rows += rows;
  }

  close(): void {
    writeSync(this.fd, npyHeader(this.descr, [this.rows, ...this.rowShape]), 0, NPY_HEADER_BYTES, 0);
    closeSync(this.fd);
  }
}

/**
 * A directory of NumPy files: `tokens.npy` (int32 ids, [T]), `layer<l>.<q>.npy` (float32
 * [T, H]) for each layer l and quantity q (h, c, i, f, g, o / r, z, n), and `manifest.json`
 * (model, vocabulary in id order, and the list of files with their shapes).
 */
class NpyWriter implements DumpWriter {
  private readonly tokens: NpyFile;
  private readonly files: NpyFile[];

  constructor(
    private readonly ctx: DumpContext,
    private readonly dir: string,
  ) {
    const H = ctx.model.config.hidden;
    this.tokens = new NpyFile(join(dir, NPY_TOKENS), '<i4', []);
    this.files = ctx.quantities.map((q) => new NpyFile(join(dir, npyFileName(q)), '<f4', [H]));
  }

  async block(b: StateBlock): Promise<void> {
    this.tokens.append(b.ids, b.ids.length);
    this.files.forEach((f, i) => f.append(b.values[i], b.ids.length));
  }

  async finish(tokens: number): Promise<string[]> {
    this.tokens.close();
    for (const f of this.files) f.close();
    const H = this.ctx.model.config.hidden;
    const manifest = {
      kind: 'charnn-dump',
      model: resolve(this.ctx.modelPath),
      source: this.ctx.sourceName,
      config: this.ctx.meta.model,
      level: this.ctx.vocab.level,
      tokens,
      files: [
        { file: NPY_TOKENS, quantity: 'ids', dtype: 'int32', shape: [tokens] },
        ...this.ctx.quantities.map((q) => ({ file: npyFileName(q), layer: q.layer, quantity: q.name, dtype: 'float32', shape: [tokens, H] })),
      ],
      vocabulary: this.ctx.vocab.tokens,
    };
    const path = join(this.dir, NPY_MANIFEST);
    const out = openDataOut(path);
    await out.write(JSON.stringify(manifest, null, 1) + '\n');
    await out.close();
    return [this.tokens.path, ...this.files.map((f) => f.path), path];
  }
}

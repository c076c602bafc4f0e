import { closeSync, openSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join, resolve } from 'node:path';
import type { DumpContext, DumpWriter } from './dump-writer.js';
import { fileError, openDataOut } from './output.js';
import type { Quantity, StateBlock } from './states.js';

/** File names of the npy format, inside the --out directory. */
export const NPY_TOKENS = 'tokens.npy';
export const NPY_MANIFEST = 'manifest.json';
export function npyFileName(q: Quantity): string {
  return `layer${q.layer}.${q.name}.npy`;
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
export class NpyWriter implements DumpWriter {
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

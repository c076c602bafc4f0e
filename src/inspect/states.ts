import type { HostArray } from '../backend/backend.js';
import type { CellSpec } from '../model/cells/cell.js';
import { QUANTITY_GROUPS, cellSpec } from '../model/cells/index.js';
import type { Model, WindowRunner } from '../model/model.js';
import { copyState } from '../train/evaluate.js';

/**
 * Which quantities a dump records, by group: hidden state h, cell state c, gate activations,
 * and whatever else a cell offers (the mLSTM's m); each cell's spec lists its own.
 */
export type StateGroup = string;
export const STATE_GROUPS: readonly StateGroup[] = QUANTITY_GROUPS;

/** One recorded quantity of one layer: `h`, `c`, or a gate name (`i`, `f`, ... / `r`, `z`, `n`). */
export interface Quantity {
  layer: number;
  name: string;
}

/**
 * The quantities a dump of a `cell` model records for the requested groups and layers, layer
 * by layer in the order of the cell's `quantities` (h, c, gates, ...). A group the cell lacks
 * adds nothing (a vanilla RNN's only activation is h).
 */
export function quantitiesFor(cell: CellSpec | string, layers: readonly number[], groups: readonly StateGroup[]): Quantity[] {
  const spec = typeof cell === 'string' ? cellSpec(cell) : cell;
  const out: Quantity[] = [];
  for (const layer of layers) {
    for (const q of spec.quantities) if (groups.includes(q.group)) out.push({ layer, name: q.name });
  }
  return out;
}

/** A run of consecutive tokens and, for each quantity, its values: [n, H] row-major, row = token. */
export interface StateBlock {
  /** Position of the first token in the whole text. */
  start: number;
  ids: Int32Array;
  /** The text of each token (for unknown tokens read as <unk>: the original text). */
  tokens: string[];
  /** Parallel to the streamer's `quantities`. */
  values: Float32Array[];
}

/**
 * Runs a model over a token stream, one stream (B = 1) in windows of T tokens, carrying state
 * from window to window, and hands the states after every token to `sink` a window at a time.
 * The values for token t are those after the model has read token t (h_t, c_t, and the gates
 * that produced them). Memory is constant: one window's values at a time.
 */
export class StateStreamer {
  readonly H: number;
  private readonly runner: WindowRunner;
  private readonly ids: Int32Array;
  private readonly tokens: string[] = [];
  private filled = 0;
  private position = 0;

  constructor(
    readonly model: Model,
    readonly T: number,
    readonly quantities: readonly Quantity[],
    private readonly sink: (block: StateBlock) => void | Promise<void>,
  ) {
    this.H = model.config.hidden;
    this.runner = model.runner(T, 1, { training: false });
    this.runner.resetState();
    this.ids = new Int32Array(T);
  }

  /** Tokens handed to the sink so far. */
  get tokensDone(): number {
    return this.position;
  }

  async push(id: number, token: string): Promise<void> {
    this.ids[this.filled++] = id;
    this.tokens.push(token);
    if (this.filled === this.T) await this.run(this.runner, this.T);
  }

  /** Runs the last, shorter window (if any tokens are waiting). */
  async end(): Promise<void> {
    if (this.filled === 0) return;
    const n = this.filled;
    const tail = this.model.runner(n, 1, { training: false });
    copyState(this.runner, tail);
    await this.run(tail, n);
  }

  private async run(runner: WindowRunner, n: number): Promise<void> {
    runner.setWindow(this.ids.subarray(0, n));
    runner.forward(false);
    const be = this.model.backend;
    const H = this.H;
    const values: Float32Array[] = [];
    // Read each needed tensor once; a quantity that is a block of columns ([n, W], a gate of
    // [i|f|g|o]) is cut out host-side into an [n, H] array.
    const cache = new Map<unknown, HostArray>();
    for (const q of this.quantities) {
      const { tensor, offset } = runner.layerRecorded(q.layer, q.name);
      let all = cache.get(tensor);
      if (!all) cache.set(tensor, (all = await be.read(tensor)));
      const W = all.length / n;
      if (W === H) {
        values.push(f32(all));
        continue;
      }
      const out = new Float32Array(n * H);
      for (let t = 0; t < n; t++) out.set(all.subarray(t * W + offset, t * W + offset + H), t * H);
      values.push(out);
    }
    const block: StateBlock = {
      start: this.position,
      ids: this.ids.slice(0, n),
      tokens: this.tokens.splice(0, n),
      values,
    };
    this.position += n;
    this.filled = 0;
    await this.sink(block);
  }
}

function f32(a: HostArray): Float32Array {
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

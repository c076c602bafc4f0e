import type { HostArray } from '../backend/backend.js';
import type { CellType } from '../model/config.js';
import type { Model, WindowRunner } from '../model/model.js';
import { copyState } from '../train/evaluate.js';

/** Which quantities a dump records: hidden state h, LSTM cell state c, gate activations. */
export type StateGroup = 'h' | 'c' | 'gates';
export const STATE_GROUPS: readonly StateGroup[] = ['h', 'c', 'gates'];

/** The gate names of a cell, in the order the backend stores them (PyTorch's). */
export function gateNames(cell: CellType): string[] {
  if (cell === 'lstm') return ['i', 'f', 'g', 'o'];
  if (cell === 'gru') return ['r', 'z', 'n'];
  return [];
}

/** One recorded quantity of one layer: `h`, `c`, or a gate name (`i`, `f`, ... / `r`, `z`, `n`). */
export interface Quantity {
  layer: number;
  name: string;
}

/**
 * The quantities a dump of `model` records for the requested groups and layers, layer by layer
 * in the order h, c, gates. c exists only for LSTM and gates only for LSTM and GRU (a vanilla
 * RNN's only activation is h).
 */
export function quantitiesFor(cell: CellType, layers: readonly number[], groups: readonly StateGroup[]): Quantity[] {
  const out: Quantity[] = [];
  for (const layer of layers) {
    if (groups.includes('h')) out.push({ layer, name: 'h' });
    if (groups.includes('c') && cell === 'lstm') out.push({ layer, name: 'c' });
    if (groups.includes('gates')) for (const g of gateNames(cell)) out.push({ layer, name: g });
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
    const cell = this.model.config.cell;
    const values: Float32Array[] = [];
    // Read each needed tensor once; gates are split host-side into one [n, H] array per gate.
    const cache = new Map<string, HostArray>();
    const get = async (key: string, read: () => Promise<HostArray>) => {
      let v = cache.get(key);
      if (!v) cache.set(key, (v = await read()));
      return v;
    };
    for (const q of this.quantities) {
      if (q.name === 'h') {
        values.push(f32(await get(`h${q.layer}`, () => be.read(runner.layerOutputs(q.layer)))));
      } else if (q.name === 'c') {
        const t = runner.layerCells(q.layer);
        if (!t) throw new Error(`layer ${q.layer} has no cell state`);
        values.push(f32(await get(`c${q.layer}`, () => be.read(t))));
      } else {
        const gates = await get(`g${q.layer}`, () => be.read(runner.layerGates(q.layer)));
        const k = gateNames(cell).indexOf(q.name);
        const G = gates.length / n;
        const out = new Float32Array(n * H);
        for (let t = 0; t < n; t++) out.set(gates.subarray(t * G + k * H, t * G + (k + 1) * H), t * H);
        values.push(out);
      }
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

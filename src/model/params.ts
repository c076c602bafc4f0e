import type { Backend, Tensor } from '../backend/backend.js';
import { NumpyRandom } from '../util/numpy-random.js';
import { Random } from '../util/random.js';
import { type ModelConfig, gateWidth } from './config.js';

/** One named parameter: its shape and how it is initialised. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init:
    | { kind: 'uniform'; bound: number }
    | { kind: 'normal'; std: number }
    | { kind: 'constant'; value: number }
    | { kind: 'lstmBias'; hidden: number };
}

/**
 * The parameter list of a model, in a fixed order (checkpoints and optimizers rely on it).
 * Layouts are "input rows times output columns" so forward passes are x @ W:
 *   embed            [V, E]            (only with an embedding)
 *   layers.l.Wx      [D_l, G]          D_0 = E, or V for one-hot input; D_l = H above; G = gate width
 *   layers.l.Wh      [H, G]
 *   layers.l.b       [G]               input-side bias (PyTorch's bias_ih)
 *   layers.l.bh      [G]               GRU only: hidden-side bias (bias_hh), inside r * (h Wh + bh)
 *   out.W            [H, V]            (not with tied weights: the output layer is embed^T)
 *   out.b            [V]
 * Gated cells (LSTM, GRU) start as PyTorch's do (uniform in +-1/sqrt(H)); the LSTM forget-gate
 * bias starts at 1 so early gradients flow through the cell state. The vanilla RNN starts as
 * min-char-rnn's (normal, std 0.01): from PyTorch's larger init, a tanh RNN trained with a
 * never-reset carried state learns to lean on saturated units of that state and then predicts
 * badly from a fresh zero state (measured: validation 8.7 vs 2.2 nats/char on tinyshakespeare).
 */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const H = c.hidden;
  const G = gateWidth(c.cell, H);
  const weight: ParamSpec['init'] = c.cell === 'rnn' ? { kind: 'normal', std: 0.01 } : { kind: 'uniform', bound: 1 / Math.sqrt(H) };
  const specs: ParamSpec[] = [];
  if (c.embed > 0) specs.push({ name: 'embed', shape: [c.vocabSize, c.embed], init: { kind: 'uniform', bound: 0.1 } });
  for (let l = 0; l < c.layers; l++) {
    const D = l > 0 ? H : c.embed > 0 ? c.embed : c.vocabSize;
    specs.push({ name: `layers.${l}.Wx`, shape: [D, G], init: weight });
    specs.push({ name: `layers.${l}.Wh`, shape: [H, G], init: weight });
    specs.push({
      name: `layers.${l}.b`,
      shape: [G],
      init: c.cell === 'lstm' ? { kind: 'lstmBias', hidden: H } : { kind: 'constant', value: 0 },
    });
    if (c.cell === 'gru') specs.push({ name: `layers.${l}.bh`, shape: [G], init: { kind: 'constant', value: 0 } });
  }
  if (!c.tie) specs.push({ name: 'out.W', shape: [H, c.vocabSize], init: weight });
  specs.push({ name: 'out.b', shape: [c.vocabSize], init: { kind: 'constant', value: 0 } });
  return specs;
}

/**
 * Draws the initial values of a model's parameters from a seed, in spec order. Uniform draws
 * come from charnn's own generator; normal draws from numpy's legacy one (NumpyRandom), each
 * matrix filled in min-char-rnn's [out, in] order (the transpose of charnn's [in, out]), so that
 * `--model rnn` seeded with s starts from exactly the weights min_char_rnn.py draws after
 * np.random.seed(s) (Wxh, Whh, Why, with the vocabulary sorted as its peer sorts it).
 */
export class ParamInitializer {
  private readonly uniforms: Random;
  private readonly normals: NumpyRandom;

  constructor(seed: number) {
    this.uniforms = new Random(seed);
    this.normals = new NumpyRandom(seed >>> 0);
  }

  /** Host values for a freshly initialised parameter (the next draws of this initializer). */
  values(spec: ParamSpec): Float32Array {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const init = spec.init;
    if (init.kind === 'uniform') for (let i = 0; i < n; i++) v[i] = this.uniforms.uniform(-init.bound, init.bound);
    else if (init.kind === 'normal') {
      const [rows, cols] = spec.shape.length === 2 ? spec.shape : [n, 1];
      for (let j = 0; j < cols; j++) for (let i = 0; i < rows; i++) v[i * cols + j] = this.normals.normal() * init.std;
    } else if (init.kind === 'constant') v.fill(init.value);
    else v.fill(1, init.hidden, 2 * init.hidden); // [i | f | g | o]: the f block
    return v;
  }
}

/**
 * Named tensors in spec order: the model's parameters, or gradients / optimizer slots like them.
 * A gradient set may hold some entries row-sparse: `rowIds[i]` (i32 [U, 1], distinct) then lists
 * the rows of parameter i that `tensors[i]` ([U, ...]) holds, every other row's gradient being
 * zero. The embedding table's gradient is one: a window reads only a few of its V rows.
 */
export class ParamSet {
  constructor(
    readonly specs: readonly ParamSpec[],
    readonly tensors: readonly Tensor[],
    readonly rowIds: ReadonlyArray<Tensor | null> = specs.map(() => null),
  ) {}

  static zeros(backend: Backend, specs: readonly ParamSpec[]): ParamSet {
    return new ParamSet(specs, specs.map((s) => backend.zeros(s.shape)));
  }

  /** This set with entry `name` replaced by the rows `rowIds` of the parameter, held in `values`. */
  withSparseRows(name: string, values: Tensor, rowIds: Tensor): ParamSet {
    const i = this.indexOf(name);
    const tensors = [...this.tensors];
    const rows = [...this.rowIds];
    tensors[i] = values;
    rows[i] = rowIds;
    return new ParamSet(this.specs, tensors, rows);
  }

  get(name: string): Tensor {
    return this.tensors[this.indexOf(name)];
  }

  indexOf(name: string): number {
    const i = this.specs.findIndex((s) => s.name === name);
    if (i < 0) throw new Error(`no parameter named ${name}`);
    return i;
  }

  has(name: string): boolean {
    return this.specs.some((s) => s.name === name);
  }

  /** Total number of scalars. */
  count(): number {
    return this.tensors.reduce((a, t) => a + t.size, 0);
  }
}

import type { Backend, Tensor } from '../backend/backend.js';
import { NumpyRandom } from '../util/numpy-random.js';
import { Random } from '../util/random.js';
import type { ParamInit } from './cells/cell.js';
import { cellSpec } from './cells/index.js';
import type { ModelConfig } from './config.js';

/** One named parameter: its shape and how it is initialised. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
}

/**
 * The parameter list of a model, in a fixed order (checkpoints and optimizers rely on it).
 * Layouts are "input rows times output columns" so forward passes are x @ W:
 *   embed            [V, E]            (only with an embedding)
 *   layers.l.<name>  ...               the cell's layer parameters (model/cells/<cell>.ts), for
 *                                      input width D_0 = E, or V for one-hot input; D_l = H above
 *   out.W            [H, V]            (not with tied weights: the output layer is embed^T)
 *   out.b            [V]
 * The output weights start as the cell's weights do (its `weightInit`); the embedding uniform
 * in +-0.1.
 */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const cell = cellSpec(c.cell);
  const H = c.hidden;
  const specs: ParamSpec[] = [];
  if (c.embed > 0) specs.push({ name: 'embed', shape: [c.vocabSize, c.embed], init: { kind: 'uniform', bound: 0.1 } });
  for (let l = 0; l < c.layers; l++) {
    for (const p of cell.params(layerInputWidth(c, l), H)) specs.push({ ...p, name: `layers.${l}.${p.name}` });
  }
  if (!c.tie) specs.push({ name: 'out.W', shape: [H, c.vocabSize], init: cell.weightInit(H) });
  specs.push({ name: 'out.b', shape: [c.vocabSize], init: { kind: 'constant', value: 0 } });
  return specs;
}

/** The width of layer l's input: H above the first layer, else E, or V for one-hot input. */
export function layerInputWidth(c: ModelConfig, l: number): number {
  return l > 0 ? c.hidden : c.embed > 0 ? c.embed : c.vocabSize;
}

/**
 * How many parameters a model of this shape has (tied weights have no out.W), computed without
 * listing them: a forged or mistyped `--layers 1e9` must be refused, not looped over.
 */
export function parameterCount(c: ModelConfig): number {
  const cell = cellSpec(c.cell);
  const layer = (D: number) => cell.params(D, c.hidden).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
  const embed = c.embed > 0 ? c.vocabSize * c.embed : 0;
  const rest = c.layers > 1 ? (c.layers - 1) * layer(c.hidden) : 0;
  return embed + layer(layerInputWidth(c, 0)) + rest + (c.tie ? 0 : c.hidden * c.vocabSize) + c.vocabSize;
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
    else init.values.forEach((value, k) => v.fill(value, k * init.hidden, (k + 1) * init.hidden));
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

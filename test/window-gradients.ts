// Shared by the backend parity tests: one training step's gradients and losses on any backend.
import type { Backend } from '../src/backend/backend.js';
import type { ModelConfig } from '../src/model/config.js';
import { cellSpec } from '../src/model/cells/index.js';
import { Model } from '../src/model/model.js';
import { ParamSet } from '../src/model/params.js';
import { ReferenceBackend } from '../src/backend/reference.js';
import type { Random } from '../src/util/random.js';

export interface WindowCase {
  config: ModelConfig;
  /** Parameter values by name. */
  weights: Map<string, Float32Array>;
  /** The carried state to start from, layer by layer: h, then c for a cell with a memory cell; each [B, H]. */
  state: Float32Array[];
  /** Time-major ids, T * B each. */
  inputs: Int32Array;
  targets: Int32Array;
  T: number;
  B: number;
  /** Dropout seed. */
  seed: number;
}

/** One training step on `be` from the case's weights and state: every gradient, and the losses, in float64. */
export async function windowGradients(be: Backend, c: WindowCase) {
  const model = Model.fromValues(be, c.config, (name) => c.weights.get(name)!);
  const runner = model.runner(c.T, c.B, { training: true });
  let k = 0;
  for (const { h, c: cell } of runner.stateTensors()) {
    be.write(h, c.state[k++]);
    if (cell) be.write(cell, c.state[k++]);
  }
  runner.setWindow(c.inputs, c.targets);
  const grads = runner.trainStep(ParamSet.zeros(be, model.params.specs), 1 / c.B, c.seed);
  return {
    names: model.params.specs.map((s) => s.name),
    grads: await Promise.all(grads.tensors.map(async (t) => Float64Array.from(await be.read(t)))),
    losses: Float64Array.from(await be.read(runner.losses)),
  };
}

/**
 * A random window for `config`: weights large enough to drive every nonlinearity off its linear
 * part (all float32 values, so every backend starts from the same numbers), a non-zero carried
 * state and random ids.
 */
export function randomWindowCase(config: ModelConfig, rng: Random, T: number, B: number, seed: number): WindowCase {
  const shapes = Model.create(new ReferenceBackend('f32'), config, 1).params;
  const weights = new Map<string, Float32Array>();
  shapes.specs.forEach((spec, i) => {
    const scale = spec.name.endsWith('Wh') ? 0.3 : 0.5;
    weights.set(spec.name, Float32Array.from({ length: shapes.tensors[i].size }, () => rng.uniform(-scale, scale)));
  });
  const H = config.hidden;
  const state: Float32Array[] = [];
  for (let l = 0; l < config.layers; l++) {
    state.push(Float32Array.from({ length: B * H }, () => rng.uniform(-0.9, 0.9)));
    if (cellSpec(config.cell).hasCellState) state.push(Float32Array.from({ length: B * H }, () => rng.uniform(-1.5, 1.5)));
  }
  const ids = () => Int32Array.from({ length: T * B }, () => Math.floor(rng.next() * config.vocabSize));
  const inputs = ids();
  const targets = ids();
  return { config, weights, state, inputs, targets, T, B, seed };
}

import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../src/backend/reference.js';
import type { CellType, ModelConfig } from '../src/model/config.js';
import { Model } from '../src/model/model.js';
import { ParamSet } from '../src/model/params.js';
import { cpu } from '../src/backend/cpu-tensor.js';
import { Random } from '../src/util/random.js';

/**
 * Every parameter's analytic gradient against centered finite differences, in float64, through
 * a multi-step window that starts from a carried (non-zero) state. Relative error is
 * |a - n| / max(|a| + |n|, 1e-6); float64 with step 1e-5 gives ~1e-8, so 1e-5 is a tight bound
 * well under the 1e-3 the spec allows.
 */
const T = 4;
const B = 2;
const V = 5;

function windowLoss(runner: ReturnType<Model['runner']>, inputs: Int32Array, targets: Int32Array, state: Float64Array[], seed: number): number {
  setState(runner, state);
  runner.setWindow(inputs, targets);
  runner.forward(true, seed);
  const losses = cpu(runner.losses).data;
  let s = 0;
  for (let i = 0; i < losses.length; i++) s += losses[i];
  return s / (T * B);
}

function setState(runner: ReturnType<Model['runner']>, state: Float64Array[]): void {
  let k = 0;
  for (const { h, c } of runner.stateTensors()) {
    cpu(h).data.set(state[k++]);
    if (c) cpu(c).data.set(state[k++]);
  }
}

const HIDDEN = 4;
const cases: Array<{ cell: CellType; layers: number; embed: number; dropout: number; tie?: boolean }> = [];
for (const cell of ['rnn', 'lstm', 'gru', 'mlstm'] as CellType[]) {
  for (const layers of [1, 2]) {
    for (const embed of [0, 3]) cases.push({ cell, layers, embed, dropout: 0 });
  }
  cases.push({ cell, layers: 2, embed: 3, dropout: 0.3 });
  // Tied input/output weights: the table's gradient sums the output layer's and the input's.
  cases.push({ cell, layers: 2, embed: HIDDEN, dropout: 0.3, tie: true });
}

describe('gradient check (float64, finite differences)', () => {
  for (const cs of cases) {
    it(`${cs.cell} layers=${cs.layers} ${cs.embed ? `embed=${cs.embed}` : 'one-hot'} dropout=${cs.dropout}${cs.tie ? ' tied' : ''}`, () => {
      const be = new ReferenceBackend('f64');
      const config: ModelConfig = { cell: cs.cell, vocabSize: V, hidden: HIDDEN, layers: cs.layers, embed: cs.embed, dropout: cs.dropout, tie: cs.tie };
      const model = Model.create(be, config, 7);
      const rng = new Random(11);
      // Larger weights than the default init so every nonlinearity is exercised off its linear part.
      for (const t of model.params.tensors) {
        const d = cpu(t).data;
        for (let i = 0; i < d.length; i++) d[i] = rng.uniform(-0.8, 0.8);
      }
      const inputs = Int32Array.from({ length: T * B }, () => Math.floor(rng.next() * V));
      const targets = Int32Array.from({ length: T * B }, () => Math.floor(rng.next() * V));
      const runner = model.runner(T, B, { training: true });
      const state: Float64Array[] = [];
      for (const { c } of runner.stateTensors()) {
        state.push(Float64Array.from({ length: B * 4 }, () => rng.uniform(-0.9, 0.9)));
        if (c) state.push(Float64Array.from({ length: B * 4 }, () => rng.uniform(-1, 1)));
      }
      const seed = 12345;
      const grads = ParamSet.zeros(be, model.params.specs);
      setState(runner, state);
      runner.setWindow(inputs, targets);
      runner.trainStep(grads, 1 / (T * B), seed);

      // The mLSTM has gradients near 1e-8 (through products of three weight matrices), where
      // float64 rounding of the loss over a step of 1e-5 already errs by 3e-11; its losses are
      // smooth enough for a step of 1e-4 (measured: the same quotient at 1e-3 and 1e-4).
      const h = cs.cell === 'mlstm' ? 1e-4 : 1e-5;
      let worst = 0;
      model.params.specs.forEach((spec, pi) => {
        const p = cpu(model.params.tensors[pi]).data;
        const g = cpu(grads.tensors[pi]).data;
        for (let i = 0; i < p.length; i++) {
          const old = p[i];
          p[i] = old + h;
          const lp = windowLoss(runner, inputs, targets, state, seed);
          p[i] = old - h;
          const lm = windowLoss(runner, inputs, targets, state, seed);
          p[i] = old;
          const numeric = (lp - lm) / (2 * h);
          const rel = Math.abs(g[i] - numeric) / Math.max(Math.abs(g[i]) + Math.abs(numeric), 1e-6);
          if (rel > worst) worst = rel;
          expect(rel, `${spec.name}[${i}] analytic ${g[i]} numeric ${numeric}`).toBeLessThan(1e-5);
        }
      });
      expect(worst).toBeLessThan(1e-5);
    });
  }
});

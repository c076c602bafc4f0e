import { CharnnError } from '../errors.js';
import { type ModelConfig, gateWidth } from '../model/config.js';
import { paramSpecs } from '../model/params.js';

/**
 * The mapping between charnn's parameters and a PyTorch state_dict, for the model
 * python/charnn_torch.py builds: PyTorch's examples/word_language_model `RNNModel` layout,
 *
 *   encoder = nn.Embedding(V, E)                  (only with an embedding; one-hot input has none)
 *   rnn     = nn.RNN(tanh) | nn.LSTM | nn.GRU     input_size D = E, or V for one-hot; H units; L layers
 *   decoder = nn.Linear(H, V)                     (its weight is encoder.weight when tied)
 *
 *   charnn               PyTorch                    how
 *   embed      [V, E]    encoder.weight    [V, E]   as is
 *   layers.l.Wx [D, G]   rnn.weight_ih_l{l} [G, D]  transposed (charnn computes x @ Wx, PyTorch x @ W^T)
 *   layers.l.Wh [H, G]   rnn.weight_hh_l{l} [G, H]  transposed
 *   layers.l.b  [G]      rnn.bias_ih_l{l}   [G]     as is
 *   layers.l.bh [G]      rnn.bias_hh_l{l}   [G]     GRU only (it sits inside r * (h Wh + bh), so it
 *                                                   cannot be folded into b). LSTM and RNN have one
 *                                                   bias: exported as bias_ih with bias_hh = 0;
 *                                                   imported as bias_ih + bias_hh
 *   out.W      [H, V]    decoder.weight    [V, H]   transposed; with tied weights a copy of encoder.weight
 *   out.b      [V]       decoder.bias      [V]      as is
 *
 * G = H (RNN), 4H (LSTM) or 3H (GRU), and charnn's gate blocks are already in PyTorch's order
 * (LSTM i, f, g, o; GRU r, z, n), so the blocks need no reordering.
 */

/** A PyTorch tensor: name as in the state_dict, row-major float32. */
export interface TorchTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** The state_dict entries (names and shapes) a model's PyTorch twin has, in state_dict order. */
export function torchTensorSpecs(c: ModelConfig): Array<{ name: string; shape: number[] }> {
  const H = c.hidden;
  const V = c.vocabSize;
  const G = gateWidth(c.cell, H);
  const specs: Array<{ name: string; shape: number[] }> = [];
  if (c.embed > 0) specs.push({ name: 'encoder.weight', shape: [V, c.embed] });
  for (let l = 0; l < c.layers; l++) {
    const D = l > 0 ? H : c.embed > 0 ? c.embed : V;
    specs.push({ name: `rnn.weight_ih_l${l}`, shape: [G, D] });
    specs.push({ name: `rnn.weight_hh_l${l}`, shape: [G, H] });
    specs.push({ name: `rnn.bias_ih_l${l}`, shape: [G] });
    specs.push({ name: `rnn.bias_hh_l${l}`, shape: [G] });
  }
  specs.push({ name: 'decoder.weight', shape: [V, H] });
  specs.push({ name: 'decoder.bias', shape: [V] });
  return specs;
}

/** charnn parameter values (by ParamSpec name) as PyTorch tensors, in state_dict order. */
export function toTorchTensors(c: ModelConfig, values: (name: string) => Float32Array): TorchTensor[] {
  const H = c.hidden;
  const G = gateWidth(c.cell, H);
  const out: TorchTensor[] = [];
  const push = (name: string, shape: number[], data: Float32Array) => out.push({ name, shape, data });
  if (c.embed > 0) push('encoder.weight', [c.vocabSize, c.embed], values('embed'));
  for (let l = 0; l < c.layers; l++) {
    const D = l > 0 ? H : c.embed > 0 ? c.embed : c.vocabSize;
    push(`rnn.weight_ih_l${l}`, [G, D], transpose(values(`layers.${l}.Wx`), D, G));
    push(`rnn.weight_hh_l${l}`, [G, H], transpose(values(`layers.${l}.Wh`), H, G));
    push(`rnn.bias_ih_l${l}`, [G], values(`layers.${l}.b`));
    push(`rnn.bias_hh_l${l}`, [G], c.cell === 'gru' ? values(`layers.${l}.bh`) : new Float32Array(G));
  }
  // Tied: PyTorch's decoder.weight is the same Parameter as encoder.weight; the file holds a copy.
  push('decoder.weight', [c.vocabSize, H], c.tie ? values('embed').slice() : transpose(values('out.W'), H, c.vocabSize));
  push('decoder.bias', [c.vocabSize], values('out.b'));
  return out;
}

/**
 * charnn parameter values from PyTorch tensors, after checking that the tensors are exactly
 * the ones a model of config `c` has (names and shapes; nothing missing, nothing extra), so
 * `Model.fromValues(backend, c, name => values.get(name)!)` builds it. Problems are one-line
 * CharnnErrors naming the tensor; `source` names the file.
 */
export function fromTorchTensors(c: ModelConfig, tensors: readonly TorchTensor[], source: string): Map<string, Float32Array> {
  const what = describeConfig(c);
  const hint = 'the tensors do not match the model description the file carries (or --config gave)';
  // A forged description ("layers": 1e12) must not be looped over: every layer needs 4 tensors.
  if (c.layers > tensors.length) throw new CharnnError(`${source} holds ${tensors.length} tensors, too few for a ${what}`, hint);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const expected = torchTensorSpecs(c);
  // Tied weights: PyTorch's decoder.weight is encoder.weight. Writers that drop shared tensors
  // (safetensors' save_model) keep only one of the two; either is enough.
  if (c.tie) {
    const enc = byName.get('encoder.weight');
    const dec = byName.get('decoder.weight');
    if (enc && dec && enc.data.length === dec.data.length && !sameValues(enc.data, dec.data)) {
      throw new CharnnError(`${source}: decoder.weight differs from encoder.weight, but the description says the weights are tied`, hint);
    }
    if (!enc && dec) byName.set('encoder.weight', { ...dec, name: 'encoder.weight' });
    if (enc && !dec) byName.set('decoder.weight', { ...enc, name: 'decoder.weight' });
  }
  const known = new Set(expected.map((s) => s.name));
  const extra = tensors.map((t) => t.name).filter((n) => !known.has(n));
  if (extra.length > 0) {
    const shown = extra.slice(0, 5).map((n) => `"${n}"`).join(', ') + (extra.length > 5 ? `, ... (${extra.length} in all)` : '');
    throw new CharnnError(`${source} has tensors a ${what} does not: ${shown}`, hint);
  }
  const get = (name: string): Float32Array => {
    const spec = expected.find((s) => s.name === name)!;
    const t = byName.get(name);
    if (!t) throw new CharnnError(`${source} has no tensor "${name}", which a ${what} needs`, hint);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new CharnnError(`${source}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}] for a ${what}`, hint);
    }
    return t.data;
  };
  // Check every tensor before converting any, in state_dict order, so the first problem reported is the first in the file's model.
  for (const s of expected) get(s.name);

  const H = c.hidden;
  const G = gateWidth(c.cell, H);
  const values = new Map<string, Float32Array>();
  if (c.embed > 0) values.set('embed', get('encoder.weight'));
  for (let l = 0; l < c.layers; l++) {
    const D = l > 0 ? H : c.embed > 0 ? c.embed : c.vocabSize;
    values.set(`layers.${l}.Wx`, transpose(get(`rnn.weight_ih_l${l}`), G, D));
    values.set(`layers.${l}.Wh`, transpose(get(`rnn.weight_hh_l${l}`), G, H));
    const bIh = get(`rnn.bias_ih_l${l}`);
    const bHh = get(`rnn.bias_hh_l${l}`);
    if (c.cell === 'gru') {
      values.set(`layers.${l}.b`, bIh);
      values.set(`layers.${l}.bh`, bHh);
    } else {
      // Both biases are added to the same pre-activation: one sum is the same function.
      values.set(`layers.${l}.b`, bIh.map((v, i) => v + bHh[i]));
    }
  }
  if (!c.tie) values.set('out.W', transpose(get('decoder.weight'), c.vocabSize, H));
  values.set('out.b', get('decoder.bias'));
  // The charnn side of the table above must be exactly what the model expects.
  const names = paramSpecs(c).map((s) => s.name);
  if (names.length !== values.size || names.some((n) => !values.has(n))) throw new Error(`torch-layout: parameter names out of step with paramSpecs (${names.join(', ')})`);
  return values;
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  if (data.length !== rows * cols) throw new Error(`transpose: ${data.length} values are not [${rows}, ${cols}]`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) out[k * rows + r] = data[r * cols + k];
  return out;
}

/** "2-layer LSTM (hidden 128, embedding 64, 65 tokens, tied)": for error messages. */
export function describeConfig(c: ModelConfig): string {
  const input = c.embed > 0 ? `embedding ${c.embed}` : 'one-hot input';
  return `${c.layers}-layer ${c.cell.toUpperCase()} (hidden ${c.hidden}, ${input}, ${c.vocabSize} tokens${c.tie ? ', tied' : ''})`;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || v === b[i]);
}

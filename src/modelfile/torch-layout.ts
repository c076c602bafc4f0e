import { CharnnError } from '../errors.js';
import type { TorchTensor } from '../model/cells/cell.js';
import { cellSpec, cellTitle } from '../model/cells/index.js';
import type { ModelConfig } from '../model/config.js';
import { layerInputWidth, paramSpecs } from '../model/params.js';
import { transpose } from '../model/cells/torch-rnn-family.js';

export type { TorchTensor } from '../model/cells/cell.js';
export { transpose } from '../model/cells/torch-rnn-family.js';

/**
 * The mapping between charnn's parameters and a PyTorch state_dict, for the model
 * python/charnn_torch.py builds: PyTorch's examples/word_language_model `RNNModel` layout,
 *
 *   encoder = nn.Embedding(V, E)                  (only with an embedding; one-hot input has none)
 *   rnn     = the cell's module                   input_size D = E, or V for one-hot; H units; L layers
 *   decoder = nn.Linear(H, V)                     (its weight is encoder.weight when tied)
 *
 *   charnn               PyTorch                    how
 *   embed      [V, E]    encoder.weight    [V, E]   as is
 *   layers.l.* ...       rnn.*_l{l}                 the cell's `torch` mapping (model/cells/): for
 *                                                   rnn, lstm and gru PyTorch's own nn.RNN / nn.LSTM /
 *                                                   nn.GRU layout (torch-rnn-family.ts)
 *   out.W      [H, V]    decoder.weight    [V, H]   transposed; with tied weights a copy of encoder.weight
 *   out.b      [V]       decoder.bias      [V]      as is
 */

/** The state_dict entries (names and shapes) a model's PyTorch twin has, in state_dict order. */
export function torchTensorSpecs(c: ModelConfig): Array<{ name: string; shape: number[] }> {
  const H = c.hidden;
  const V = c.vocabSize;
  const cell = cellSpec(c.cell);
  const specs: Array<{ name: string; shape: number[] }> = [];
  if (c.embed > 0) specs.push({ name: 'encoder.weight', shape: [V, c.embed] });
  for (let l = 0; l < c.layers; l++) specs.push(...cell.torch.specs(l, layerInputWidth(c, l), H));
  specs.push({ name: 'decoder.weight', shape: [V, H] });
  specs.push({ name: 'decoder.bias', shape: [V] });
  return specs;
}

/** charnn parameter values (by ParamSpec name) as PyTorch tensors, in state_dict order. */
export function toTorchTensors(c: ModelConfig, values: (name: string) => Float32Array): TorchTensor[] {
  const H = c.hidden;
  const cell = cellSpec(c.cell);
  const out: TorchTensor[] = [];
  const push = (name: string, shape: number[], data: Float32Array) => out.push({ name, shape, data });
  if (c.embed > 0) push('encoder.weight', [c.vocabSize, c.embed], values('embed'));
  for (let l = 0; l < c.layers; l++) out.push(...cell.torch.toTorch(l, layerInputWidth(c, l), H, (name) => values(`layers.${l}.${name}`)));
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
  // A forged description ("layers": 1e12) must not be looped over: every layer needs at least 4 tensors.
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
  const cell = cellSpec(c.cell);
  const values = new Map<string, Float32Array>();
  if (c.embed > 0) values.set('embed', get('encoder.weight'));
  for (let l = 0; l < c.layers; l++) {
    for (const [name, v] of cell.torch.fromTorch(l, layerInputWidth(c, l), H, get)) values.set(`layers.${l}.${name}`, v);
  }
  if (!c.tie) values.set('out.W', transpose(get('decoder.weight'), c.vocabSize, H));
  values.set('out.b', get('decoder.bias'));
  // The charnn side of the table above must be exactly what the model expects.
  const names = paramSpecs(c).map((s) => s.name);
  if (names.length !== values.size || names.some((n) => !values.has(n))) throw new Error(`torch-layout: parameter names out of step with paramSpecs (${names.join(', ')})`);
  return values;
}

/** "2-layer LSTM (hidden 128, embedding 64, 65 tokens, tied)": for error messages. */
export function describeConfig(c: ModelConfig): string {
  const input = c.embed > 0 ? `embedding ${c.embed}` : 'one-hot input';
  return `${c.layers}-layer ${cellTitle(c.cell)} (hidden ${c.hidden}, ${input}, ${c.vocabSize} tokens${c.tie ? ', tied' : ''})`;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]) || v === b[i]);
}

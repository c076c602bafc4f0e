import type { TorchLayerMapping, TorchTensor } from './cell.js';

/**
 * The layer layout of PyTorch's own recurrent modules (`nn.RNN`, `nn.LSTM`, `nn.GRU`), which
 * charnn's gate blocks already follow (LSTM i, f, g, o; GRU r, z, n), so the blocks need no
 * reordering:
 *
 *   charnn               PyTorch                     how
 *   layers.l.Wx [D, G]   rnn.weight_ih_l{l} [G, D]   transposed (charnn computes x @ Wx, PyTorch x @ W^T)
 *   layers.l.Wh [H, G]   rnn.weight_hh_l{l} [G, H]   transposed
 *   layers.l.b  [G]      rnn.bias_ih_l{l}   [G]      as is
 *   layers.l.bh [G]      rnn.bias_hh_l{l}   [G]      `hiddenBias` cells only (the GRU's sits inside
 *                                                    r * (h Wh + bh), so it cannot be folded into b).
 *                                                    Otherwise the cell has one bias: exported as
 *                                                    bias_ih with bias_hh = 0, imported as their sum
 */
export function torchRnnFamily(module: string, gateCount: number, hiddenBias: boolean): TorchLayerMapping {
  return {
    module,
    specs(l, D, H) {
      const G = gateCount * H;
      return [
        { name: `rnn.weight_ih_l${l}`, shape: [G, D] },
        { name: `rnn.weight_hh_l${l}`, shape: [G, H] },
        { name: `rnn.bias_ih_l${l}`, shape: [G] },
        { name: `rnn.bias_hh_l${l}`, shape: [G] },
      ];
    },
    toTorch(l, D, H, values) {
      const G = gateCount * H;
      const out: TorchTensor[] = [
        { name: `rnn.weight_ih_l${l}`, shape: [G, D], data: transpose(values('Wx'), D, G) },
        { name: `rnn.weight_hh_l${l}`, shape: [G, H], data: transpose(values('Wh'), H, G) },
        { name: `rnn.bias_ih_l${l}`, shape: [G], data: values('b') },
      ];
      out.push({ name: `rnn.bias_hh_l${l}`, shape: [G], data: hiddenBias ? values('bh') : new Float32Array(G) });
      return out;
    },
    fromTorch(l, D, H, get) {
      const G = gateCount * H;
      const values = new Map<string, Float32Array>();
      values.set('Wx', transpose(get(`rnn.weight_ih_l${l}`), G, D));
      values.set('Wh', transpose(get(`rnn.weight_hh_l${l}`), G, H));
      const bIh = get(`rnn.bias_ih_l${l}`);
      const bHh = get(`rnn.bias_hh_l${l}`);
      if (hiddenBias) {
        values.set('b', bIh);
        values.set('bh', bHh);
      } else {
        // Both biases are added to the same pre-activation: one sum is the same function.
        values.set('b', bIh.map((v, i) => v + bHh[i]));
      }
      return values;
    },
  };
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  if (data.length !== rows * cols) throw new Error(`transpose: ${data.length} values are not [${rows}, ${cols}]`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) out[k * rows + r] = data[r * cols + k];
  return out;
}

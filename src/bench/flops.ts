import { cellSpec } from '../model/cells/index.js';
import type { ModelConfig } from '../model/config.js';

/**
 * Floating-point operations of one training step per token (forward + backward), counted as
 * 2 FLOPs per multiply-add of the matrix products the model needs. Per layer, the cell's own
 * count (its spec's `flopsPerToken`): each weight matrix is used in three products (forward,
 * its gradient, and the gradient of what it multiplied), so an LSTM with gate width G = 4H has
 *
 *   recurrent weights Wh [H, G]: forward h_{t-1} Wh, gradient dWh, and dh_{t-1} = dG Wh^T:
 *     3 products of 2*H*G                                                    = 6*H*G
 *   input weights Wx [D, G]: forward x Wx, gradient dWx, and dx = dG Wx^T:   = 6*D*G
 *     D = H above the first layer, D = E for a learned embedding, and D = 0 for one-hot input
 *     (x Wx is a row lookup and dWx a row scatter-add: no multiplications)
 * and the output layer W [H, V]: logits, dW and dh                           = 6*H*V
 *
 * Elementwise work (gate nonlinearities, softmax, dropout, biases, the optimizer) is not
 * counted: it is O(G + V) per token against O(H*G + H*V) for the products. The count is the
 * algorithm's, not any one implementation's: PyTorch multiplies the one-hot input as a dense
 * matrix (its torch_charlstm.py counts another 4*V*G for layer 1) and the recurrent gradient
 * of a window's last step is not needed, but the same count is applied to charnn and to its
 * peers, so GFLOP/s compare exactly as chars/s do.
 *
 * Examples (V = 65, tinyshakespeare): 2x128 LSTM 1,229,568 FLOPs per char; min-char-rnn
 * (1x100 RNN) 99,000.
 */
export function flopsPerToken(m: Pick<ModelConfig, 'cell' | 'hidden' | 'layers' | 'embed' | 'vocabSize'>): number {
  const H = m.hidden;
  const cell = cellSpec(m.cell);
  let flops = 0;
  for (let l = 0; l < m.layers; l++) flops += cell.flopsPerToken(l === 0 ? m.embed : H, H);
  return flops + 6 * H * m.vocabSize;
}

/** Achieved GFLOP/s at a rate of `tokensPerSecond`. */
export function gflops(tokensPerSecond: number, flopsPerTok: number): number {
  return (tokensPerSecond * flopsPerTok) / 1e9;
}

import type { Backend, Tensor } from '../../backend/backend.js';
import type { CellSpec, InputProjection, LayerParams, RecordedValue } from './cell.js';
import { lstm, lstmBias } from './lstm.js';
import { Recurrence } from './recurrence.js';
import { transpose } from './torch-rnn-family.js';

/**
 * The multiplicative LSTM (Krause, Lu, Murray & Renals 2016, "Multiplicative LSTM for sequence
 * modelling"; the cell of Radford et al.'s 2017 "sentiment neuron"): an input-dependent
 * recurrent transition. An intermediate state
 *     m_t = (x_t Wmx) * (h_{t-1} Wmh)                               (elementwise)
 * replaces h_{t-1} as the LSTM's recurrent input:
 *     [i | f | g | o] = x_t Wx + m_t Wh + b,  then as the LSTM (lstm.ts): c_t, h_t.
 * Parameters Wx [D, 4H], Wmx [D, H], Wmh [H, H], Wh [H, 4H], b [4H] (no bias on m, as in both
 * papers); state h and c. Init as charnn's LSTM (uniform +-1/sqrt(H), forget-gate bias 1).
 *
 * Buffers besides Recurrence's:
 *   xm  [T*B, H]   x @ Wmx for the whole window (the model's second input projection)
 *   hm  [T*B, H]   h_{t-1} @ Wmh
 *   m   [T*B, H]   xm * hm (kept: dWh needs it)
 *   dXm, dHm [T*B, H]  their gradients; dM [B, H] the gradient of one step's m
 */
class MlstmLayer extends Recurrence {
  readonly inputs: readonly InputProjection[];
  private readonly xm: Tensor;
  private readonly hm: Tensor;
  private readonly m: Tensor;
  private readonly dXm: Tensor;
  private readonly dHm: Tensor;
  private readonly dM: Tensor;

  constructor(be: Backend, H: number, T: number, B: number, withGradients: boolean) {
    super(be, H, 4 * H, T, B, withGradients, true, mlstm.gates);
    this.xm = this.buffer(H);
    this.hm = this.buffer(H);
    this.m = this.buffer(H);
    this.dXm = this.buffer(H, true);
    this.dHm = this.buffer(H, true);
    this.dM = be.zeros(withGradients ? [B, H] : [0, H]);
    this.inputs = [
      { weight: 'Wx', out: this.pre, dOut: this.dPre },
      { weight: 'Wmx', out: this.xm, dOut: this.dXm },
    ];
  }

  forward(p: LayerParams): void {
    const be = this.be;
    const cAll = this.cAll!;
    const Wmh = be.packMatrix(p.Wmh, false);
    const Wh = be.packMatrix(p.Wh, false);
    this.runForward(p.b, (t) => {
      const hm = this.step(this.hm, t);
      const m = this.step(this.m, t);
      const pre = this.step(this.pre, t);
      be.gemmPacked(false, 1, this.step(this.hAll, t), Wmh, 0, hm);
      be.mul(this.step(this.xm, t), hm, m);
      be.gemmPacked(false, 1, m, Wh, 1, pre);
      be.lstmForward(pre, this.step(cAll, t), this.step(cAll, t + 1), this.step(this.hAll, t + 1));
    });
  }

  backward(p: LayerParams, g: LayerParams, dH: Tensor): void {
    const be = this.be;
    const cAll = this.cAll!;
    const WmhT = be.packMatrix(p.Wmh, true);
    const WhT = be.packMatrix(p.Wh, true);
    this.runBackward(
      dH,
      // h_t reaches step t+1 through hm_{t+1} = h_t Wmh only.
      (t, dh) => be.gemmPacked(false, 1, this.step(this.dHm, t + 1), WmhT, 1, dh),
      (t, dh) => {
        const dPre = this.step(this.dPre, t);
        be.lstmBackward(this.step(this.pre, t), this.step(cAll, t), this.step(cAll, t + 1), dh, this.dc!, dPre);
        // dm: [B, H] = dPre @ Wh^T, then through the product into both factors.
        be.gemmPacked(false, 1, dPre, WhT, 0, this.dM);
        be.mulBackward(this.step(this.xm, t), this.step(this.hm, t), this.dM, this.step(this.dXm, t), this.step(this.dHm, t));
      },
    );
    // Over all steps at once: dWh: [H, 4H] = m^T @ dPre; dWmh: [H, H] = h_{t-1}^T @ dHm.
    be.gemm(true, false, 1, this.m, this.dPre, 0, g.Wh);
    be.gemm(true, false, 1, this.previous(), this.dHm, 0, g.Wmh);
    be.sumRows(this.dPre, g.b, false);
  }

  override recorded(name: string): RecordedValue {
    return name === 'm' ? { tensor: this.m, offset: 0 } : super.recorded(name);
  }
}

export const mlstm: CellSpec = {
  name: 'mlstm',
  title: 'mLSTM',
  summary: 'multiplicative LSTM (Krause et al. 2016)',
  // The LSTM's gates, state, initialisation and recorded quantities, and m.
  gates: lstm.gates,
  hasCellState: true,
  weightInit: lstm.weightInit,
  params(D, H) {
    const w = this.weightInit(H);
    return [
      { name: 'Wx', shape: [D, 4 * H], init: w },
      { name: 'Wmx', shape: [D, H], init: w },
      { name: 'Wmh', shape: [H, H], init: w },
      { name: 'Wh', shape: [H, 4 * H], init: w },
      lstmBias(H),
    ];
  },
  layer: (be, H, T, B, withGradients) => new MlstmLayer(be, H, T, B, withGradients),
  // Each weight matrix is used 3 times (forward, its gradient, the gradient of its input):
  // Wx and Wmx of the input (5H columns over D rows), Wmh and Wh of the state (5H over H).
  flopsPerToken: (D, H) => 6 * (D + H) * 5 * H,
  quantities: [...lstm.quantities, { name: 'm', group: 'm', bounded: false }],
  /**
   * python/charnn_torch.py's `MLSTM` module (PyTorch has none), one layer's tensors:
   *   rnn.weight_ih_l{l} [4H, D] = Wx^T    rnn.weight_mx_l{l} [H, D] = Wmx^T
   *   rnn.weight_mh_l{l} [H, H]  = Wmh^T   rnn.weight_hh_l{l} [4H, H] = Wh^T (it multiplies m)
   *   rnn.bias_l{l}      [4H]    = b
   */
  torch: {
    module: 'MLSTM (charnn_torch.py)',
    specs: (l, D, H) => [
      { name: `rnn.weight_ih_l${l}`, shape: [4 * H, D] },
      { name: `rnn.weight_mx_l${l}`, shape: [H, D] },
      { name: `rnn.weight_mh_l${l}`, shape: [H, H] },
      { name: `rnn.weight_hh_l${l}`, shape: [4 * H, H] },
      { name: `rnn.bias_l${l}`, shape: [4 * H] },
    ],
    toTorch: (l, D, H, values) => [
      { name: `rnn.weight_ih_l${l}`, shape: [4 * H, D], data: transpose(values('Wx'), D, 4 * H) },
      { name: `rnn.weight_mx_l${l}`, shape: [H, D], data: transpose(values('Wmx'), D, H) },
      { name: `rnn.weight_mh_l${l}`, shape: [H, H], data: transpose(values('Wmh'), H, H) },
      { name: `rnn.weight_hh_l${l}`, shape: [4 * H, H], data: transpose(values('Wh'), H, 4 * H) },
      { name: `rnn.bias_l${l}`, shape: [4 * H], data: values('b') },
    ],
    fromTorch: (l, D, H, get) =>
      new Map([
        ['Wx', transpose(get(`rnn.weight_ih_l${l}`), 4 * H, D)],
        ['Wmx', transpose(get(`rnn.weight_mx_l${l}`), H, D)],
        ['Wmh', transpose(get(`rnn.weight_mh_l${l}`), H, H)],
        ['Wh', transpose(get(`rnn.weight_hh_l${l}`), 4 * H, H)],
        ['b', get(`rnn.bias_l${l}`)],
      ]),
  },
};

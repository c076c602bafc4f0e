import type { Backend, Tensor } from '../../backend/backend.js';
import type { CellParam, CellSpec, InputProjection, LayerParams } from './cell.js';
import { Recurrence } from './recurrence.js';
import { torchRnnFamily } from './torch-rnn-family.js';

/**
 * The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), in
 * PyTorch's formulation: gates [i | f | g | o] = x_t Wx + h_{t-1} Wh + b; i, f, o = sigmoid,
 * g = tanh; c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t). Parameters Wx [D, 4H], Wh [H, 4H],
 * b [4H]; state h and c. Weights start uniform in +-1/sqrt(H) as PyTorch's; the forget-gate
 * bias starts at 1 so early gradients flow through the cell state.
 */
class LstmLayer extends Recurrence {
  readonly inputs: readonly InputProjection[];

  constructor(be: Backend, H: number, T: number, B: number, withGradients: boolean) {
    super(be, H, 4 * H, T, B, withGradients, true, lstm.gates);
    this.inputs = [{ weight: 'Wx', out: this.pre, dOut: this.dPre }];
  }

  forward(p: LayerParams): void {
    const cAll = this.cAll!;
    const Wh = this.be.packMatrix(p.Wh, false);
    this.runForward(p.b, (t) => {
      const pre = this.step(this.pre, t);
      this.be.gemmPacked(false, 1, this.step(this.hAll, t), Wh, 1, pre);
      this.be.lstmForward(pre, this.step(cAll, t), this.step(cAll, t + 1), this.step(this.hAll, t + 1));
    });
  }

  backward(p: LayerParams, g: LayerParams, dH: Tensor): void {
    const be = this.be;
    const cAll = this.cAll!;
    const WhT = be.packMatrix(p.Wh, true);
    this.runBackward(
      dH,
      (t, dh) => be.gemmPacked(false, 1, this.step(this.dPre, t + 1), WhT, 1, dh),
      (t, dh) => be.lstmBackward(this.step(this.pre, t), this.step(cAll, t), this.step(cAll, t + 1), dh, this.dc!, this.step(this.dPre, t)),
    );
    // dWh: [H, 4H] = h_{t-1}^T @ dPre over all steps at once.
    be.gemm(true, false, 1, this.previous(), this.dPre, 0, g.Wh);
    be.sumRows(this.dPre, g.b, false);
  }
}

/** The gate bias [i | f | g | o]: the forget gate's starts at 1. Shared with the mLSTM. */
export function lstmBias(H: number): CellParam {
  return { name: 'b', shape: [4 * H], init: { kind: 'gateConstants', hidden: H, values: [0, 1, 0, 0] } };
}

export const lstm: CellSpec = {
  name: 'lstm',
  title: 'LSTM',
  summary: 'long short-term memory',
  gates: ['i', 'f', 'g', 'o'],
  hasCellState: true,
  weightInit: (H) => ({ kind: 'uniform', bound: 1 / Math.sqrt(H) }),
  params(D, H) {
    const w = this.weightInit(H);
    return [{ name: 'Wx', shape: [D, 4 * H], init: w }, { name: 'Wh', shape: [H, 4 * H], init: w }, lstmBias(H)];
  },
  layer: (be, H, T, B, withGradients) => new LstmLayer(be, H, T, B, withGradients),
  flopsPerToken: (D, H) => 6 * H * 4 * H + 6 * D * 4 * H,
  quantities: [
    { name: 'h', group: 'h', bounded: true },
    { name: 'c', group: 'c', bounded: false },
    ...['i', 'f', 'g', 'o'].map((name) => ({ name, group: 'gates', bounded: true })),
  ],
  torch: torchRnnFamily('nn.LSTM', 4, false),
};

import type { Backend, Tensor } from '../../backend/backend.js';
import type { CellSpec, InputProjection, LayerParams } from './cell.js';
import { Recurrence } from './recurrence.js';
import { torchRnnFamily } from './torch-rnn-family.js';

/**
 * The vanilla (Elman) RNN: h_t = tanh(x_t Wx + h_{t-1} Wh + b). Parameters Wx [D, H],
 * Wh [H, H], b [H]; state h. It starts as min-char-rnn's (normal, std 0.01): from PyTorch's
 * larger init, a tanh RNN trained with a never-reset carried state learns to lean on saturated
 * units of that state and then predicts badly from a fresh zero state (measured: validation
 * 8.7 vs 2.2 nats/char on tinyshakespeare). It defaults to one layer, as min-char-rnn: stacked
 * tanh RNNs trained with Adagrad at lr 0.1 learn slowly and lean on saturated carried state
 * (measured on tinyshakespeare, 2 layers: smoothed loss 83.6 at 10k iterations against 55.7 for
 * one).
 */
class RnnLayer extends Recurrence {
  readonly inputs: readonly InputProjection[];

  constructor(be: Backend, H: number, T: number, B: number, withGradients: boolean) {
    super(be, H, H, T, B, withGradients, false, []);
    this.inputs = [{ weight: 'Wx', out: this.pre, dOut: this.dPre }];
  }

  forward(p: LayerParams): void {
    const Wh = this.be.packMatrix(p.Wh, false);
    this.runForward(p.b, (t) => {
      const pre = this.step(this.pre, t);
      this.be.gemmPacked(false, 1, this.step(this.hAll, t), Wh, 1, pre);
      this.be.rnnForward(pre, this.step(this.hAll, t + 1));
    });
  }

  backward(p: LayerParams, g: LayerParams, dH: Tensor): void {
    const be = this.be;
    const WhT = be.packMatrix(p.Wh, true);
    this.runBackward(
      dH,
      (t, dh) => be.gemmPacked(false, 1, this.step(this.dPre, t + 1), WhT, 1, dh),
      (t, dh) => be.rnnBackward(this.step(this.hAll, t + 1), dh, this.step(this.dPre, t)),
    );
    // dWh: [H, H] = h_{t-1}^T @ dPre over all steps at once.
    be.gemm(true, false, 1, this.previous(), this.dPre, 0, g.Wh);
    be.sumRows(this.dPre, g.b, false);
  }
}

export const rnn: CellSpec = {
  name: 'rnn',
  title: 'RNN',
  summary: 'vanilla tanh RNN (min-char-rnn)',
  gates: [],
  hasCellState: false,
  defaultLayers: 1,
  weightInit: () => ({ kind: 'normal', std: 0.01 }),
  params(D, H) {
    const w = this.weightInit(H);
    return [
      { name: 'Wx', shape: [D, H], init: w },
      { name: 'Wh', shape: [H, H], init: w },
      { name: 'b', shape: [H], init: { kind: 'constant', value: 0 } },
    ];
  },
  layer: (be, H, T, B, withGradients) => new RnnLayer(be, H, T, B, withGradients),
  // Wh: forward, dWh, dh (3 products of 2*H*H); Wx likewise with D.
  flopsPerToken: (D, H) => 6 * H * H + 6 * D * H,
  quantities: [{ name: 'h', group: 'h', bounded: true }],
  torch: torchRnnFamily('nn.RNN(nonlinearity="tanh")', 1, false),
};

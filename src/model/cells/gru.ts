import type { Backend, Tensor } from '../../backend/backend.js';
import type { CellSpec, InputProjection, LayerParams } from './cell.js';
import { Recurrence } from './recurrence.js';
import { torchRnnFamily } from './torch-rnn-family.js';

/**
 * The GRU (Cho et al. 2014), PyTorch's formulation: [r | z | n] from the input part
 * x_t Wx + b and the hidden part hg = h_{t-1} Wh + bh; r = sigmoid(xr + hr),
 * z = sigmoid(xz + hz), n = tanh(xn + r * hn), h_t = (1 - z) * n + z * h_{t-1}. Parameters
 * Wx [D, 3H], Wh [H, 3H], b [3H] and bh [3H] (bh sits inside r * (...), so it is a parameter of
 * its own); state h.
 *
 * Buffers besides Recurrence's:
 *   hg       [T*B, 3H]  h_{t-1} @ Wh + bh (kept: the n gate needs its hidden part)
 *   dHg      [T*B, 3H]  gradient of the hidden-side pre-activations
 *   dhDirect [B, H]     the z * dh path from h_t to h_{t-1}
 */
class GruLayer extends Recurrence {
  readonly inputs: readonly InputProjection[];
  private readonly hg: Tensor;
  private readonly dHg: Tensor;
  private readonly dhDirect: Tensor | null;

  constructor(be: Backend, H: number, T: number, B: number, withGradients: boolean) {
    super(be, H, 3 * H, T, B, withGradients, false, gru.gates);
    this.inputs = [{ weight: 'Wx', out: this.pre, dOut: this.dPre }];
    this.hg = this.buffer(3 * H);
    this.dHg = this.buffer(3 * H, true);
    this.dhDirect = withGradients ? be.zeros([B, H]) : null;
  }

  forward(p: LayerParams): void {
    const Wh = this.be.packMatrix(p.Wh, false);
    this.runForward(p.b, (t) => {
      const hPrev = this.step(this.hAll, t);
      const hg = this.step(this.hg, t);
      this.be.gemmPacked(false, 1, hPrev, Wh, 0, hg);
      this.be.addRowVector(hg, p.bh);
      this.be.gruForward(this.step(this.pre, t), hg, hPrev, this.step(this.hAll, t + 1));
    });
  }

  backward(p: LayerParams, g: LayerParams, dH: Tensor): void {
    const be = this.be;
    const WhT = be.packMatrix(p.Wh, true);
    this.runBackward(
      dH,
      (t, dh) => {
        be.gemmPacked(false, 1, this.step(this.dHg, t + 1), WhT, 1, dh);
        be.axpy(1, this.dhDirect!, dh);
      },
      (t, dh) =>
        be.gruBackward(this.step(this.pre, t), this.step(this.hg, t), this.step(this.hAll, t), dh, this.step(this.dPre, t), this.step(this.dHg, t), this.dhDirect!),
    );
    // dWh: [H, 3H] = h_{t-1}^T @ dHg over all steps at once.
    be.gemm(true, false, 1, this.previous(), this.dHg, 0, g.Wh);
    be.sumRows(this.dPre, g.b, false);
    be.sumRows(this.dHg, g.bh, false);
  }
}

export const gru: CellSpec = {
  name: 'gru',
  title: 'GRU',
  summary: 'gated recurrent unit',
  gates: ['r', 'z', 'n'],
  hasCellState: false,
  weightInit: (H) => ({ kind: 'uniform', bound: 1 / Math.sqrt(H) }),
  params(D, H) {
    const w = this.weightInit(H);
    return [
      { name: 'Wx', shape: [D, 3 * H], init: w },
      { name: 'Wh', shape: [H, 3 * H], init: w },
      { name: 'b', shape: [3 * H], init: { kind: 'constant', value: 0 } },
      { name: 'bh', shape: [3 * H], init: { kind: 'constant', value: 0 } },
    ];
  },
  layer: (be, H, T, B, withGradients) => new GruLayer(be, H, T, B, withGradients),
  flopsPerToken: (D, H) => 6 * H * 3 * H + 6 * D * 3 * H,
  quantities: [{ name: 'h', group: 'h', bounded: true }, ...['r', 'z', 'n'].map((name) => ({ name, group: 'gates', bounded: true }))],
  torch: torchRnnFamily('nn.GRU', 3, true),
};

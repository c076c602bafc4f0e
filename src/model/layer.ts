import type { Backend, Tensor } from '../backend/backend.js';
import { type CellType, gateWidth } from './config.js';

/** A layer's parameters and their gradients, as handles into the model's ParamSets. */
export interface LayerParams {
  Wx: Tensor; // [D, G]
  Wh: Tensor; // [H, G]
  b: Tensor; // [G]
  bh?: Tensor; // [G], GRU only
}

/**
 * One recurrent layer's working memory for windows of T steps over B streams, and its forward
 * and backward passes. The input projection of all T steps is one GEMM and so are the weight
 * gradients; only the recurrent product h_{t-1} @ Wh and the cell math run per step.
 *
 * Buffers (time-major, step t = rows t*B .. t*B+B-1):
 *   pre    [T*B, G]      x @ Wx + b, turned into gate activations in place by the cell
 *   hAll   [(T+1)*B, H]  block 0 = state carried in, block t+1 = h after step t
 *   cAll   [(T+1)*B, H]  LSTM cell state, same layout
 *   hg     [T*B, G]      GRU: h_{t-1} @ Wh + bh (kept: the n gate needs its hidden part)
 *   dPre   [T*B, G]      gradient of the pre-activations (input side)
 *   dHg    [T*B, G]      GRU: gradient of the hidden-side pre-activations
 *   dc     [B, H]        LSTM: gradient flowing back through the cell state
 *   dhDirect [B, H]      GRU: the z * dh path from h_t to h_{t-1}
 */
export class LayerWorkspace {
  readonly G: number;
  readonly pre: Tensor;
  readonly hAll: Tensor;
  readonly cAll: Tensor | null;
  readonly hg: Tensor | null;
  readonly dPre: Tensor;
  readonly dHg: Tensor | null;
  readonly dc: Tensor | null;
  readonly dhDirect: Tensor | null;
  /** Carried state between windows: h (and c) of every stream, [B, H]. */
  readonly h: Tensor;
  readonly c: Tensor | null;

  constructor(
    private readonly be: Backend,
    readonly cell: CellType,
    readonly H: number,
    readonly T: number,
    readonly B: number,
    withGradients: boolean,
  ) {
    this.G = gateWidth(cell, H);
    const TB = T * B;
    this.pre = be.zeros([TB, this.G]);
    this.hAll = be.zeros([(T + 1) * B, H]);
    this.cAll = cell === 'lstm' ? be.zeros([(T + 1) * B, H]) : null;
    this.hg = cell === 'gru' ? be.zeros([TB, this.G]) : null;
    this.dPre = withGradients ? be.zeros([TB, this.G]) : be.zeros([0, this.G]);
    this.dHg = cell === 'gru' && withGradients ? be.zeros([TB, this.G]) : null;
    this.dc = cell === 'lstm' && withGradients ? be.zeros([B, H]) : null;
    this.dhDirect = cell === 'gru' && withGradients ? be.zeros([B, H]) : null;
    this.h = be.zeros([B, H]);
    this.c = cell === 'lstm' ? be.zeros([B, H]) : null;
  }

  /** h of every step, [T*B, H]: the layer's output. */
  outputs(): Tensor {
    return this.be.rows(this.hAll, this.B, this.T * this.B);
  }

  /** h_{t-1} of every step, [T*B, H]: what Wh multiplied. */
  private previous(): Tensor {
    return this.be.rows(this.hAll, 0, this.T * this.B);
  }

  /** Step views of each buffer, made once: at batch 1 the per-step work is a few microseconds,
   * and allocating ~200 views per window showed as 15% of a min-char-rnn profile. */
  private readonly stepViews = new Map<Tensor, Tensor[]>();

  private step(t: Tensor, block: number): Tensor {
    let views = this.stepViews.get(t);
    if (!views) this.stepViews.set(t, (views = []));
    return (views[block] ??= this.be.rows(t, block * this.B, this.B));
  }

  /** Forget the carried state (start of an epoch, or of a new text). */
  resetState(): void {
    this.be.fill(this.h, 0);
    if (this.c) this.be.fill(this.c, 0);
  }

  /**
   * Run the recurrence over the window. Expects `pre` to hold x @ Wx (without bias) for all
   * steps. Leaves h of every step in hAll and carries the last one into `h` (and `c`).
   */
  forward(p: LayerParams): void {
    const be = this.be;
    be.addRowVector(this.pre, p.b);
    be.copy(this.h, this.step(this.hAll, 0));
    if (this.cAll && this.c) be.copy(this.c, this.step(this.cAll, 0));
    for (let t = 0; t < this.T; t++) {
      const pre = this.step(this.pre, t);
      const hPrev = this.step(this.hAll, t);
      const h = this.step(this.hAll, t + 1);
      switch (this.cell) {
        case 'rnn':
          be.gemm(false, false, 1, hPrev, p.Wh, 1, pre);
          be.rnnForward(pre, h);
          break;
        case 'lstm':
          be.gemm(false, false, 1, hPrev, p.Wh, 1, pre);
          be.lstmForward(pre, this.step(this.cAll!, t), this.step(this.cAll!, t + 1), h);
          break;
        case 'gru': {
          const hg = this.step(this.hg!, t);
          be.gemm(false, false, 1, hPrev, p.Wh, 0, hg);
          be.addRowVector(hg, p.bh!);
          be.gruForward(pre, hg, hPrev, h);
          break;
        }
      }
    }
    be.copy(this.step(this.hAll, this.T), this.h);
    if (this.cAll && this.c) be.copy(this.step(this.cAll, this.T), this.c);
  }

  /**
   * Backpropagate through the window. dH: [T*B, H] holds dLoss/dh_t from the layer above (or
   * the output layer) and is used as scratch. Writes dPre (the input-side pre-activation
   * gradient, from which the caller derives dWx and the input gradient) and the gradients of
   * Wh, b (and bh) into `g`. The carried state is treated as a constant (truncated BPTT).
   */
  backward(p: LayerParams, g: LayerParams, dH: Tensor): void {
    const be = this.be;
    if (this.dc) be.fill(this.dc, 0);
    for (let t = this.T - 1; t >= 0; t--) {
      const dh = this.step(dH, t);
      const hPrev = this.step(this.hAll, t);
      const dPre = this.step(this.dPre, t);
      if (t < this.T - 1) {
        // The path from h_t into step t+1 through the recurrent weights.
        const dNext = this.cell === 'gru' ? this.step(this.dHg!, t + 1) : this.step(this.dPre, t + 1);
        be.gemm(false, true, 1, dNext, p.Wh, 1, dh);
        if (this.dhDirect) be.axpy(1, this.dhDirect, dh);
      }
      switch (this.cell) {
        case 'rnn':
          be.rnnBackward(this.step(this.hAll, t + 1), dh, dPre);
          break;
        case 'lstm':
          be.lstmBackward(this.step(this.pre, t), this.step(this.cAll!, t), this.step(this.cAll!, t + 1), dh, this.dc!, dPre);
          break;
        case 'gru':
          be.gruBackward(this.step(this.pre, t), this.step(this.hg!, t), hPrev, dh, dPre, this.step(this.dHg!, t), this.dhDirect!);
          break;
      }
    }
    const dHidden = this.dHg ?? this.dPre;
    // dWh: [H, G] = h_{t-1}^T @ dHidden over all steps at once.
    be.gemm(true, false, 1, this.previous(), dHidden, 0, g.Wh);
    be.sumRows(this.dPre, g.b, false);
    if (g.bh) be.sumRows(this.dHg!, g.bh, false);
  }
}

import type { Backend, Tensor } from '../../backend/backend.js';
import type { CellLayer, InputProjection, LayerParams, RecordedValue } from './cell.js';

/**
 * What every cell's layer shares: the window's buffers of h (and c), the carried state, step
 * views, and the frame of the forward and backward loops. A cell's module subclasses it with
 * its own step math as backend calls.
 *
 * The input projection of all T steps is one GEMM (the model's) and so are the weight
 * gradients; only the recurrent products and the cell math run per step. Those multiply the
 * same recurrent weights T times, so a cell packs each once per window (`Backend.packMatrix`,
 * W for forward and W^T for backward) and runs the steps' products with `gemmPacked`. The packs
 * are locals of one forward or backward call: the optimizer writes the weights between windows,
 * so a pack kept longer would be stale.
 *
 * Buffers (time-major, step t = rows t*B .. t*B+B-1):
 *   pre    [T*B, G]      x @ Wx + b, turned into gate activations in place by the cell
 *   hAll   [(T+1)*B, H]  block 0 = state carried in, block t+1 = h after step t
 *   cAll   [(T+1)*B, H]  cells with a memory cell: c, same layout
 *   dPre   [T*B, G]      gradient of the pre-activations (input side)
 *   dc     [B, H]        gradient flowing back through the cell state
 */
export abstract class Recurrence implements CellLayer {
  readonly pre: Tensor;
  readonly dPre: Tensor;
  readonly hAll: Tensor;
  readonly cAll: Tensor | null;
  readonly dc: Tensor | null;
  readonly h: Tensor;
  readonly c: Tensor | null;
  abstract readonly inputs: readonly InputProjection[];

  constructor(
    protected readonly be: Backend,
    readonly H: number,
    readonly G: number,
    readonly T: number,
    readonly B: number,
    readonly withGradients: boolean,
    hasCellState: boolean,
    /** The gate names whose activations `pre` holds after forward, each H wide, in order. */
    private readonly gates: readonly string[],
  ) {
    const TB = T * B;
    this.pre = be.zeros([TB, G]);
    this.hAll = be.zeros([(T + 1) * B, H]);
    this.cAll = hasCellState ? be.zeros([(T + 1) * B, H]) : null;
    this.dPre = withGradients ? be.zeros([TB, G]) : be.zeros([0, G]);
    this.dc = hasCellState && withGradients ? be.zeros([B, H]) : null;
    this.h = be.zeros([B, H]);
    this.c = hasCellState ? be.zeros([B, H]) : null;
  }

  /** A [T*B, W] buffer for the window, or with gradients only, an empty one without them. */
  protected buffer(W: number, gradient = false): Tensor {
    return gradient && !this.withGradients ? this.be.zeros([0, W]) : this.be.zeros([this.T * this.B, W]);
  }

  outputs(): Tensor {
    return this.be.rows(this.hAll, this.B, this.T * this.B);
  }

  /** h_{t-1} of every step, [T*B, H]: what the recurrent weights multiplied. */
  protected previous(): Tensor {
    return this.be.rows(this.hAll, 0, this.T * this.B);
  }

  /** Step views of each buffer, made once: at batch 1 the per-step work is a few microseconds,
   * and allocating ~200 views per window showed as 15% of a min-char-rnn profile. */
  private readonly stepViews = new Map<Tensor, Tensor[]>();

  /** Rows block*B .. block*B+B-1 of a time-major buffer. */
  protected step(t: Tensor, block: number): Tensor {
    let views = this.stepViews.get(t);
    if (!views) this.stepViews.set(t, (views = []));
    return (views[block] ??= this.be.rows(t, block * this.B, this.B));
  }

  resetState(): void {
    this.be.fill(this.h, 0);
    if (this.c) this.be.fill(this.c, 0);
  }

  abstract forward(p: LayerParams): void;
  abstract backward(p: LayerParams, g: LayerParams, dH: Tensor): void;

  /**
   * The frame of a forward pass: adds the bias b to `pre` (which holds x @ Wx), brings the
   * carried state into block 0, runs `step(t)` for t = 0 .. T-1 and carries the last h (and c)
   * out.
   */
  protected runForward(b: Tensor, step: (t: number) => void): void {
    const be = this.be;
    be.addRowVector(this.pre, b);
    be.copy(this.h, this.step(this.hAll, 0));
    if (this.cAll && this.c) be.copy(this.c, this.step(this.cAll, 0));
    for (let t = 0; t < this.T; t++) step(t);
    be.copy(this.step(this.hAll, this.T), this.h);
    if (this.cAll && this.c) be.copy(this.step(this.cAll, this.T), this.c);
  }

  /**
   * The frame of a backward pass: steps t = T-1 .. 0, `step(t, dh)` with dh = dLoss/dh_t from
   * above (a view of dH) and `recur(t, dh)` first adding the paths from h_t into step t+1
   * (only for t < T-1). The gradient through the cell state starts at zero.
   */
  protected runBackward(dH: Tensor, recur: (t: number, dh: Tensor) => void, step: (t: number, dh: Tensor) => void): void {
    if (this.dc) this.be.fill(this.dc, 0);
    for (let t = this.T - 1; t >= 0; t--) {
      const dh = this.step(dH, t);
      if (t < this.T - 1) recur(t, dh);
      step(t, dh);
    }
  }

  recorded(name: string): RecordedValue {
    if (name === 'h') return { tensor: this.outputs(), offset: 0 };
    if (name === 'c' && this.cAll) return { tensor: this.be.rows(this.cAll, this.B, this.T * this.B), offset: 0 };
    const k = this.gates.indexOf(name);
    if (k < 0) throw new Error(`no recorded quantity ${name}`);
    return { tensor: this.pre, offset: k * this.H };
  }
}

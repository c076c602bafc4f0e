import type { Backend, Tensor } from '../backend/backend.js';
import { UsageError } from '../errors.js';
import { ParamSet } from '../model/params.js';

export type OptimizerName = 'adagrad' | 'rmsprop' | 'adam' | 'sgd';
export const OPTIMIZERS: readonly OptimizerName[] = ['adagrad', 'rmsprop', 'adam', 'sgd'];

export interface OptimizerConfig {
  name: OptimizerName;
  lr: number;
  /** Added under the square root (adagrad, as min-char-rnn) or to it (rmsprop, adam). */
  eps: number;
  /** rmsprop's decay of the squared-gradient average (char-rnn's 0.95). */
  alpha: number;
  beta1: number;
  beta2: number;
}

/**
 * Defaults per optimizer: Adagrad (min-char-rnn's, at three times its rate), char-rnn's RMSprop, PyTorch's Adam, and plain
 * SGD at 1. (charnn's objective sums the loss over a window's T steps, so PyTorch recipes written
 * for a per-token mean loss take lr / T and clip-norm * T here: word_language_model's lr 20 and
 * clip 0.25 at T = 35 are --lr 0.57 --clip-norm 8.75.)
 */
export function defaultOptimizerConfig(name: OptimizerName): OptimizerConfig {
  switch (name) {
    case 'adagrad':
      // 0.3, not min-char-rnn's 0.1: with the warm-up, measured better on tinyshakespeare and
      // WikiText-2 (README, Model quality); min-char-rnn's setup passes --lr 0.1.
      return { name, lr: 0.3, eps: 1e-8, alpha: 0, beta1: 0, beta2: 0 };
    case 'rmsprop':
      return { name, lr: 2e-3, eps: 1e-8, alpha: 0.95, beta1: 0, beta2: 0 };
    case 'adam':
      return { name, lr: 2e-3, eps: 1e-8, alpha: 0, beta1: 0.9, beta2: 0.999 };
    case 'sgd':
      return { name, lr: 1, eps: 0, alpha: 0, beta1: 0, beta2: 0 };
    default:
      throw new UsageError(`unknown optimizer '${name as string}'`, `use ${OPTIMIZERS.join(', ')}`);
  }
}

/** How many state slots (tensors shaped like the parameters) each optimizer keeps. */
function slotNames(name: OptimizerName): string[] {
  if (name === 'sgd') return [];
  return name === 'adam' ? ['m', 'v'] : name === 'adagrad' ? ['mem', 'memComp'] : ['ms'];
}

/**
 * Whether the update of a parameter row whose gradient is zero leaves the row and its slots
 * exactly as they were, so a row-sparse gradient may update only its rows. Not so for Adam
 * (momentum keeps moving the row) or RMSprop (its average decays).
 */
export function updatesRowsIndependently(name: OptimizerName): boolean {
  return name === 'sgd' || name === 'adagrad';
}

/**
 * A first-order optimizer over a ParamSet. Its state (the per-parameter slots and the step
 * count) is part of every checkpoint, so resuming continues exactly.
 */
export class Optimizer {
  /** slot name -> tensors like the parameters, e.g. adam's `m` and `v`. */
  readonly slots: Map<string, ParamSet>;
  /** Updates applied so far (Adam's bias correction counts from 1). */
  step = 0;
  /** Scratch for row-sparse updates: the touched rows of the parameter and of each slot. */
  private readonly rowScratch = new Map<number, Tensor[]>();

  constructor(
    private readonly be: Backend,
    readonly config: OptimizerConfig,
    params: ParamSet,
  ) {
    this.slots = new Map(slotNames(config.name).map((n) => [n, ParamSet.zeros(be, params.specs)]));
  }

  /**
   * Apply one update with learning rate `lr` (the schedule's current value). A row-sparse
   * gradient (see ParamSet) updates only its rows, which is exact only when
   * `updatesRowsIndependently` holds for this optimizer.
   */
  update(params: ParamSet, grads: ParamSet, lr: number): void {
    this.step++;
    const slotSets = [...this.slots.values()];
    params.tensors.forEach((p, i) => {
      const g = grads.tensors[i];
      const rowIds = grads.rowIds[i];
      if (!rowIds) {
        this.apply(p, g, slotSets.map((s) => s.tensors[i]), lr);
        return;
      }
      if (!updatesRowsIndependently(this.config.name)) throw new Error(`${this.config.name} cannot update rows alone`);
      // Take the rows out of the parameter and its slots, update them, put them back.
      const tables = [p, ...slotSets.map((s) => s.tensors[i])];
      const rows = this.scratchRows(i, tables, g);
      tables.forEach((t, k) => this.be.gatherRows(t, rowIds, rows[k]));
      this.apply(rows[0], g, rows.slice(1), lr);
      tables.forEach((t, k) => this.be.scatterRows(rows[k], rowIds, t));
    });
  }

  /** The update rule on one tensor: p with gradient g and this optimizer's slot tensors for it. */
  private apply(p: Tensor, g: Tensor, slots: Tensor[], lr: number): void {
    const c = this.config;
    const be = this.be;
    switch (c.name) {
      case 'sgd':
        be.axpy(-lr, g, p);
        break;
      case 'adagrad':
        be.adagrad(p, g, slots[0], slots[1], lr, c.eps);
        break;
      case 'rmsprop':
        be.rmsprop(p, g, slots[0], lr, c.alpha, c.eps);
        break;
      case 'adam':
        be.adam(p, g, slots[0], slots[1], lr, c.beta1, c.beta2, c.eps, this.step);
        break;
    }
  }

  /** Row buffers shaped like g: [U, D] for the parameter and each slot, reallocated when U exceeds them. */
  private scratchRows(i: number, tables: Tensor[], g: Tensor): Tensor[] {
    const U = g.shape[0];
    let held = this.rowScratch.get(i);
    if (!held || held[0].shape[0] < U) {
      held = tables.map(() => this.be.zeros(g.shape));
      this.rowScratch.set(i, held);
    }
    return held.map((t) => this.be.rows(t, 0, U));
  }
}

/**
 * Gradient clipping. Elementwise to [-clip, clip] (min-char-rnn's np.clip) and/or rescaling so
 * the global L2 norm is at most clipNorm (PyTorch's clip_grad_norm_). Returns the norm before
 * clipping when it was computed (NaN otherwise).
 */
export async function clipGradients(be: Backend, grads: ParamSet, clip: number, clipNorm: number): Promise<number> {
  if (clip > 0) for (const g of grads.tensors) be.clip(g, clip);
  if (!(clipNorm > 0)) return NaN;
  const norm = Math.sqrt(await be.sumSquares(grads.tensors));
  if (norm > clipNorm) {
    const s = clipNorm / (norm + 1e-6);
    for (const g of grads.tensors) be.scale(g, s);
  }
  return norm;
}

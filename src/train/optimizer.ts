import type { Backend } from '../backend/backend.js';
import { UsageError } from '../errors.js';
import { ParamSet } from '../model/params.js';

export type OptimizerName = 'adagrad' | 'rmsprop' | 'adam';
export const OPTIMIZERS: readonly OptimizerName[] = ['adagrad', 'rmsprop', 'adam'];

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

/** Defaults per optimizer: min-char-rnn's Adagrad, char-rnn's RMSprop, PyTorch's Adam. */
export function defaultOptimizerConfig(name: OptimizerName): OptimizerConfig {
  switch (name) {
    case 'adagrad':
      return { name, lr: 0.1, eps: 1e-8, alpha: 0, beta1: 0, beta2: 0 };
    case 'rmsprop':
      return { name, lr: 2e-3, eps: 1e-8, alpha: 0.95, beta1: 0, beta2: 0 };
    case 'adam':
      return { name, lr: 2e-3, eps: 1e-8, alpha: 0, beta1: 0.9, beta2: 0.999 };
    default:
      throw new UsageError(`unknown optimizer '${name as string}'`, 'use adagrad, rmsprop or adam');
  }
}

/** How many state slots (tensors shaped like the parameters) each optimizer keeps. */
function slotNames(name: OptimizerName): string[] {
  return name === 'adam' ? ['m', 'v'] : name === 'adagrad' ? ['mem', 'memComp'] : ['ms'];
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

  constructor(
    private readonly be: Backend,
    readonly config: OptimizerConfig,
    params: ParamSet,
  ) {
    this.slots = new Map(slotNames(config.name).map((n) => [n, ParamSet.zeros(be, params.specs)]));
  }

  /** Apply one update with learning rate `lr` (the schedule's current value). */
  update(params: ParamSet, grads: ParamSet, lr: number): void {
    const c = this.config;
    const be = this.be;
    this.step++;
    params.tensors.forEach((p, i) => {
      const g = grads.tensors[i];
      switch (c.name) {
        case 'adagrad':
          be.adagrad(p, g, this.slot('mem').tensors[i], this.slot('memComp').tensors[i], lr, c.eps);
          break;
        case 'rmsprop':
          be.rmsprop(p, g, this.slot('ms').tensors[i], lr, c.alpha, c.eps);
          break;
        case 'adam':
          be.adam(p, g, this.slot('m').tensors[i], this.slot('v').tensors[i], lr, c.beta1, c.beta2, c.eps, this.step);
          break;
      }
    });
  }

  private slot(name: string): ParamSet {
    const s = this.slots.get(name);
    if (!s) throw new Error(`optimizer ${this.config.name} has no slot ${name}`);
    return s;
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

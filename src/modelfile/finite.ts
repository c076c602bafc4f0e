import { CharnnError } from '../errors.js';
import { quoteText } from '../util/visible-text.js';

/** Index of the first NaN or infinite value in `data`, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    // v - v is 0 for every finite v and NaN for NaN and ±Infinity: one test for both.
    const v = data[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Refuses a tensor holding NaN or ±Infinity, naming it: weights like that evaluate to a loss of
 * NaN and sample garbage, so a model file or an imported safetensors file carrying them (edited,
 * or trained elsewhere until it diverged) is stopped where it is read. charnn's own trainer
 * never saves such weights (divergence stops it before the update).
 *
 * @param source the file, for the message
 * @throws CharnnError (exit 1) naming the file, the tensor, the element index and the value
 */
export function requireFinite(source: string, name: string, data: ArrayLike<number>): void {
  const i = firstNonFinite(data);
  if (i < 0) return;
  throw new CharnnError(
    `${source}: tensor ${quoteText(name)} holds ${data[i]} at element ${i}; a model needs finite weights`,
    'the weights are damaged or come from a run that diverged; use an earlier checkpoint or retrain',
  );
}

import { UsageError } from '../errors.js';

/**
 * Option-value checks that end in a one-line usage error naming the option. Integers must be
 * safe integers (below 2^53): 1e300 is an integer to JavaScript but no count charnn can reach.
 */
export function requirePositiveInteger(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 1) throw new UsageError(`${name} must be a positive integer, got ${v}`);
}

export function requireNonNegativeInteger(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`${name} must be a non-negative integer, got ${v}`);
}

export function requireNonNegativeNumber(name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new UsageError(`${name} must be a non-negative number, got ${v}`);
}

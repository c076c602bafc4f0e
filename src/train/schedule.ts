import { UsageError } from '../errors.js';

/**
 * Learning-rate schedules over a run: a linear warm-up, then a decay to a floor at the run's end,
 * as nanoGPT anneals to `max_iters` (Loshchilov & Hutter 2017, "SGDR", for the cosine shape).
 * A schedule is a factor multiplying the run's learning rate (`--lr`, after any --lr-decay or
 * --plateau-decay steps), so the older step decays compose with it.
 */
export type ScheduleKind = 'constant' | 'cosine' | 'linear';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'cosine', 'linear'];

export interface LrSchedule {
  kind: ScheduleKind;
  /** Updates over which the factor climbs linearly from 1/warmup to 1 (0 = none). */
  warmup: number;
  /** The factor the decay ends at (nanoGPT's min_lr = lr / 10 is 0.1). */
  floor: number;
}

/** The schedule of runs written before schedules existed: a constant rate. */
export const CONSTANT_SCHEDULE: LrSchedule = { kind: 'constant', warmup: 0, floor: 1 };

/** Throws a UsageError (exit 2) for a schedule that cannot work. */
export function validateSchedule(s: LrSchedule): void {
  if (!SCHEDULE_KINDS.includes(s.kind)) throw new UsageError(`unknown --lr-schedule '${s.kind as string}'`, `use ${SCHEDULE_KINDS.join(', ')}`);
  if (!Number.isInteger(s.warmup) || s.warmup < 0) throw new UsageError(`--warmup must be a non-negative integer, got ${s.warmup}`);
  if (!(s.floor >= 0 && s.floor <= 1)) throw new UsageError(`--lr-floor must be in [0, 1], got ${s.floor}`);
}

/**
 * The factor for update number `update` (1 for the run's first update) of a run whose decay ends
 * at update `horizon` (null while unknown: a time-limited run before its rate is measured; the
 * factor then stays at its post-warm-up 1). Past the horizon the factor stays at the floor.
 * Returns a number in (0, 1].
 */
export function scheduleFactor(s: LrSchedule, update: number, horizon: number | null): number {
  if (s.warmup > 0 && update <= s.warmup) return update / s.warmup;
  if (s.kind === 'constant' || horizon === null) return 1;
  const span = horizon - s.warmup;
  const progress = span > 0 ? Math.min(1, Math.max(0, (update - s.warmup) / span)) : 1;
  const decayed = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return Math.max(s.floor + (1 - s.floor) * decayed, Number.MIN_VALUE);
}

/**
 * The update at which a time-limited run's decay ends, estimated from its pace so far:
 * `update` updates done, `seconds` of this invocation spent over `updatesThisRun` of them, and
 * `budget` seconds in all. Validation pauses ahead are not seen yet, so the estimate keeps a
 * small margin (3%): ending the decay a little early costs less than never reaching the floor.
 */
export function estimateHorizon(update: number, updatesThisRun: number, seconds: number, budget: number): number {
  const rate = updatesThisRun / seconds;
  return update + Math.max(1, Math.floor(rate * Math.max(0, budget - seconds) * 0.97));
}

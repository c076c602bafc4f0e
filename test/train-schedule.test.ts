import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { type LrSchedule, estimateHorizon, scheduleFactor, validateSchedule } from '../src/train/schedule.js';

describe('learning-rate schedule factor', () => {
  const cosine: LrSchedule = { kind: 'cosine', warmup: 10, floor: 0.1 };

  it('warms up linearly from 1/warmup to 1', () => {
    expect(scheduleFactor(cosine, 1, 110)).toBeCloseTo(0.1, 12);
    expect(scheduleFactor(cosine, 5, 110)).toBeCloseTo(0.5, 12);
    expect(scheduleFactor(cosine, 10, 110)).toBe(1);
  });

  it('cosine: half-way between 1 and the floor at the middle of the decay, the floor at the horizon and after', () => {
    expect(scheduleFactor(cosine, 60, 110)).toBeCloseTo(0.55, 12);
    expect(scheduleFactor(cosine, 110, 110)).toBeCloseTo(0.1, 12);
    expect(scheduleFactor(cosine, 500, 110)).toBeCloseTo(0.1, 12);
    expect(scheduleFactor(cosine, 35, 110)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4)), 12);
  });

  it('linear: a straight line from 1 to the floor', () => {
    const linear: LrSchedule = { kind: 'linear', warmup: 0, floor: 0 };
    expect(scheduleFactor(linear, 25, 100)).toBeCloseTo(0.75, 12);
    expect(scheduleFactor(linear, 100, 100)).toBeGreaterThan(0); // never exactly 0: an update still happens
  });

  it('constant, or an unknown horizon: 1 after the warm-up', () => {
    expect(scheduleFactor({ kind: 'constant', warmup: 0, floor: 0.1 }, 5000, 100)).toBe(1);
    expect(scheduleFactor(cosine, 50, null)).toBe(1);
    expect(scheduleFactor(cosine, 5, null)).toBeCloseTo(0.5, 12);
  });

  it('a horizon inside the warm-up decays at once after it', () => {
    expect(scheduleFactor(cosine, 11, 5)).toBeCloseTo(0.1, 12);
  });

  it('estimates a time-limited run\'s horizon from its pace, with a margin', () => {
    // 100 updates in 10 s of a 100 s budget: 900 more at that pace, 97% of them.
    expect(estimateHorizon(100, 100, 10, 100)).toBe(100 + 873);
    // A resumed run: 40 updates in this invocation, 1,000 before.
    expect(estimateHorizon(1040, 40, 2, 20)).toBe(1040 + Math.floor(20 * 18 * 0.97));
  });

  it('rejects schedules that cannot work with a usage error', () => {
    expect(() => validateSchedule({ kind: 'cosine', warmup: -1, floor: 0.1 })).toThrow(UsageError);
    expect(() => validateSchedule({ kind: 'cosine', warmup: 1.5, floor: 0.1 })).toThrow(/--warmup/);
    expect(() => validateSchedule({ kind: 'cosine', warmup: 0, floor: 1.5 })).toThrow(/--lr-floor/);
    expect(() => validateSchedule({ kind: 'cosine', warmup: 0, floor: Number.NaN })).toThrow(/--lr-floor/);
    expect(() => validateSchedule({ kind: 'step' as never, warmup: 0, floor: 0.1 })).toThrow(/--lr-schedule/);
  });
});

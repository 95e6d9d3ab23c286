import fc from 'fast-check';
import { InvalidArgumentError, maxInAnyWindow, SlidingWindowLimiter } from '@sluice/core';
import { LimiterRegistry, MARGIN_HOLD_MS } from '@sluice/core/internal';

describe('SlidingWindowLimiter', () => {
  it('grants up to allowed and says exactly when the next unit frees', () => {
    const l = new SlidingWindowLimiter({ allowed: 400, periodMs: 1000 });
    expect(l.acquire(500, 0)).toEqual({ granted: 400, retryAfterMs: 1000 });
    expect(l.acquire(10, 999)).toEqual({ granted: 0, retryAfterMs: 1 });
    expect(l.acquire(10, 1000)).toEqual({ granted: 10 });
  });

  it('frees units in the order they were granted', () => {
    const l = new SlidingWindowLimiter({ allowed: 3, periodMs: 100 });
    l.acquire(1, 0);
    l.acquire(2, 50);
    expect(l.retryAfter(60)).toBe(40); // the unit of t=0 frees at 100
    expect(l.available(100)).toBe(1);
    expect(l.available(150)).toBe(3);
  });

  it('refunds units that went unused', () => {
    const l = new SlidingWindowLimiter({ allowed: 5, periodMs: 100 });
    l.acquire(5, 10);
    l.refund(3, 10);
    expect(l.available(20)).toBe(3);
  });

  it('never allows more than `allowed` in any window, for any request pattern (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 30 })), {
          maxLength: 200,
        }),
        (allowed, periodMs, steps) => {
          const l = new SlidingWindowLimiter({ allowed, periodMs });
          const starts: number[] = [];
          let now = 0;
          for (const [dt, want] of steps) {
            now += dt;
            const { granted } = l.acquire(want, now);
            for (let i = 0; i < granted; i++) starts.push(now);
          }
          // Every window [t, t + periodMs) starting at a start time holds at most `allowed` starts.
          let j = 0;
          for (let i = 0; i < starts.length; i++) {
            while (j < starts.length && starts[j]! < starts[i]! + periodMs) j++;
            if (j - i > allowed) return false;
          }
          return true;
        },
      ),
    );
  });

  it('rejects bad configuration', () => {
    expect(() => new SlidingWindowLimiter({ allowed: 0, periodMs: 10 })).toThrow(InvalidArgumentError);
    expect(() => new SlidingWindowLimiter({ allowed: 1, periodMs: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('LimiterRegistry', () => {
  it('shares a limiter by key and refuses to reuse a key with other numbers', () => {
    const r = new LimiterRegistry();
    const a = r.get('ses', { allowed: 10, periodMs: 1000 });
    expect(r.get('ses', { allowed: 10, periodMs: 1000 })).toBe(a);
    expect(() => r.get('ses', { allowed: 11, periodMs: 1000 })).toThrow(/already/);
  });
});

describe('maxInAnyWindow', () => {
  it('counts the busiest half-open window, whatever the order of the times', () => {
    expect(maxInAnyWindow([0, 999, 1000, 1001, 1998], 1000)).toBe(4); // [999, 1999)
    expect(maxInAnyWindow([2000, 0, 1000], 1000)).toBe(1); // a start at t + periodMs is a new window
    expect(maxInAnyWindow([5, 5, 5], 1)).toBe(3);
    expect(maxInAnyWindow([], 1000)).toBe(0);
  });

  it("holds a margin MARGIN_HOLD_MS plus the limit's window when given one", () => {
    const limiter = new SlidingWindowLimiter({ allowed: 1, periodMs: 60_000 });
    expect(limiter.holdMargin(300, 0, 60_000)).toBe(300);
    expect(limiter.holdMargin(10, 60_000 + MARGIN_HOLD_MS, 60_000)).toBe(300); // still held
    expect(limiter.holdMargin(10, 60_001 + MARGIN_HOLD_MS, 60_000)).toBe(10);
  });

  it("holds the widest margin asked for MARGIN_HOLD_MS, then takes the caller's own again", () => {
    const limiter = new SlidingWindowLimiter({ allowed: 1, periodMs: 1000 });
    expect(limiter.holdMargin(10, 0)).toBe(10);
    expect(limiter.holdMargin(40, 100)).toBe(40);
    expect(limiter.holdMargin(10, 100 + MARGIN_HOLD_MS)).toBe(40); // still held
    expect(limiter.holdMargin(40, 200)).toBe(40); // asked again: held from here
    expect(limiter.holdMargin(10, 200 + MARGIN_HOLD_MS)).toBe(40);
    expect(limiter.holdMargin(10, 201 + MARGIN_HOLD_MS)).toBe(10); // nobody asked for 40 lately
    expect(limiter.holdMargin(5, 202 + MARGIN_HOLD_MS)).toBe(10);
  });
});

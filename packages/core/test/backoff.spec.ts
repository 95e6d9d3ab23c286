import { exponential, fixed, InvalidArgumentError, type BackoffPolicy, type ErrorInfo } from '@sluice/core';
import { reservedJob } from './pipeline/helpers';

const error: ErrorInfo = { name: 'Error', message: 'boom' };
const job = reservedJob('j', null);

/** The delays a policy gives for attempts 1..n. */
const delays = (policy: BackoffPolicy, n: number): number[] =>
  Array.from({ length: n }, (_, i) => policy(i + 1, error, job));

/** A `random` that returns the given values in turn. */
const sequence = (...values: number[]): (() => number) => {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
};

describe('exponential', () => {
  it('grows from baseMs by factor per attempt without jitter', () => {
    expect(delays(exponential({ baseMs: 100, factor: 3, jitter: 'none' }), 5)).toEqual([
      100, 300, 900, 2_700, 8_100,
    ]);
  });

  it('defaults to 1 s doubling with full jitter', () => {
    expect(delays(exponential({ random: () => 0.999_999 }), 4)).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(delays(exponential({ random: () => 0 }), 4)).toEqual([0, 0, 0, 0]);
  });

  it('full jitter: a uniform delay in [0, ceiling]', () => {
    const policy = exponential({ baseMs: 1_000, jitter: 'full', random: sequence(0.25, 0.5, 0.75) });
    expect(delays(policy, 3)).toEqual([250, 1_000, 3_000]);
  });

  it('equal jitter: half the ceiling plus a random half', () => {
    const policy = exponential({ baseMs: 1_000, jitter: 'equal', random: sequence(0, 0.5, 0.999_999) });
    expect(delays(policy, 3)).toEqual([500, 1_500, 4_000]);
  });

  it('caps every ceiling at maxMs, also for huge attempts', () => {
    const policy = exponential({ baseMs: 1_000, maxMs: 5_000, jitter: 'none' });
    expect(delays(policy, 5)).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(policy(10_000, error, job)).toBe(5_000);
    const jittered = exponential({ baseMs: 1_000, maxMs: 5_000, jitter: 'full', random: () => 0.5 });
    expect(jittered(40, error, job)).toBe(2_500);
  });

  it('defaults maxMs to one hour', () => {
    expect(exponential({ jitter: 'none' })(30, error, job)).toBe(3_600_000);
  });

  it('treats attempt 0 like attempt 1', () => {
    expect(exponential({ baseMs: 100, jitter: 'none' })(0, error, job)).toBe(100);
  });

  it('returns whole milliseconds', () => {
    const policy = exponential({ baseMs: 3, jitter: 'full', random: () => 0.5 });
    expect(policy(1, error, job)).toBe(2); // 1.5 rounded
  });

  it('accepts factor 1 (a constant ceiling) and baseMs 0', () => {
    expect(delays(exponential({ baseMs: 700, factor: 1, jitter: 'none' }), 3)).toEqual([700, 700, 700]);
    expect(delays(exponential({ baseMs: 0, jitter: 'none' }), 3)).toEqual([0, 0, 0]);
  });

  it.each([
    [{ baseMs: -1 }],
    [{ baseMs: Number.NaN }],
    [{ factor: 0.5 }],
    [{ factor: Number.NaN }],
    [{ maxMs: -1 }],
    [{ maxMs: Number.NaN }],
  ])('throws InvalidArgumentError for %o', (config) => {
    expect(() => exponential(config)).toThrow(InvalidArgumentError);
    expect(() => exponential(config)).toThrow(/baseMs ≥ 0, factor ≥ 1 and maxMs ≥ 0/);
  });
});

describe('fixed', () => {
  it('gives the same delay after every failure, without jitter by default', () => {
    expect(delays(fixed(30_000), 4)).toEqual([30_000, 30_000, 30_000, 30_000]);
  });

  it('applies full or equal jitter on request', () => {
    expect(delays(fixed(1_000, { jitter: 'full', random: sequence(0.1, 0.9) }), 2)).toEqual([100, 900]);
    expect(delays(fixed(1_000, { jitter: 'equal', random: sequence(0, 0.5) }), 2)).toEqual([500, 750]);
  });

  it('accepts 0', () => {
    expect(fixed(0)(1, error, job)).toBe(0);
  });

  it.each([-1, Number.NaN])('throws InvalidArgumentError for %p', (delayMs) => {
    expect(() => fixed(delayMs)).toThrow(InvalidArgumentError);
    expect(() => fixed(delayMs)).toThrow(/fixed backoff needs delayMs ≥ 0/);
  });
});

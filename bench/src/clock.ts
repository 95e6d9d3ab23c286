import { performance } from 'node:perf_hooks';

/**
 * Wall-clock time in epoch milliseconds with sub-millisecond resolution:
 * `performance.timeOrigin + performance.now()`.
 *
 * Every process of a benchmark (producer and workers, all on one machine) reads this clock, so a
 * timestamp taken by the producer and carried in a job's payload can be subtracted from one taken by
 * a worker. `Date.now()` is the same clock rounded down to whole milliseconds, too coarse for
 * latencies of a millisecond or two.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

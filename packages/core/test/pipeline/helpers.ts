import { TestScheduler } from 'rxjs/testing';

/** A TestScheduler whose assertions use Jest's deep equality. */
export function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** The largest number of timestamps in any half-open window `[t, t + periodMs)`. */
export function maxInAnyWindow(times: readonly number[], periodMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + periodMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

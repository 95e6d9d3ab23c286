/** The most times that fall in any window `[t, t + periodMs)`: the busiest stretch of a run. */
export function maxInAnyWindow(times: readonly number[], periodMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let end = 0;
  sorted.forEach((start, i) => {
    while (end < sorted.length && (sorted[end] ?? Infinity) < start + periodMs) end++;
    best = Math.max(best, end - i);
  });
  return best;
}

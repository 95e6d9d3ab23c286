/**
 * Statistics used by the scenarios. Every function takes plain arrays of numbers (milliseconds or
 * counts) and never mutates them.
 */

/** The median; `NaN` for an empty list. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * The `p`-th percentile (0-100) by the nearest-rank method: the smallest value such that at least
 * `p`% of the values are less than or equal to it. `NaN` for an empty list.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

/**
 * The sustained rate of a series of events, in events per second: the least-squares slope of the
 * cumulative count against time. Unlike `count / duration`, it does not depend on where the
 * measurement window cuts a limiter's bursts (400 starts at once, then nothing for a second): for a
 * staircase of `k` units every `p` ms it is exactly `1000 k / p`.
 *
 * `times` are milliseconds; `weights` (default 1 each) count several units at one time (the items of
 * one batch call). `NaN` with fewer than two distinct times.
 */
export function sustainedRate(times: readonly number[], weights?: readonly number[]): number {
  const order = times.map((t, i) => ({ t, w: weights?.[i] ?? 1 })).sort((a, b) => a.t - b.t);
  if (order.length < 2) return NaN;
  let cumulative = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const { t, w } of order) {
    cumulative += w;
    xs.push(t);
    ys.push(cumulative);
  }
  const n = xs.length;
  const meanX = xs.reduce((s, x) => s + x, 0) / n;
  const meanY = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] ?? 0) - meanX;
    sxy += dx * ((ys[i] ?? 0) - meanY);
    sxx += dx * dx;
  }
  return sxx === 0 ? NaN : (sxy / sxx) * 1000;
}

/**
 * The rate of events under a limit of `perCycle` units per period, in units per second, measured over
 * whole cycles: from the first event to the event `perCycle × k` events later (the largest such k),
 * counting the events in between. A limiter lets event `j + perCycle` start no earlier than one
 * period after event `j`, so both ends sit at the same point of the limiter's cycle and the figure
 * is exact for a saturated limiter however its bursts fall, where `count / duration` over a fixed
 * window is off by up to a burst. `weights` (default 1 each) count the items of a batch call.
 * With fewer than `perCycle + 1` events (a slow or loaded machine, a short run) there is no whole
 * cycle: then the units over `spanMs` (the measured time), or `NaN` without it.
 */
export function cycleRate(
  times: readonly number[],
  perCycle: number,
  weights?: readonly number[],
  spanMs?: number,
): number {
  const events = times.map((t, i) => ({ t, w: weights?.[i] ?? 1 })).sort((a, b) => a.t - b.t);
  const cycles = Math.floor((events.length - 1) / perCycle);
  if (cycles < 1) {
    if (spanMs === undefined || !(spanMs > 0)) return NaN;
    return (events.reduce((n, e) => n + e.w, 0) * 1000) / spanMs;
  }
  const last = cycles * perCycle;
  let units = 0;
  for (let i = 0; i < last; i++) units += events[i]?.w ?? 0;
  const elapsed = (events[last]?.t ?? 0) - (events[0]?.t ?? 0);
  return elapsed > 0 ? (units * 1000) / elapsed : NaN;
}

/** What {@link slidingWindows} found. */
export interface WindowCounts {
  /** The largest number of units in any half-open window `[t, t + periodMs)`. */
  readonly max: number;
  /** How many windows starting at an event (one per event) hold more than `limit` units. */
  readonly over: number;
}

/**
 * Counts units in the sliding windows `[t, t + periodMs)` that start at each event time `t` (a window
 * starting anywhere else holds no more than the one starting at the next event). `weights` default to
 * 1 per event.
 */
export function slidingWindows(
  times: readonly number[],
  periodMs: number,
  limit: number,
  weights?: readonly number[],
): WindowCounts {
  const events = times.map((t, i) => ({ t, w: weights?.[i] ?? 1 })).sort((a, b) => a.t - b.t);
  let max = 0;
  let over = 0;
  let inWindow = 0; // units of events[first .. end)
  let first = 0;
  let end = 0;
  for (let start = 0; start < events.length; start++) {
    const from = events[start]?.t ?? 0;
    // Events at the same time share one window: it holds all of them, so drop only earlier times.
    while (first < start && (events[first]?.t ?? 0) < from) inWindow -= events[first++]?.w ?? 0;
    while (end < events.length && (events[end]?.t ?? 0) < from + periodMs) inWindow += events[end++]?.w ?? 0;
    max = Math.max(max, inWindow);
    if (inWindow > limit) over++;
  }
  return { max, over };
}

/** Rounds to `digits` significant digits (for reports; the JSON keeps a few more than the table). */
export function significant(value: number, digits: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}

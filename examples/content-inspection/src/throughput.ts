import { maxInAnyWindow } from '@sluice/core';
import type { InspectionCall } from './inspection-api';

/** The most calls that fall in any window `[t, t + periodMs)`. */
export function maxCallsInAnyWindow(calls: readonly InspectionCall[], periodMs: number): number {
  return maxInAnyWindow(
    calls.map((c) => c.at),
    periodMs,
  );
}

/** Messages per second sustained by the calls made from some time on. */
export interface SustainedRate {
  /**
   * Over the whole interval, measured across whole windows of the limit: from a call to the call
   * that reused its slot `k` windows later (call `i + k × allowed`), so where the interval starts
   * within the limiter's rhythm does not bias the result.
   */
  readonly perSecond: number;
  /**
   * The median window, over every call `i` to call `i + allowed`: a stall of the machine slows a
   * few windows, not the median.
   */
  readonly medianPerSecond: number;
  readonly calls: number;
  readonly spanMs: number;
}

/**
 * The pace of the calls made from `fromMs` on (after warm-up, while a backlog keeps the API busy),
 * for a limit of `allowed` calls per second.
 */
export function sustainedRate(
  calls: readonly InspectionCall[],
  allowed: number,
  fromMs: number,
): SustainedRate {
  const steady = calls.filter((c) => c.at >= fromMs).sort((a, b) => a.at - b.at);
  const n = Math.floor((steady.length - 1) / allowed) * allowed;
  const first = steady[0];
  const last = steady[n];
  if (n === 0 || !first || !last) return { perSecond: 0, medianPerSecond: 0, calls: 0, spanMs: 0 };
  const itemsIn = (from: number, to: number): number =>
    steady.slice(from, to).reduce((sum, c) => sum + c.messageIds.length, 0);
  const windows = steady
    .slice(0, steady.length - allowed)
    .map((c, i) => (itemsIn(i, i + allowed) * 1000) / ((steady[i + allowed]?.at ?? Infinity) - c.at))
    .sort((a, b) => a - b);
  return {
    perSecond: (itemsIn(0, n) * 1000) / (last.at - first.at),
    medianPerSecond: windows[Math.floor(windows.length / 2)] ?? 0,
    calls: n,
    spanMs: last.at - first.at,
  };
}

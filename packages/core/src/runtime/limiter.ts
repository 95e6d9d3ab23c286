import { InvalidArgumentError } from '../model/errors';

export interface SlidingWindowConfig {
  /** Units allowed in any window of `periodMs`. */
  readonly allowed: number;
  readonly periodMs: number;
}

/** The answer of {@link SlidingWindowLimiter.acquire}. */
export interface Grant {
  readonly granted: number;
  /** Set when fewer than wanted were granted: ms from `now` until at least one more unit frees up. */
  readonly retryAfterMs?: number;
}

/**
 * An exact sliding-log rate limiter: never more than `allowed` units in any window of `periodMs`.
 *
 * A unit granted at time `t` occupies every window that contains `t`, i.e. until `t + periodMs`.
 * Grants made at the same instant are kept as one log entry, so memory is bounded by the number of
 * grants in a period, not the number of units. Time is passed in by the caller (the store's clock),
 * which keeps the limiter deterministic and usable in virtual time.
 *
 * The same algorithm runs in the Redis store's reserve script; this class is the in-process one,
 * used by `MemoryStore` and by {@link rateLimit}.
 *
 * ## Example
 * ```ts
 * const limiter = new SlidingWindowLimiter({ allowed: 400, periodMs: 1000 });
 * limiter.acquire(500, 0);   // { granted: 400, retryAfterMs: 1000 }
 * limiter.acquire(10, 999);  // { granted: 0, retryAfterMs: 1 }
 * limiter.acquire(10, 1000); // { granted: 10 }
 * ```
 */
export class SlidingWindowLimiter {
  readonly allowed: number;
  readonly periodMs: number;
  // Log entries oldest first: times[i] holds counts[i] units. `head` skips expired entries without shifting.
  private times: number[] = [];
  private counts: number[] = [];
  private head = 0;
  private inWindow = 0;

  constructor(config: SlidingWindowConfig) {
    if (!Number.isInteger(config.allowed) || config.allowed < 1) {
      throw new InvalidArgumentError(`allowed must be an integer ≥ 1, got ${String(config.allowed)}`);
    }
    if (!Number.isFinite(config.periodMs) || config.periodMs <= 0) {
      throw new InvalidArgumentError(`periodMs must be > 0, got ${String(config.periodMs)}`);
    }
    this.allowed = config.allowed;
    this.periodMs = config.periodMs;
  }

  /** Units that may still be granted at `now`. */
  available(now: number): number {
    this.evict(now);
    return Math.max(0, this.allowed - this.inWindow);
  }

  /** Units granted within the window ending at `now`. */
  used(now: number): number {
    this.evict(now);
    return this.inWindow;
  }

  /** Grants up to `want` units at `now` and records them. */
  acquire(want: number, now: number): Grant {
    const granted = Math.min(Math.max(0, Math.floor(want)), this.available(now));
    this.record(granted, now);
    if (granted < want) return { granted, retryAfterMs: this.retryAfter(now) };
    return { granted };
  }

  /** Records `units` granted at `now` without checking (the caller already checked `available`). */
  record(units: number, now: number): void {
    if (units <= 0) return;
    const last = this.times.length - 1;
    if (last >= this.head && this.times[last] === now) {
      this.counts[last] = (this.counts[last] ?? 0) + units;
    } else {
      this.times.push(now);
      this.counts.push(units);
    }
    this.inWindow += units;
  }

  /** Removes up to `units` granted at exactly `at` (a grant that went unused). Always safe. */
  refund(units: number, at: number): void {
    for (let i = this.times.length - 1; i >= this.head && units > 0; i--) {
      if (this.times[i] !== at) continue;
      const take = Math.min(units, this.counts[i] ?? 0);
      this.counts[i] = (this.counts[i] ?? 0) - take;
      this.inWindow -= take;
      units -= take;
    }
  }

  /**
   * Moves `units` granted at `from` to `now` (work that started later than it was counted), or, with
   * `lagMs`, to `now − lagMs` but never before `from`: the time a start happening now would have been
   * granted at, for callers that start work a fixed delay after its grant. Units still in the window
   * always move: every window that gains them ends after `now`, so the next grants see them. Units
   * whose grant left the window need room now and are recorded at `now`; all or nothing, and
   * `retryAfterMs` says when to try again.
   */
  move(units: number, from: number, now: number, lagMs = 0): Grant & { readonly at?: number } {
    this.evict(now);
    let recorded = 0;
    for (let i = this.head; i < this.times.length && recorded < units; i++) {
      if (this.times[i] === from) recorded += this.counts[i] ?? 0;
    }
    const found = Math.min(units, recorded);
    if (units - found > this.available(now)) return { granted: 0, retryAfterMs: this.retryAfter(now) };
    this.refund(found, from);
    const latest = this.times[this.times.length - 1] ?? now;
    if (found < units || lagMs <= 0) {
      const at = Math.max(now, latest);
      this.record(units, at);
      return { granted: units, at };
    }
    const at = Math.max(from, now - lagMs);
    this.insert(units, at);
    return { granted: units, at };
  }

  /** Records `units` at `at`, which may be before the newest entry (the log stays sorted). */
  private insert(units: number, at: number): void {
    let i = this.times.length;
    while (i > this.head && (this.times[i - 1] ?? -Infinity) > at) i--;
    if (i > this.head && this.times[i - 1] === at) {
      this.counts[i - 1] = (this.counts[i - 1] ?? 0) + units;
    } else {
      this.times.splice(i, 0, at);
      this.counts.splice(i, 0, units);
    }
    this.inWindow += units;
  }

  /** Ms from `now` until at least one unit is available (0 if one is available now). */
  retryAfter(now: number): number {
    this.evict(now);
    let excess = this.inWindow - this.allowed + 1;
    if (excess <= 0) return 0;
    // The unit that must expire is the `excess`-th oldest; it frees at its time + periodMs.
    for (let i = this.head; i < this.times.length; i++) {
      excess -= this.counts[i] ?? 0;
      if (excess <= 0) return (this.times[i] ?? now) + this.periodMs - now;
    }
    return this.periodMs;
  }

  private evict(now: number): void {
    const cutoff = now - this.periodMs;
    while (this.head < this.times.length && (this.times[this.head] ?? Infinity) <= cutoff) {
      this.inWindow -= this.counts[this.head] ?? 0;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.counts = this.counts.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * Limiters shared by key, so pipelines that name the same `key` share one limit in a process.
 * A key reused with different numbers keeps the first ones; that is reported as an error.
 */
export class LimiterRegistry {
  private readonly limiters = new Map<string, SlidingWindowLimiter>();

  /** The limiter of `key`, if one was created. */
  find(key: string): SlidingWindowLimiter | undefined {
    return this.limiters.get(key);
  }

  get(key: string, config: SlidingWindowConfig): SlidingWindowLimiter {
    const existing = this.limiters.get(key);
    if (existing) {
      if (existing.allowed !== config.allowed || existing.periodMs !== config.periodMs) {
        throw new InvalidArgumentError(
          `rate limit "${key}" is already ${existing.allowed}/${existing.periodMs} ms; ` +
            `cannot reuse it as ${config.allowed}/${config.periodMs} ms`,
        );
      }
      return existing;
    }
    const limiter = new SlidingWindowLimiter(config);
    this.limiters.set(key, limiter);
    return limiter;
  }
}

/**
 * The most times that fall in any window `[t, t + periodMs)`: what a limit of `allowed` per
 * `periodMs` promises to keep at or under `allowed`. Use it to check start times a run recorded.
 *
 * ## Example
 * ```ts
 * maxInAnyWindow([0, 999, 1000, 1001, 1998], 1000); // 4: the window [999, 1999)
 * ```
 */
export function maxInAnyWindow(times: readonly number[], periodMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let end = 0;
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i] as number;
    while (end < sorted.length && (sorted[end] as number) < start + periodMs) end++;
    best = Math.max(best, end - i);
  }
  return best;
}

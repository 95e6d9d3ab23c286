import { InvalidArgumentError } from '../model/errors';

export interface SlidingWindowConfig {
  /** Units allowed in any window of `periodMs`. */
  readonly allowed: number;
  readonly periodMs: number;
}

/**
 * How long the widest margin a caller asked for (`RateLimitSpec.marginMs`) holds for every caller
 * of a limit key: the window each placement checks is widened to it, so units of callers whose work
 * runs early keep clear of units of callers whose work runs late. The Redis store keeps the same.
 */
export const MARGIN_HOLD_MS = 10_000;

/** Units recorded at one time (the store's clock). */
export interface Slot {
  readonly at: number;
  readonly units: number;
}

/** The answer of {@link SlidingWindowLimiter.plan}: slots in time order. */
export interface SlotPlan {
  readonly slots: readonly Slot[];
  readonly granted: number;
  /** Set when short: how much later `latest` would have to be for one more unit. */
  readonly retryAfterMs?: number;
}

/** Items placed at one time, and the units they take. */
export interface ItemSlot {
  readonly at: number;
  readonly items: number;
  readonly units: number;
}

/** The answer of {@link SlidingWindowLimiter.planAll}: slots in time order. */
export interface ItemPlan {
  readonly slots: readonly ItemSlot[];
  readonly granted: number;
  readonly retryAfterMs?: number;
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
  allowed: number;
  periodMs: number;
  /** Entries are kept this long: the longest window in use since the log was last empty. */
  private keepMs: number;
  // Log entries oldest first: times[i] holds counts[i] units. `head` skips expired entries without shifting.
  private times: number[] = [];
  private counts: number[] = [];
  private head = 0;
  private inWindow = 0;
  /** No unit is placed before this time (a provider asked to slow down). */
  pausedUntil = -Infinity;
  private heldMargin = 0;
  private heldAt = -Infinity;
  private heldAhead = 0;
  private heldAheadAt = -Infinity;

  constructor(config: SlidingWindowConfig) {
    if (!Number.isInteger(config.allowed) || config.allowed < 1) {
      throw new InvalidArgumentError(`allowed must be an integer ≥ 1, got ${String(config.allowed)}`);
    }
    if (!Number.isFinite(config.periodMs) || config.periodMs <= 0) {
      throw new InvalidArgumentError(`periodMs must be > 0, got ${String(config.periodMs)}`);
    }
    this.allowed = config.allowed;
    this.periodMs = config.periodMs;
    this.keepMs = config.periodMs;
  }

  /**
   * Takes other numbers from now on (a limit changed at runtime, or a rolling deploy where old and
   * new workers ask with different numbers: each placement checks the numbers it is given). The log
   * keeps its entries for the longest window in use, so a longer window never misses one.
   */
  reconfigure(config: SlidingWindowConfig): void {
    if (config.allowed === this.allowed && config.periodMs === this.periodMs) return;
    const check = new SlidingWindowLimiter(config); // validates
    this.allowed = check.allowed;
    this.periodMs = check.periodMs;
    this.keepMs = Math.max(this.keepMs, check.periodMs);
  }

  /**
   * A caller asks for a margin of `own` ms at `now`, for a limit of `baseMs` (its window without a
   * margin): returns the margin to widen its window by, the widest any caller asked for in the last
   * {@link MARGIN_HOLD_MS} plus `baseMs`. A unit may start as late after its slot as the margin its
   * caller asked for, so every unit placed within a window (and a lead) of it is placed with that
   * margin or a wider one.
   */
  holdMargin(own: number, now: number, baseMs = 0): number {
    if (own >= this.heldMargin || now - this.heldAt > MARGIN_HOLD_MS + baseMs) {
      this.heldMargin = own;
      this.heldAt = now;
    }
    return Math.max(own, this.heldMargin);
  }

  /**
   * A caller places slots up to `own` ms after `now`: returns how far ahead it may place them, the
   * furthest any caller asked for in the last {@link MARGIN_HOLD_MS}. A caller whose answers come
   * quickly looks less far ahead; without this, callers looking further would take every unit of
   * capacity before it came within its reach, and it would never be granted one.
   */
  holdAhead(own: number, now: number): number {
    if (own >= this.heldAhead || now - this.heldAheadAt > MARGIN_HOLD_MS) {
      this.heldAhead = own;
      this.heldAheadAt = now;
    }
    return Math.max(own, this.heldAhead);
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
    const plan = this.plan(want, now, now, now);
    this.commit(plan);
    return plan.retryAfterMs === undefined
      ? { granted: plan.granted }
      : { granted: plan.granted, retryAfterMs: plan.retryAfterMs };
  }

  /** Records `units` at `now` without checking (the caller checked `available`; `now` not before the newest entry). */
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
   * Where `units` would be recorded from `earliest` on, without recording them: each unit at the
   * earliest time `t ≥ earliest` (and not before the newest entry, so the log stays in time order)
   * at which the window `(t − periodMs, t]` has room for it, none later than `latest`. With
   * `together`, all units go to one time or none does. Record a plan with `commit`.
   *
   * Slots lie in the future when the window is full now: a caller that starts work exactly at its
   * slot (not before, and within a fixed margin after) keeps the limit by start time too.
   * `retryAfterMs`, set when the plan is short, is how much later `latest` would have to be for
   * one more unit.
   */
  plan(units: number, now: number, earliest: number, latest: number, together = false): SlotPlan {
    const want = Math.max(0, Math.floor(units));
    const plan = SlidingWindowLimiter.planAll([this], want, undefined, now, earliest, latest, together);
    return {
      slots: plan.slots.map((s) => ({ at: s.at, units: s.units })),
      granted: plan.granted,
      ...(plan.retryAfterMs === undefined ? {} : { retryAfterMs: plan.retryAfterMs }),
    };
  }

  /**
   * {@link plan} across several limits (a pipeline's 400 per second and 50,000 per day): `count`
   * items, item i taking `sizes[i]` units (default one each), all of an item's units at one time,
   * placed only where every limiter has room, at the same times. Returns the items and units of each
   * slot; record with {@link commitAll}. With `perMs` (not `together`), a slot takes at most that
   * many units (an item bigger than that alone) and the next one is a millisecond or more later
   * (`ReserveOptions.limitSpread`, {@link spreadPerMs}).
   */
  static planAll(
    limiters: readonly SlidingWindowLimiter[],
    count: number,
    sizes: readonly number[] | undefined,
    now: number,
    earliest: number,
    latest: number,
    together = false,
    perMs?: number,
  ): ItemPlan {
    const slots: ItemSlot[] = [];
    const sizeOf = (i: number): number => (sizes ? (sizes[i] ?? 1) : 1);
    let total = 0;
    if (together) for (let i = 0; i < count; i++) total += sizeOf(i);
    let at = earliest;
    const state = limiters.map((l) => {
      l.evict(now);
      at = Math.max(
        at,
        l.pausedUntil,
        l.times.length > l.head ? (l.times[l.times.length - 1] as number) : -Infinity,
      );
      return { l, k: l.head, inWindow: l.inWindow, logged: l.times.length };
    });
    for (const { l } of state) {
      if (together && total > l.allowed) return { slots, granted: 0, retryAfterMs: l.periodMs };
    }
    // Entry i of a log: the log's own below `logged`, then the plan's slots.
    const timeOf = (s: (typeof state)[number], i: number): number =>
      i < s.logged ? (s.l.times[i] as number) : (slots[i - s.logged] as ItemSlot).at;
    const unitsOf = (s: (typeof state)[number], i: number): number =>
      i < s.logged ? (s.l.counts[i] as number) : (slots[i - s.logged] as ItemSlot).units;
    let granted = 0;
    while (granted < count) {
      const need = together ? total : sizeOf(granted);
      let later: number | undefined;
      let fit = Infinity;
      for (const s of state) {
        if (need > s.l.allowed) return { slots, granted, retryAfterMs: s.l.periodMs };
        const size = s.logged + slots.length;
        while (s.k < size && timeOf(s, s.k) <= at - s.l.periodMs) s.inWindow -= unitsOf(s, s.k++);
        const room = s.l.allowed - s.inWindow;
        if (room < need) {
          const t = timeOf(s, s.k) + s.l.periodMs; // when the oldest entry still in the window leaves it
          later = later === undefined ? t : Math.max(later, t);
        } else fit = Math.min(fit, room);
      }
      if (later !== undefined) {
        at = later;
        continue;
      }
      if (at > latest) break;
      let items = count;
      let units = total;
      if (!together) {
        if (perMs !== undefined && perMs < fit) fit = Math.max(perMs, sizeOf(granted));
        items = 0;
        units = 0;
        while (granted + items < count && units + sizeOf(granted + items) <= fit)
          units += sizeOf(granted + items++);
      }
      const last = slots[slots.length - 1];
      if (last && last.at === at)
        slots[slots.length - 1] = { at, items: last.items + items, units: last.units + units };
      else slots.push({ at, items, units });
      for (const s of state) s.inWindow += units;
      granted += items;
      if (perMs !== undefined && !together) at += 1;
    }
    if (granted < count) return { slots, granted, retryAfterMs: Math.max(1, at - latest) };
    return { slots, granted };
  }

  /**
   * Records the first `items` items of a {@link planAll} plan (made just now, nothing recorded since)
   * in every limiter; returns the times and items recorded.
   */
  static commitAll(
    limiters: readonly SlidingWindowLimiter[],
    plan: ItemPlan,
    items: number,
    sizes?: readonly number[],
  ): { at: number; items: number }[] {
    const recorded: { at: number; items: number }[] = [];
    let left = items;
    let first = 0;
    for (const slot of plan.slots) {
      if (left <= 0) break;
      const take = Math.min(left, slot.items);
      let units = take;
      if (sizes) {
        units = 0;
        for (let j = first; j < first + take; j++) units += sizes[j] ?? 1;
      }
      for (const l of limiters) l.record(units, slot.at);
      recorded.push({ at: slot.at, items: take });
      first += slot.items;
      left -= take;
    }
    return recorded;
  }

  /** Records the first `units` units of `plan` (made just now, with nothing recorded since). */
  commit(plan: SlotPlan, units = plan.granted): void {
    let left = units;
    for (const slot of plan.slots) {
      if (left <= 0) break;
      const take = Math.min(left, slot.units);
      this.record(take, slot.at);
      left -= take;
    }
  }

  /**
   * Moves `units` granted at `from` (work that did not start within its margin) to one slot at or
   * after `earliest`: at `earliest` itself, among later entries, where {@link moveInPlace} finds
   * that safe; else removes them from `from` (if still in the log) and records them together at the
   * first time the window has room for all of them. Always safe: the units leave a time no work
   * started at, and their new slot keeps every window within the limit. Returns the slot.
   */
  move(units: number, from: number, now: number, earliest = now): Slot {
    const at = Math.max(earliest, this.pausedUntil);
    const n = Math.min(units, this.allowed);
    if (SlidingWindowLimiter.moveInPlace([this], n, from, at, now)) return { at, units: n };
    this.refund(units, from);
    const plan = this.plan(Math.min(units, this.allowed), now, earliest, Infinity, true);
    this.commit(plan);
    return plan.slots[0] ?? { at: earliest, units: 0 };
  }

  /**
   * Moves `units` recorded at `from` to `at` (not before `from`) in every limiter, in place: among
   * later entries if need be, so a late unit's new slot need not wait behind every slot already
   * granted. Done only where it surely keeps every window within its limit, checked in each log:
   * the log holds at least `units` at `from`, and at most `allowed − units` after `from`. Why that
   * suffices: a window holding the new time and ending less than a period after `from` holds `from`
   * too, and loses the units it gains; one ending later holds only units recorded after `from`, and
   * the moved ones. Returns false, changing nothing, where that does not hold (then refund and
   * plan anew). Costs the entries after `from`: a window's worth at most.
   */
  static moveInPlace(
    limiters: readonly SlidingWindowLimiter[],
    units: number,
    from: number,
    at: number,
    now: number,
  ): boolean {
    if (!(at >= from) || !(units > 0)) return false;
    const found: number[] = [];
    for (const l of limiters) {
      l.evict(now);
      let after = 0;
      let index = -1;
      for (let i = l.times.length - 1; i >= l.head; i--) {
        const t = l.times[i] as number;
        if (t <= from) {
          if (t === from) index = i;
          break;
        }
        after += l.counts[i] as number;
        if (after + units > l.allowed) return false;
      }
      if (index < 0 || (l.counts[index] as number) < units) return false;
      found.push(index);
    }
    limiters.forEach((l, j) => {
      const index = found[j] as number;
      l.counts[index] = (l.counts[index] as number) - units;
      let i = l.times.length;
      while (i > l.head && (l.times[i - 1] as number) > at) i--;
      if (i > l.head && l.times[i - 1] === at) l.counts[i - 1] = (l.counts[i - 1] as number) + units;
      else {
        l.times.splice(i, 0, at);
        l.counts.splice(i, 0, units);
      }
    });
    return true;
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
    const cutoff = now - this.keepMs;
    while (this.head < this.times.length && (this.times[this.head] ?? Infinity) <= cutoff) {
      this.inWindow -= this.counts[this.head] ?? 0;
      this.head++;
    }
    if (this.head >= this.times.length) this.keepMs = this.periodMs;
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

  /** The limiter of `key` with these numbers from now on (see {@link SlidingWindowLimiter.reconfigure}). */
  use(key: string, config: SlidingWindowConfig): SlidingWindowLimiter {
    const existing = this.limiters.get(key);
    if (existing) {
      existing.reconfigure(config);
      return existing;
    }
    const limiter = new SlidingWindowLimiter(config);
    this.limiters.set(key, limiter);
    return limiter;
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

/**
 * Units a spread reserve places at one millisecond (`ReserveOptions.limitSpread`): the tightest
 * limit's rate per millisecond, rounded up (one for any limit up to 1,000 a second).
 */
export function spreadPerMs(limiters: readonly { allowed: number; periodMs: number }[]): number {
  let rate = Infinity;
  for (const l of limiters) rate = Math.min(rate, l.allowed / l.periodMs);
  return Math.max(1, Math.ceil(rate));
}

/**
 * Maps the store's clock onto the worker's, from the reserve calls the worker makes anyway, so that a
 * handler can start a fixed delay after the moment the store counted it against a rate limit.
 *
 * A reserve sent at local time `sent` and answered at `received` was stamped by the store at `at`
 * (its own clock) somewhere in between. Each call therefore bounds the offset between the two
 * clocks: `at − received ≤ offset ≤ at − sent` (widened by a millisecond for the store's whole
 * milliseconds, and by another when the local readings are whole milliseconds too). Two
 * intersections of those bounds are kept, and the bounds are where both agree:
 *
 * - the recent calls' (the last 64), taken as they are: on a quiet link as tight as the fastest
 *   recent round trip, however slow the others were;
 * - every call's since the clocks last disagreed, each widened by how far the two clocks may have
 *   drifted apart since it was made (`driftPpm`, 500 parts per million by default: the most ntpd
 *   slews a clock by; clocks kept by NTP run far closer, and a quartz clock left to itself is off
 *   by up to about 100). So one quick round trip keeps the bounds narrow through a stretch of
 *   slow ones (a loaded machine, where every answer waits for its process to be scheduled): from
 *   1 ms wide they take 7 s to pass 8 ms.
 *
 * A call whose bounds no longer meet the recent ones (a clock was stepped) starts both afresh; one
 * that no longer meets the older calls' (the clocks drifted apart faster than allowed) starts those
 * afresh.
 *
 * Why not the send time: the store may stamp a call anywhere in its round trip (a busy server
 * queues it), so starts timed from the send drift from their grants by up to a round trip, and a
 * provider could see more starts in one window than the limit allowed.
 *
 * ## Example
 * ```ts
 * const clock = new LeaseClock();
 * clock.observe(sentAt, receivedAt, reply.now);     // each store call
 * const [earliest, latest] = clock.bounds(slot);    // where store time `slot` falls locally
 * ```
 */
export class LeaseClock {
  private readonly lows: number[] = [];
  private readonly highs: number[] = [];
  private next = 0;
  private offset = 0;
  /** The recent calls' bounds on the offset (`store − local`). */
  private low = -Infinity;
  private high = Infinity;
  /** How far apart the two clocks may drift, in ms per ms. */
  private readonly drift: number;
  /** Local time the older calls' bounds are kept at (the first call since they started afresh). */
  private base = Number.NaN;
  /**
   * The older calls' bounds, each call's moved to `base` as if made then: at local time `t` they are
   * `[longLow − drift·(t − base), longHigh + drift·(t − base)]`.
   */
  private longLow = -Infinity;
  private longHigh = Infinity;
  /** Local time of the newest call. */
  private last = -Infinity;

  constructor(
    private readonly size = 64,
    options: { readonly driftPpm?: number } = {},
  ) {
    this.drift = (options.driftPpm ?? 500) / 1e6;
  }

  /** One call: sent and answered on the local clock, stamped `storeAt` on the store's clock (ms). */
  observe(sentAt: number, receivedAt: number, storeAt: number): void {
    const trip = receivedAt - sentAt;
    if (!Number.isFinite(trip) || trip < 0 || !Number.isFinite(storeAt)) return;
    // The store's clock reads whole milliseconds; the local one too when its readings are integers.
    const slop = localSlop(sentAt, receivedAt);
    const low = storeAt - receivedAt - slop;
    const high = storeAt - sentAt + 1;
    if (this.lows.length < this.size) {
      this.lows.push(low);
      this.highs.push(high);
    } else {
      this.lows[this.next] = low;
      this.highs[this.next] = high;
    }
    this.next = (this.next + 1) % this.size;
    let lo = -Infinity;
    let hi = Infinity;
    for (let i = 0; i < this.lows.length; i++) {
      lo = Math.max(lo, this.lows[i] as number);
      hi = Math.min(hi, this.highs[i] as number);
    }
    if (lo > hi) {
      // The clocks moved against each other: only the newest call is still true.
      this.lows.length = this.highs.length = 0;
      this.next = 0;
      this.base = Number.NaN;
      this.observe(sentAt, receivedAt, storeAt);
      return;
    }
    this.low = lo;
    this.high = hi;
    this.last = Math.max(this.last, receivedAt);
    // The older calls': this one's bounds moved to `base` (a call's bounds hold from its send, so
    // it is widened from then).
    if (Number.isNaN(this.base)) this.restartLong(sentAt, low, high);
    else {
      const age = sentAt - this.base;
      this.longLow = Math.max(this.longLow, low + this.drift * age);
      this.longHigh = Math.min(this.longHigh, high - this.drift * age);
    }
    let [l, h] = this.offsetBounds(this.last);
    if (l > h) {
      // They no longer meet the recent calls' (the clocks drifted apart faster than allowed): the
      // older calls start afresh from this one.
      this.restartLong(sentAt, low, high);
      [l, h] = this.offsetBounds(this.last);
    }
    this.offset = (l + h) / 2;
  }

  private restartLong(at: number, low: number, high: number): void {
    this.base = at;
    this.longLow = low;
    this.longHigh = high;
  }

  /** The bounds on the offset at local time `t`: the recent calls' and the older calls' widened to `t`. */
  private offsetBounds(t: number): readonly [number, number] {
    if (Number.isNaN(this.base)) return [this.low, this.high];
    const widen = this.drift * Math.max(0, t - this.base);
    return [Math.max(this.low, this.longLow - widen), Math.min(this.high, this.longHigh + widen)];
  }

  /** The store time of local time `localMs` (the best estimate). */
  toStore(localMs: number): number {
    return localMs + this.offset;
  }

  /** The local time of store time `storeMs` (the same value until a call has been observed). */
  toLocal(storeMs: number): number {
    return storeMs - this.offset;
  }

  /**
   * The local times store time `storeMs` may have been, as far as the calls seen so far tell:
   * `[earliest, latest]` (unbounded until a call has been observed). The older calls' bounds are
   * widened to that time (to the newest call's, if it is earlier).
   */
  bounds(storeMs: number): readonly [number, number] {
    const [low, high] = this.offsetBounds(Math.max(this.last, storeMs - this.offset));
    return [storeMs - high, storeMs - low];
  }
}

/** How much a local reading may trail the true time: 1 ms for whole-millisecond readings, else 0. */
export function localSlop(...readings: number[]): number {
  return readings.every((r) => Number.isInteger(r)) ? 1 : 0;
}

/**
 * `scheduler.now()`, refined to a fraction of a millisecond with `performance.now()` when the
 * scheduler runs on the wall clock (not under a virtual-time `TestScheduler`, nor after the two
 * clocks drifted apart).
 */
export function preciseNow(scheduler: { now(): number }): () => number {
  return () => {
    const coarse = scheduler.now();
    const fine = performance.timeOrigin + performance.now();
    return Math.abs(fine - coarse) < 2 ? fine : coarse;
  };
}

/**
 * Maps the store's clock onto the worker's, from the reserve calls the worker makes anyway, so that a
 * handler can start a fixed delay after the moment the store counted it against a rate limit.
 *
 * A reserve sent at local time `sent` and answered at `received` was stamped by the store at `at`
 * (its own clock) somewhere in between. Each call therefore bounds the offset between the two
 * clocks: `at − received ≤ offset ≤ at − sent` (widened by a millisecond for the store's whole
 * milliseconds, and by another when the local readings are whole milliseconds too). The intersection of the recent bounds is kept, and its middle is
 * the estimate: on a quiet link it is as tight as the fastest recent round trip, however slow the
 * others were. Bounds that no longer meet (a clock was stepped) start the intersection afresh.
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
  private low = -Infinity;
  private high = Infinity;

  constructor(private readonly size = 64) {}

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
      this.observe(sentAt, receivedAt, storeAt);
      return;
    }
    this.low = lo;
    this.high = hi;
    this.offset = (lo + hi) / 2;
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
   * `[earliest, latest]` (unbounded until a call has been observed).
   */
  bounds(storeMs: number): readonly [number, number] {
    return [storeMs - this.high, storeMs - this.low];
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

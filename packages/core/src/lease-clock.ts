/**
 * Tells how late a reserved job starts, on the worker's own clock only. The store stamps a grant
 * somewhere between the moment the worker sent the reserve and the moment the reply arrived, so a job
 * starting at `now` is at most `now − sent` after its grant. Part of that is the usual round trip;
 * the rest is time the worker spent stalled (a GC pause, a busy core, a cold start), which the start
 * gate turns into a store call rather than a start the limit did not count.
 *
 * The usual round trip is the smallest of the recent ones. Until a few have been seen it is taken as
 * 0, so the first reservations, when a cold process is slowest, are judged strictly.
 *
 * ## Example
 * ```ts
 * const clock = new LeaseClock();
 * clock.observe(receivedAt - sentAt);               // each reservation's round trip
 * if (clock.lateness(Date.now(), sentAt) > 5) await rebase(job);
 * ```
 */
export class LeaseClock {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(
    private readonly size = 64,
    private readonly warmUp = 4,
  ) {}

  /** One reservation's round trip, in ms. */
  observe(roundTripMs: number): void {
    if (!Number.isFinite(roundTripMs) || roundTripMs < 0) return;
    if (this.samples.length < this.size) this.samples.push(roundTripMs);
    else this.samples[this.next] = roundTripMs;
    this.next = (this.next + 1) % this.size;
  }

  /** The usual round trip: the smallest recent one, or 0 until a few have been seen. */
  usualRoundTrip(): number {
    return this.samples.length < this.warmUp ? 0 : Math.min(...this.samples);
  }

  /** How late (ms) a start at `now` is for a job whose reserve was sent at `sentAt`. */
  lateness(now: number, sentAt: number): number {
    return Math.max(0, now - sentAt - this.usualRoundTrip());
  }
}

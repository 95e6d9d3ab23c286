import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';

/**
 * A clock you move by hand, usable as a store's scheduler: `now()` returns the manual time, and timers
 * (which a store never sets) fall through to `asyncScheduler`. It lets the store-contract suite jump
 * over lease expiries and delays instead of sleeping.
 *
 * ## Example
 * ```ts
 * const clock = new ManualClock();
 * const store = new MemoryStore({ scheduler: clock });
 * clock.advance(30_000); // every lease of 30 s has now expired
 * ```
 */
export class ManualClock implements SchedulerLike {
  private time: number;

  constructor(start: number = Date.now()) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return asyncScheduler.schedule(work, delay, state);
  }
}

import {
  asyncScheduler,
  Observable,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  timer,
} from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import { SlidingWindowLimiter } from '../runtime/limiter';

export interface RateLimitConfig {
  /** Units allowed in any window of `periodMs`. Required unless `limiter` is given. */
  readonly allowed?: number;
  readonly periodMs?: number;
  /** A limiter to share with other streams (same key, same limit). Default: a new one. */
  readonly limiter?: SlidingWindowLimiter;
  /** Clock and timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Shapes a stream of demand so that never more than `allowed` units are granted in any window of
 * `periodMs`.
 *
 * Intuition: it sits between whoever asks for work (`request(n)` amounts) and whoever fetches it. It
 * holds back *demand*, never fetched items, so nothing waits on a lease while the limit is spent.
 *
 * ```
 * requests:  -5--------3-|       allowed 4 per 10 frames
 * rateLimit: -4---------4|       4 at once; the 1 + 3 owed go when the first grants leave the window
 * ```
 *
 * Each request is added to what is owed; as much as the window allows is granted at once, and a
 * timer wakes the operator exactly when the oldest grant leaves the window. When the requests
 * complete, what is still owed is granted as the window allows, then the output completes. Errors
 * pass through at once.
 *
 * A pipeline's distributed limit lives in the store (checked in the same atomic step as the reserve);
 * this operator is the in-process form, for limits that are per node, or for any demand-driven source.
 *
 * ## Example
 * ```ts
 * const demand = new Demand({ initial: 0 });
 * requests$.pipe(rateLimit({ allowed: 30, periodMs: 60_000 })).subscribe((n) => fetchUpTo(n));
 * ```
 */
export function rateLimit(config: RateLimitConfig): OperatorFunction<number, number> {
  const scheduler = config.scheduler ?? asyncScheduler;
  const shared = config.limiter;
  if (!shared && (config.allowed === undefined || config.periodMs === undefined)) {
    throw new InvalidArgumentError('rateLimit needs `allowed` and `periodMs`, or a `limiter`');
  }
  return (requests) =>
    new Observable<number>((subscriber) => {
      const limiter =
        shared ?? new SlidingWindowLimiter({ allowed: config.allowed ?? 0, periodMs: config.periodMs ?? 0 });
      let owed = 0;
      let done = false;
      let wake: Subscription | undefined;

      const grant = (): void => {
        wake?.unsubscribe();
        wake = undefined;
        if (owed > 0) {
          const { granted, retryAfterMs } = limiter.acquire(owed, scheduler.now());
          owed -= granted;
          if (granted > 0) subscriber.next(granted);
          if (owed > 0) {
            wake = timer(Math.max(retryAfterMs ?? 1, 1), scheduler).subscribe(grant);
            return;
          }
        }
        if (done) subscriber.complete();
      };

      const upstream = requests.subscribe({
        next: (n) => {
          if (!Number.isFinite(n) || n <= 0) return;
          owed += n;
          if (!wake) grant();
        },
        error: (err: unknown) => {
          subscriber.error(err);
        },
        complete: () => {
          done = true;
          if (!wake) grant();
        },
      });

      return () => {
        upstream.unsubscribe();
        wake?.unsubscribe();
      };
    });
}

import { AsyncSubject, Observable, Subscription, asapScheduler, from } from 'rxjs';
import type { MonoTypeOperatorFunction, ObservableInput, SchedulerLike, SubscriptionLike } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import { Fifo } from '../util/fifo';

/** Which item a {@link FanOutSubscriber} loses when an item arrives while its buffer is full. */
export type FanOutOverflow = 'drop-oldest' | 'drop-newest';

const FAN_OUT_OVERFLOWS: readonly FanOutOverflow[] = ['drop-oldest', 'drop-newest'];

/** Configuration of {@link fanOut}. */
export interface FanOutConfig {
  /**
   * Scheduler on which a subscriber's consumer is called for an item offered by the primary path,
   * so that the consumer never runs on the primary path's call stack. Default: `asapScheduler`
   * (a microtask: this is a hop off the stack, not a delay).
   */
  readonly scheduler?: SchedulerLike;
}

/** Configuration of one subscriber, given to {@link FanOut.attach}. */
export interface FanOutSubscriberConfig {
  /**
   * The most items waiting for this subscriber's consumer, not counting the one it is working on.
   * A positive integer; required.
   */
  readonly bufferSize: number;
  /**
   * What to lose when an item arrives while `bufferSize` items wait; required.
   * `'drop-oldest'` drops the oldest waiting item (the subscriber sees the newest items: live
   * dashboards); `'drop-newest'` drops the arriving item (the subscriber sees a contiguous prefix).
   */
  readonly overflow: FanOutOverflow;
  /** A name for logs and dashboards. Default: `subscriber-<n>`, numbered from 1 per fan-out. */
  readonly name?: string;
}

/** Live counters of one {@link FanOutSubscriber}. */
export interface FanOutStats {
  /** Items whose consumer completed. */
  readonly delivered: number;
  /** Items whose consumer errored or threw. */
  readonly failed: number;
  /** Items lost to `overflow`. */
  readonly dropped: number;
  /** Items waiting now, not counting the one being consumed. Never above `bufferSize`. */
  readonly buffered: number;
  /** The highest `buffered` so far. */
  readonly maxBuffered: number;
  /** Whether the consumer is working on an item now. */
  readonly consuming: boolean;
}

/** One attached consumer with its own bounded buffer. Returned by {@link FanOut.attach}. */
export interface FanOutSubscriber extends SubscriptionLike {
  readonly name: string;
  /** A snapshot of the subscriber's counters, taken when read. */
  readonly stats: FanOutStats;
  /**
   * Emits the final stats once, then completes, when the subscriber has finished: it drained its
   * buffer after the fan-out ended, or it was detached. Replays to late subscribers.
   */
  readonly done$: Observable<FanOutStats>;
  /** True once the subscriber has finished. */
  readonly closed: boolean;
  /**
   * Stops the subscriber now: unsubscribes the consumer's current item, discards the waiting ones
   * and detaches from the fan-out. Idempotent.
   */
  detach(): void;
  /** Same as {@link FanOutSubscriber.detach}, so a subscriber can be added to a `Subscription`. */
  unsubscribe(): void;
}

/** A primary path that feeds any number of slow, lossy subscribers. Created by {@link fanOut}. */
export interface FanOut<T = unknown> {
  /**
   * The operator to place in the primary path. It passes every item through unchanged and offers a
   * copy to every attached subscriber. The first `complete` or `error` through it ends the fan-out.
   */
  readonly tap: MonoTypeOperatorFunction<T>;
  /**
   * Attaches a consumer with its own bounded buffer. It receives the items offered after it was
   * attached, one at a time: `consumer(item)` is subscribed and the next item waits until it
   * completes or errors. Attached after the fan-out ended, it finishes at once.
   * Throws {@link InvalidArgumentError} for an invalid config.
   */
  attach(consumer: (item: T) => ObservableInput<unknown>, config: FanOutSubscriberConfig): FanOutSubscriber;
  /** The subscribers attached and not yet finished. */
  readonly subscribers: readonly FanOutSubscriber[];
  /** True once the fan-out has ended. */
  readonly ended: boolean;
  /**
   * Ends the fan-out without waiting for the primary path to complete, e.g. when the primary is
   * unsubscribed on shutdown. Subscribers drain what they hold, then finish; items still flowing
   * through `tap` pass on but are no longer offered. Idempotent.
   */
  end(): void;
}

/** A subscriber as the fan-out drives it. */
interface Attached<T> {
  readonly handle: FanOutSubscriber;
  offer(item: T): void;
  end(): void;
}

/**
 * Splits one stream into a primary path that sees every item with its backpressure intact, and any
 * number of subscribers that each get a bounded buffer and lose items rather than slow it down.
 *
 * The primary path (say, the database writer) is the river; subscribers (say, websocket clients)
 * are buckets dipped into it: a slow bucket overflows, it never dams the river. Offering an item to
 * a subscriber is O(1) and never waits — its consumer runs later, on `scheduler`, one item at a
 * time — so the primary path's pace is set by the primary path alone.
 *
 * ```text
 * const fan = fanOut<string>();
 * const subscriber = fan.attach(consumer, { bufferSize: 2, overflow: 'drop-oldest' });
 * // ...where each consumer call takes 5 frames.
 *
 * source:               -abcde|
 * source.pipe(fan.tap): -abcde|             every item, unchanged, at once
 * consumer called with: -a----d----e----
 * subscriber.done$:     ----------------(s|)
 *
 * b and c are dropped while a is consumed; s = { delivered: 3, failed: 0, dropped: 2,
 * buffered: 0, maxBuffered: 2, consuming: false }
 * ```
 *
 * - `scheduler` (default `asapScheduler`): where consumers are called for offered items, so they
 *   never run on the primary path's call stack.
 *
 * Each subscriber is configured by {@link FanOut.attach}: `bufferSize` (required) bounds its waiting
 * items, `overflow` (required) picks `'drop-oldest'` or `'drop-newest'`, `name` (default
 * `subscriber-<n>`) labels it. Its `stats` count `delivered`, `failed` and `dropped` items, the
 * current and highest `buffered` counts; `done$` tells when it has finished.
 *
 * A consumer that errors or throws only counts the item as `failed` and moves to the next one: the
 * primary path and the other subscribers never see it. A consumer that never completes stalls its
 * own subscriber only (its buffer keeps dropping); add a `timeout` inside the consumer if needed.
 *
 * When the primary path completes or errors (or {@link FanOut.end} is called) the fan-out ends:
 * every subscriber drains what it holds, then finishes and emits on `done$`. Unsubscribing the
 * primary path does not end the fan-out, so it may be subscribed again (e.g. by `repeat`).
 *
 * ## Example
 *
 * ```ts
 * import { concatMap, interval, map, take, timer } from 'rxjs';
 * import { fanOut } from '@sluice/core';
 *
 * interface Reading {
 *   readonly sensor: string;
 *   readonly value: number;
 * }
 *
 * // Stand-ins: a database insert taking 10 ms and a browser on a slow link taking 50 ms a message.
 * const insert = (reading: Reading) => timer(10).pipe(map(() => reading));
 * const sendToBrowser = (_reading: Reading) => timer(50);
 *
 * const readings = fanOut<Reading>();
 * const browser = readings.attach(sendToBrowser, {
 *   bufferSize: 100,
 *   overflow: 'drop-oldest',
 *   name: 'browser-1',
 * });
 * browser.done$.subscribe((stats) => {
 *   console.log(`${browser.name}: ${stats.delivered} sent, ${stats.dropped} dropped`);
 * });
 *
 * interval(5)
 *   .pipe(
 *     take(1_000),
 *     map((i): Reading => ({ sensor: 's1', value: i })),
 *     readings.tap,
 *     concatMap(insert), // the database receives every reading, in order, at its own pace
 *   )
 *   .subscribe({ complete: () => console.log('all readings stored') });
 * ```
 */
export function fanOut<T = unknown>(config: FanOutConfig = {}): FanOut<T> {
  const { scheduler = asapScheduler } = config;
  const attached = new Set<Attached<T>>();
  let ended = false;
  let attachedCount = 0;

  function end(): void {
    if (ended) return;
    ended = true;
    for (const entry of attached) entry.end();
  }

  const tap: MonoTypeOperatorFunction<T> = (source) =>
    new Observable<T>((subscriber) =>
      source.subscribe({
        next(item) {
          // Offer before passing the item on: if the primary's downstream synchronously makes the
          // source emit again, subscribers still receive the items in source order.
          if (!ended) {
            for (const entry of attached) entry.offer(item);
          }
          subscriber.next(item);
        },
        error(err: unknown) {
          end();
          subscriber.error(err);
        },
        complete() {
          end();
          subscriber.complete();
        },
      }),
    );

  function attach(
    consumer: (item: T) => ObservableInput<unknown>,
    subscriberConfig: FanOutSubscriberConfig,
  ): FanOutSubscriber {
    const { bufferSize, overflow, name = `subscriber-${attachedCount + 1}` } = subscriberConfig;
    if (typeof consumer !== 'function') {
      throw new InvalidArgumentError('fanOut.attach: consumer must be a function');
    }
    if (!Number.isInteger(bufferSize) || bufferSize < 1) {
      throw new InvalidArgumentError(
        `fanOut.attach: bufferSize must be a positive integer, got ${String(bufferSize)}`,
      );
    }
    if (!FAN_OUT_OVERFLOWS.includes(overflow)) {
      throw new InvalidArgumentError(
        `fanOut.attach: overflow must be one of ${FAN_OUT_OVERFLOWS.join(', ')}, got ${JSON.stringify(overflow)}`,
      );
    }
    if (typeof name !== 'string' || name === '') {
      throw new InvalidArgumentError('fanOut.attach: name must be a non-empty string');
    }
    attachedCount += 1;
    const entry: Attached<T> = createSubscriber(consumer, bufferSize, overflow, name, scheduler, () => {
      attached.delete(entry);
    });
    attached.add(entry);
    if (ended) entry.end();
    return entry.handle;
  }

  return {
    tap,
    attach,
    get subscribers() {
      return Array.from(attached, (entry) => entry.handle);
    },
    get ended() {
      return ended;
    },
    end,
  };
}

function createSubscriber<T>(
  consumer: (item: T) => ObservableInput<unknown>,
  bufferSize: number,
  overflow: FanOutOverflow,
  name: string,
  scheduler: SchedulerLike,
  onFinished: () => void,
): Attached<T> {
  /** Items waiting for the consumer, oldest first; never longer than `bufferSize`. */
  const buffer = new Fifo<T>();
  let delivered = 0;
  let failed = 0;
  let dropped = 0;
  let maxBuffered = 0;
  /** True while the consumer works on an item; `current` is its subscription if it is asynchronous. */
  let busy = false;
  let current: Subscription | undefined;
  /** The scheduled call to `drain`, if one is pending. */
  let kick: Subscription | undefined;
  /** The fan-out has ended: finish once the buffer is drained. */
  let ending = false;
  let finished = false;
  /** True while `drain` runs; re-entrant calls leave the work to its loop. */
  let draining = false;
  const done = new AsyncSubject<FanOutStats>();

  function snapshot(): FanOutStats {
    return { delivered, failed, dropped, buffered: buffer.length, maxBuffered, consuming: busy };
  }

  /** Makes sure `drain` runs soon, off the caller's stack, unless the consumer is busy (it drains when it settles). */
  function scheduleDrain(): void {
    if (finished || busy || kick !== undefined) return;
    // The handle is stored before scheduling: a synchronous scheduler runs the work (which clears
    // `kick`) before `schedule` returns, and must not leave a spent subscription in `kick`.
    const handle = new Subscription();
    kick = handle;
    handle.add(
      scheduler.schedule(() => {
        if (kick === handle) kick = undefined;
        drain();
      }),
    );
  }

  /**
   * Feeds waiting items to the consumer one at a time, and finishes once the buffer is empty after
   * the fan-out ended. A consumer that settles synchronously calls `drain` again from inside
   * `consume`; the guard turns that recursion into further turns of this loop.
   */
  function drain(): void {
    if (draining) return;
    draining = true;
    while (!finished && !busy) {
      if (buffer.length === 0) {
        if (ending) finish();
        break;
      }
      consume(buffer.shift()); // non-empty, checked above
    }
    draining = false;
  }

  function consume(item: T): void {
    busy = true;
    let work: Observable<unknown>;
    try {
      // `from` throws for a value that is not an ObservableInput: count it as a failure too.
      work = from(consumer(item));
    } catch {
      settle(undefined, false);
      return;
    }
    // As in `scheduleDrain`, the handle exists before `subscribe`: a consumer that settles
    // synchronously has already cleared `current` (and may have started the next item) by the time
    // `subscribe` returns.
    const handle = new Subscription();
    current = handle;
    handle.add(
      work.subscribe({
        error: () => {
          settle(handle, false);
        },
        complete: () => {
          settle(handle, true);
        },
      }),
    );
  }

  function settle(handle: Subscription | undefined, ok: boolean): void {
    if (current === handle) current = undefined;
    busy = false;
    if (ok) delivered += 1;
    else failed += 1;
    drain();
  }

  function finish(): void {
    if (finished) return;
    finished = true;
    kick?.unsubscribe();
    kick = undefined;
    const inFlight = current;
    current = undefined;
    busy = false;
    buffer.clear();
    inFlight?.unsubscribe();
    onFinished();
    done.next(snapshot());
    done.complete();
  }

  function offer(item: T): void {
    if (finished || ending) return;
    if (buffer.length >= bufferSize) {
      dropped += 1;
      if (overflow === 'drop-newest') return;
      buffer.shift();
    }
    buffer.push(item);
    if (buffer.length > maxBuffered) maxBuffered = buffer.length;
    scheduleDrain();
  }

  function end(): void {
    ending = true;
    scheduleDrain();
  }

  const handle: FanOutSubscriber = {
    name,
    get stats() {
      return snapshot();
    },
    done$: done.asObservable(),
    get closed() {
      return finished;
    },
    detach: finish,
    unsubscribe: finish,
  };

  return { handle, offer, end };
}

import { Observable, Subscription, asyncScheduler, timer } from 'rxjs';
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import { SlotMap } from '../util/slot-map';

/** Configuration of {@link batch}. */
export interface BatchConfig<T = unknown> {
  /** Emit the buffer as soon as it holds this many items. A positive integer; required. */
  readonly size: number;
  /**
   * Emit the buffer this many milliseconds after its first item arrived, even if it is not full.
   * A finite number `>= 0`. Default: none — only `size` and the source's completion flush.
   */
  readonly timeMs?: number;
  /** Scheduler that measures `timeMs`. Default: `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /**
   * Items with different keys never share a batch: each key has a buffer (and a `timeMs` timer) of
   * its own, dropped once flushed, so keys that come and go cost nothing. Default: one buffer.
   */
  readonly key?: (item: T) => unknown;
}

/**
 * Groups items into arrays of at most `size`, emitted when full or `timeMs` after their first item.
 *
 * Think of a bus that leaves when every seat is taken, or when its first passenger has waited
 * `timeMs`, whichever comes first — and that never leaves empty.
 *
 * ```text
 * source:                        -a-b-c-d-----e---------|
 * batch({ size: 3, timeMs: 5 }): -----x------y-----z----|
 *
 * x = [a, b, c]   full
 * y = [d]         5 frames after d entered the empty buffer
 * z = [e]         5 frames after e
 * ```
 *
 * The timer starts when an item enters an *empty* buffer, not on a fixed interval: every item
 * therefore waits at most `timeMs` before it is emitted (bounded latency per item), and a quiet
 * source costs no timers at all. A fixed interval would let an item that arrives just after a tick
 * wait for a whole extra period and would wake up even when there is nothing to emit.
 *
 * - `size` (required): the most items in one batch. When the buffer reaches `size` it is emitted at
 *   once, so a synchronous burst of more than `size` items produces several full batches.
 * - `timeMs` (default: none): the longest an item waits in the buffer. Without it only `size` and the
 *   source's completion flush.
 * - `scheduler` (default `asyncScheduler`): the scheduler `timeMs` is measured on.
 *
 * When the source completes the remaining items are emitted as a last batch, then the output
 * completes. When the source errors the buffer is discarded and the error is forwarded.
 * Unsubscribing cancels the pending timer. Throws {@link InvalidArgumentError} at once for an
 * invalid config.
 *
 * With `key`, every key batches on its own (its own buffer, size and timer): a bus per destination.
 * Buffers are emitted in the order their batches fill or time out; at completion, in the order of
 * their first items.
 *
 * ## Example
 *
 * ```ts
 * import { interval, map, mergeMap, take, timer } from 'rxjs';
 * import { batch } from '@sluice/core';
 *
 * // Stand-in for a bulk insert that takes 20 ms and answers with the number of rows written.
 * const insertMany = (rows: readonly number[]) => timer(20).pipe(map(() => rows.length));
 *
 * // Insert rows 100 at a time, and never keep a row waiting more than 50 ms.
 * interval(5)
 *   .pipe(
 *     take(1_000),
 *     batch({ size: 100, timeMs: 50 }),
 *     mergeMap(insertMany, 1),
 *   )
 *   .subscribe({
 *     next: (written) => console.log(`inserted ${written} rows`),
 *     complete: () => console.log('all rows written'),
 *   });
 * ```
 */
export function batch<T = unknown>(config: BatchConfig<T>): OperatorFunction<T, T[]> {
  const { size, timeMs, scheduler = asyncScheduler, key } = config;
  if (!Number.isInteger(size) || size < 1) {
    throw new InvalidArgumentError(`batch: size must be a positive integer, got ${String(size)}`);
  }
  if (timeMs !== undefined && !(Number.isFinite(timeMs) && timeMs >= 0)) {
    throw new InvalidArgumentError(`batch: timeMs must be a finite number >= 0, got ${String(timeMs)}`);
  }

  if (key !== undefined && typeof key !== 'function') {
    throw new InvalidArgumentError('batch: key must be a function');
  }

  return (source) =>
    new Observable<T[]>((subscriber) => {
      /** One buffer per key (one in all without `key`), never longer than `size`: reaching it flushes. */
      const buffers = new SlotMap<unknown, Bucket<T>>();

      function flush(k: unknown, bucket: Bucket<T>): void {
        bucket.timer?.unsubscribe();
        bucket.timer = undefined;
        // Reset the state before emitting: a downstream consumer may synchronously push more
        // items into the source, and those must start a fresh buffer (and a fresh timer).
        if (buffers.get(k) === bucket) buffers.delete(k);
        if (bucket.items.length > 0) subscriber.next(bucket.items);
      }

      function startTimer(k: unknown, bucket: Bucket<T>, delay: number): void {
        // The handle is stored before `timer` is subscribed: on a synchronous scheduler the timer may
        // fire (and flush, and a re-entrant item may start the next timer) before `subscribe` returns.
        const handle = new Subscription();
        bucket.timer = handle;
        handle.add(
          timer(delay, scheduler).subscribe(() => {
            if (bucket.timer === handle) bucket.timer = undefined;
            flush(k, bucket);
          }),
        );
      }

      function clear(): void {
        for (const bucket of buffers.values()) bucket.timer?.unsubscribe();
        buffers.clear();
      }

      const sourceSubscription = source.subscribe({
        next(item) {
          let k: unknown;
          try {
            k = key ? key(item) : undefined;
          } catch (err: unknown) {
            clear();
            subscriber.error(err);
            return;
          }
          let bucket = buffers.get(k);
          if (!bucket) {
            bucket = { items: [], timer: undefined };
            buffers.set(k, bucket);
          }
          bucket.items.push(item);
          if (bucket.items.length >= size) {
            flush(k, bucket);
          } else if (bucket.items.length === 1 && timeMs !== undefined) {
            startTimer(k, bucket, timeMs);
          }
        },
        error(err: unknown) {
          clear();
          subscriber.error(err);
        },
        complete() {
          for (const [k, bucket] of [...buffers]) flush(k, bucket);
          subscriber.complete();
        },
      });

      return () => {
        clear();
        sourceSubscription.unsubscribe();
      };
    });
}

/** One key's buffer and its pending `timeMs` timer (set while it holds items, when `timeMs` is given). */
interface Bucket<T> {
  items: T[];
  timer: Subscription | undefined;
}

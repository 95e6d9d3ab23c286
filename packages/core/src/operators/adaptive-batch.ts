import { Observable, from } from 'rxjs';
import type { ObservableInput, OperatorFunction } from 'rxjs';
import { ErrorCode, InvalidArgumentError, SluiceError } from '../model/errors';
import { Fifo } from '../util/fifo';

/** What {@link adaptiveBatch} does with an item that arrives while its buffer is full. */
export type AdaptiveBatchOverflow = 'error' | 'drop-oldest' | 'drop-newest';

const OVERFLOW_STRATEGIES: readonly AdaptiveBatchOverflow[] = ['error', 'drop-oldest', 'drop-newest'];

/** Configuration of {@link adaptiveBatch}. */
export interface AdaptiveBatchConfig<T = unknown> {
  /** The most items given to one `write`. A positive integer; required. */
  readonly maxSize: number;
  /**
   * How many writes may be in flight at once: a positive integer or `Infinity`, or an Observable of
   * them to change it while running (until its first value, 1). Default `1`.
   */
  readonly concurrency?: number | Observable<number>;
  /**
   * The most items waiting while every write slot is busy. A positive integer. Default `10_000`.
   * Items beyond it are handled by `overflow`.
   */
  readonly maxBuffered?: number;
  /**
   * What happens to an item that arrives while `maxBuffered` items are waiting. Default `'error'`.
   *
   * - `'error'`: the output errors with a {@link BufferOverflowError}.
   * - `'drop-oldest'`: the oldest waiting item is dropped to make room for the new one.
   * - `'drop-newest'`: the arriving item is dropped.
   */
  readonly overflow?: AdaptiveBatchOverflow;
  /** Called with every item dropped by `overflow`. Default: none. If it throws, the output errors. */
  readonly onDrop?: (dropped: T) => void;
}

/**
 * {@link adaptiveBatch} received an item while `maxBuffered` items were already waiting and its
 * `overflow` is `'error'`. Its `code` is `ErrorCode.InvalidArgument`: the configured bound does not fit
 * the load, so the caller must raise `maxBuffered`, add `concurrency`, or choose a dropping `overflow`.
 */
export class BufferOverflowError extends SluiceError {
  override name = 'BufferOverflowError' as const;
  /** The bound that was exceeded. */
  readonly maxBuffered: number;
  constructor(maxBuffered: number) {
    super(
      ErrorCode.InvalidArgument,
      `adaptiveBatch: ${maxBuffered} items already buffered while every write was busy (overflow: 'error')`,
    );
    this.maxBuffered = maxBuffered;
  }
}

/**
 * Writes items in batches whose size follows the writer's speed: alone when the writer is idle,
 * together when it is busy.
 *
 * "Write while busy": an item that finds a free write slot is written at once, as a batch of one,
 * so a quiet stream pays no batching latency. While every slot is busy, arriving items gather in a
 * buffer; when a write finishes, everything gathered (up to `maxSize`) goes in the next write. A
 * slow writer thus gets large batches and a fast one small batches, with no timer to tune.
 *
 * ```text
 * source:                                a-b-c-d-e-------f-|
 * writes start:                          A----B----C-----D
 * adaptiveBatch(write, { maxSize: 10 }): -----x----y----z-----(w|)
 *
 * A = write([a])   B = write([b, c])   C = write([d, e])   D = write([f])
 * Each write takes 5 frames, then emits the size of its batch: x = 1, y = 2, z = 2, w = 1.
 * The output completes when the last write completes, after the source.
 * ```
 *
 * - `maxSize` (required): the most items in one batch. When more are waiting, the rest stays for the
 *   next free slot.
 * - `concurrency` (default `1`): how many writes may run at once.
 * - `maxBuffered` (default `10_000`): the most items waiting while every slot is busy.
 * - `overflow` (default `'error'`): what to do with an item arriving while `maxBuffered` items wait:
 *   `'error'` errors the output with a {@link BufferOverflowError}, `'drop-oldest'` drops the oldest
 *   waiting item, `'drop-newest'` drops the arriving one.
 * - `onDrop` (default: none): called with each item dropped by `overflow`.
 *
 * The output emits every value the write observables emit, as `mergeMap` does. A write starts when
 * `write(batch)` is subscribed and ends when it completes. A write that errors (or a `write` that
 * throws) errors the output and unsubscribes the source and the other writes, so a pipeline should
 * pass a `write` that never errors: catch failures inside it and turn them into values (outcomes).
 *
 * When the source completes, the waiting items are still written in `maxSize` chunks as slots free
 * up, and the output completes when the last write has completed. When the source errors, the
 * waiting items are discarded and the error is forwarded. Unsubscribing unsubscribes the source and
 * every write in flight. Throws {@link InvalidArgumentError} at once for an invalid config.
 *
 * ## Example
 *
 * ```ts
 * import { catchError, interval, map, of, take, timer } from 'rxjs';
 * import { adaptiveBatch } from '@sluice/core';
 *
 * interface Row {
 *   readonly id: number;
 * }
 *
 * // Stand-in for a bulk insert that takes 100 ms; it never errors, it reports failures as values.
 * const insertMany = (rows: Row[]) =>
 *   timer(100).pipe(
 *     map(() => ({ ok: true as const, count: rows.length })),
 *     catchError((error: unknown) => of({ ok: false as const, count: rows.length, error })),
 *   );
 *
 * // One row every 10 ms: the first is inserted alone, then about 10 rows per insert.
 * interval(10)
 *   .pipe(
 *     take(100),
 *     map((id): Row => ({ id })),
 *     adaptiveBatch(insertMany, { maxSize: 500, maxBuffered: 5_000, overflow: 'error' }),
 *   )
 *   .subscribe((result) => console.log(result.ok ? `inserted ${result.count}` : 'insert failed'));
 * ```
 */
export function adaptiveBatch<T = unknown, R = unknown>(
  write: (batch: T[]) => ObservableInput<R>,
  config: AdaptiveBatchConfig<T>,
): OperatorFunction<T, R> {
  const { maxSize, concurrency = 1, maxBuffered = 10_000, overflow = 'error', onDrop } = config;
  if (typeof write !== 'function') {
    throw new InvalidArgumentError('adaptiveBatch: write must be a function');
  }
  if (!Number.isInteger(maxSize) || maxSize < 1) {
    throw new InvalidArgumentError(
      `adaptiveBatch: maxSize must be a positive integer, got ${String(maxSize)}`,
    );
  }
  const validConcurrency = (n: number): boolean =>
    n === Number.POSITIVE_INFINITY || (Number.isInteger(n) && n >= 1);
  if (typeof concurrency === 'number' && !validConcurrency(concurrency)) {
    throw new InvalidArgumentError(
      `adaptiveBatch: concurrency must be a positive integer or Infinity, got ${String(concurrency)}`,
    );
  }
  if (!Number.isInteger(maxBuffered) || maxBuffered < 1) {
    throw new InvalidArgumentError(
      `adaptiveBatch: maxBuffered must be a positive integer, got ${String(maxBuffered)}`,
    );
  }
  if (!OVERFLOW_STRATEGIES.includes(overflow)) {
    throw new InvalidArgumentError(
      `adaptiveBatch: overflow must be one of ${OVERFLOW_STRATEGIES.join(', ')}, got ${JSON.stringify(overflow)}`,
    );
  }
  if (onDrop !== undefined && typeof onDrop !== 'function') {
    throw new InvalidArgumentError('adaptiveBatch: onDrop must be a function');
  }

  return (source) =>
    new Observable<R>((subscriber) => {
      /**
       * Items waiting for a write slot, oldest first; never longer than `maxBuffered`.
       * Invariant (outside `drain`): the buffer is empty whenever a slot is free.
       */
      const buffer = new Fifo<T>();
      /** Writes subscribed and not yet completed. */
      let active = 0;
      let sourceDone = false;
      /** True while `drain` runs; re-entrant calls leave the work to its loop. */
      let draining = false;
      /** Write slots; follows `concurrency` when it is an Observable (invalid values are ignored). */
      let limit = typeof concurrency === 'number' ? concurrency : 1;
      const concurrencySubscription =
        typeof concurrency === 'number'
          ? undefined
          : concurrency.subscribe((n) => {
              if (validConcurrency(n)) {
                limit = n;
                drain();
              }
            });

      /** Hands `dropped` to `onDrop`; false if `onDrop` threw (the output has then errored). */
      function notifyDrop(dropped: T): boolean {
        if (onDrop === undefined) return true;
        try {
          onDrop(dropped);
          return true;
        } catch (err: unknown) {
          subscriber.error(err);
          return false;
        }
      }

      function startWrite(items: T[]): void {
        active += 1;
        let input: ObservableInput<R>;
        try {
          input = write(items);
        } catch (err: unknown) {
          subscriber.error(err);
          return;
        }
        // Added to the subscriber so unsubscribing the output unsubscribes it; a completed inner
        // subscription removes itself from the subscriber, so finished writes are not retained.
        subscriber.add(
          from(input).subscribe({
            next: (value) => {
              subscriber.next(value);
            },
            error: (err: unknown) => {
              subscriber.error(err);
            },
            complete: () => {
              active -= 1;
              drain();
            },
          }),
        );
      }

      /**
       * Starts writes while a slot is free and items wait, then completes the output if nothing is
       * left to do. A write that completes synchronously, or a downstream consumer that pushes into
       * the source synchronously, calls `drain` again from inside `startWrite`; the guard turns that
       * recursion into further turns of this loop, so stack depth stays constant however many
       * batches a synchronous writer goes through.
       */
      function drain(): void {
        if (draining) return;
        draining = true;
        while (!subscriber.closed && active < limit && buffer.length > 0) {
          startWrite(buffer.take(maxSize));
        }
        draining = false;
        if (sourceDone && active === 0 && buffer.length === 0) {
          subscriber.complete();
        }
      }

      const sourceSubscription = source.subscribe({
        next(item) {
          if (buffer.length >= maxBuffered) {
            switch (overflow) {
              case 'error':
                subscriber.error(new BufferOverflowError(maxBuffered));
                return;
              case 'drop-newest':
                notifyDrop(item);
                return;
              case 'drop-oldest': {
                // Non-empty: it holds maxBuffered >= 1 items.
                const oldest = buffer.shift();
                if (!notifyDrop(oldest)) return;
                break;
              }
            }
          }
          buffer.push(item);
          drain();
        },
        error(err: unknown) {
          buffer.clear();
          subscriber.error(err);
        },
        complete() {
          sourceDone = true;
          drain();
        },
      });

      return () => {
        buffer.clear();
        sourceSubscription.unsubscribe();
        concurrencySubscription?.unsubscribe();
      };
    });
}

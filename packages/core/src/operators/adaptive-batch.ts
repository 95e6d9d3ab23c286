import { from, type Observable, type ObservableInput, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import { afterTurn } from '../util/after-turn';
import { concurrencyLoop, type Overflow } from './concurrency-loop';

/** What {@link adaptiveBatch} does with an item that arrives while its buffer is full. */
export type AdaptiveBatchOverflow = Overflow;

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
   * The most items waiting while every write slot is busy: a positive integer, or a function read on
   * every arrival. Default `10_000`. Items beyond it are handled by `overflow`.
   */
  readonly maxBuffered?: number | (() => number);
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
  /**
   * Gathers the items that arrive in one turn into one write: an item that finds a free write slot
   * waits until the end of the current turn of the event loop (a `setImmediate`), or, on a scheduler
   * that keeps virtual time (a `TestScheduler`, or `asyncScheduler` inside `TestScheduler.run`), for
   * a task of this scheduler at the current frame. Default: none (an item that finds a free slot is
   * written at once).
   */
  readonly gather?: SchedulerLike;
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
 * - `gather` (default: none): a scheduler; an item that finds a free slot then waits for the end of
 *   the current turn (on a virtual-time scheduler, a task at the current frame), and the items that
 *   arrive meanwhile go in the same write: results that finish together in one turn (a reserve's
 *   jobs run by synchronous handlers) cost one write, not a write of the first and one of the rest.
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
  const { maxSize, concurrency = 1, maxBuffered = 10_000, overflow = 'error', onDrop, gather } = config;
  if (typeof write !== 'function') {
    throw new InvalidArgumentError('adaptiveBatch: write must be a function');
  }
  if (!Number.isInteger(maxSize) || maxSize < 1) {
    throw new InvalidArgumentError(
      `adaptiveBatch: maxSize must be a positive integer, got ${String(maxSize)}`,
    );
  }
  if (typeof maxBuffered === 'number' && (!Number.isInteger(maxBuffered) || maxBuffered < 1)) {
    throw new InvalidArgumentError(
      `adaptiveBatch: maxBuffered must be a positive integer, got ${String(maxBuffered)}`,
    );
  }
  if (onDrop !== undefined && typeof onDrop !== 'function') {
    throw new InvalidArgumentError('adaptiveBatch: onDrop must be a function');
  }
  // The loop shared with processJobs: a write is a run that takes up to maxSize waiting items.
  return concurrencyLoop<T, R>(
    {
      operator: 'adaptiveBatch',
      concurrency,
      maxBuffered,
      overflow,
      onDrop,
      perRun: maxSize,
      gather: gather && ((start: () => void) => afterTurn(gather, start)),
    },
    (items, out, done) =>
      from(write(items)).subscribe({
        next: (value) => {
          out.next(value);
        },
        error: (err: unknown) => {
          out.error(err);
        },
        complete: done,
      }),
  );
}

import { Observable, type OperatorFunction, type Subscriber, type Unsubscribable } from 'rxjs';
import { BufferOverflowError, InvalidArgumentError } from '../model/errors';
import type { Reservation } from '../model/reservation';
import { Fifo } from '../util/fifo';
import { Slots } from '../util/slot-map';

/** What a bounded buffer does with an item that arrives while it is full. */
export type Overflow = 'error' | 'drop-oldest' | 'drop-newest';

export const OVERFLOW_STRATEGIES: readonly Overflow[] = ['error', 'drop-oldest', 'drop-newest'];

/** Configuration of {@link concurrencyLoop}. */
export interface LoopConfig<I> {
  /** Named in errors. */
  readonly operator: string;
  /** Runs at once: a positive integer or `Infinity`, or an Observable of them (1 until its first value). */
  readonly concurrency: number | Observable<number>;
  /** The most items waiting while every slot is busy; a number or a function read on every arrival. */
  readonly maxBuffered: number | (() => number);
  readonly overflow: Overflow;
  readonly onDrop?: ((dropped: I) => void) | undefined;
  /** The most items one run takes from the buffer. */
  readonly perRun: number;
  /**
   * Items of one run share this key: a run takes the oldest waiting item and the waiting items
   * with its key (up to `perRun`); the others wait for the next run. Default: any items.
   */
  readonly runKey?: ((item: I) => unknown) | undefined;
  /**
   * When given, an item that finds a free slot does not start a run at once: the loop asks `gather`
   * to call back (once), and the items that arrive until then start together. A run that finishes
   * still starts the next one at once with what is waiting. Default: none (a run starts at once).
   */
  readonly gather?: ((start: () => void) => Unsubscribable) | undefined;
}

/**
 * Starts one run with `items`. The run emits on `out` and calls `done()` exactly once when it has
 * finished (synchronously is fine); what it returns cancels it when the output is unsubscribed first.
 */
export type StartRun<I, O> = (items: I[], out: Subscriber<O>, done: () => void) => Unsubscribable | undefined;

/**
 * The loop shared by the concurrency stages (`processJobs`, `processBatches`, `adaptiveBatch`), as
 * RxJS shares `mergeInternals` between `mergeMap` and its kin: items wait in a bounded buffer; while
 * fewer than `concurrency` runs are active, a run starts with up to `perRun` waiting items. The
 * output completes after the source and the last run. A source error is forwarded at once and the
 * waiting items discarded; unsubscribing tears down every run in flight.
 *
 * Unlike `mergeInternals`, the buffer is bounded: inside a pipeline the demand channel keeps it
 * within the in-flight budget, so exceeding the bound is a broken invariant and errors the output
 * with a {@link BufferOverflowError} (unless `overflow` drops items instead).
 *
 * Re-entrancy: a run that finishes synchronously, or a consumer that pushes into the source from
 * inside `next`, calls `drain` again while it runs; the guard turns that into one more pass of the
 * loop, so the stack stays flat however many runs complete in one turn.
 */
export function concurrencyLoop<I, O>(
  config: LoopConfig<I>,
  startRun: StartRun<I, O>,
): OperatorFunction<I, O>;
/** Each input arrives as several items (`unpack`), buffered together before any run starts. */
export function concurrencyLoop<In, I, O>(
  config: LoopConfig<I> & { readonly unpack: (input: In) => readonly I[] },
  startRun: StartRun<I, O>,
): OperatorFunction<In, O>;
export function concurrencyLoop<In, I, O>(
  config: LoopConfig<I> & { readonly unpack?: (input: In) => readonly I[] },
  startRun: StartRun<I, O>,
): OperatorFunction<In, O> {
  const { operator, concurrency, maxBuffered, overflow, onDrop, perRun, unpack, runKey, gather } = config;
  const validLimit = (n: number): boolean =>
    n === Number.POSITIVE_INFINITY || (Number.isInteger(n) && n >= 1);
  if (typeof concurrency === 'number' && !validLimit(concurrency)) {
    throw new InvalidArgumentError(
      `${operator}: concurrency must be a positive integer or Infinity, got ${String(concurrency)}`,
    );
  }
  if (typeof maxBuffered === 'number' && !(Number.isInteger(maxBuffered) && maxBuffered >= 0)) {
    throw new InvalidArgumentError(
      `${operator}: maxBuffered must be an integer ≥ 0, got ${String(maxBuffered)}`,
    );
  }
  if (!OVERFLOW_STRATEGIES.includes(overflow)) {
    throw new InvalidArgumentError(
      `${operator}: overflow must be one of ${OVERFLOW_STRATEGIES.join(', ')}, got ${JSON.stringify(overflow)}`,
    );
  }
  if (!Number.isInteger(perRun) || perRun < 1) {
    throw new InvalidArgumentError(
      `${operator}: the batch size must be a positive integer, got ${String(perRun)}`,
    );
  }
  const bound = typeof maxBuffered === 'number' ? () => maxBuffered : maxBuffered;

  return (source: Observable<In>) =>
    new Observable<O>((subscriber) => {
      /** Invariant outside `drain`: the buffer is empty whenever a slot is free, unless `gathering`. */
      const buffer = new Fifo<I>();
      let active = 0;
      let sourceDone = false;
      let limit = typeof concurrency === 'number' ? concurrency : 1;
      let draining = false;
      let again = false;
      /** Runs not finished yet, to cancel on unsubscribe (finished ones are not retained). */
      const running = new Slots<Unsubscribable>();
      /** The pending call back of `gather`, while arrivals gather for a free slot. */
      let gathering: Unsubscribable | undefined;

      const drain = (): void => {
        if (draining) {
          again = true;
          return;
        }
        draining = true;
        do {
          again = false;
          while (!subscriber.closed && active < limit && buffer.length > 0) {
            startOne(runKey ? buffer.takeLike(perRun, runKey) : buffer.take(perRun));
          }
        } while (again as boolean); // set by nested calls
        draining = false;
        if (sourceDone && active === 0 && buffer.length === 0) subscriber.complete();
      };

      const startOne = (items: I[]): void => {
        active++;
        // Fields, not locals: `done` may run inside startRun, before the handle is known.
        const run: { finished: boolean; handle: Unsubscribable | undefined; slot: number } = {
          finished: false,
          handle: undefined,
          slot: -1,
        };
        const done = (): void => {
          if (run.finished) return;
          run.finished = true;
          active--;
          if (run.slot >= 0) running.remove(run.slot);
          drain();
        };
        try {
          run.handle = startRun(items, subscriber, done);
        } catch (err: unknown) {
          subscriber.error(err);
          return;
        }
        // A run that finished inside startRun (synchronously) is not retained.
        if (!run.finished && run.handle) run.slot = running.add(run.handle);
      };

      /** After arrivals: starts runs now, or, with `gather`, once the arrivals have gathered. */
      const arrived = (): void => {
        if (!gather || active >= limit) {
          drain();
          return;
        }
        gathering ??= gather(() => {
          gathering = undefined;
          drain();
        });
      };

      /** Hands `dropped` to `onDrop`; false if it threw (the output has then errored). */
      const notifyDrop = (dropped: I): boolean => {
        if (!onDrop) return true;
        try {
          onDrop(dropped);
          return true;
        } catch (err: unknown) {
          subscriber.error(err);
          return false;
        }
      };

      /** Buffers one item, or handles the overflow; false when the output has errored. */
      const accept = (item: I): boolean => {
        // Counted against what would still wait once the free slots take their share: an item that
        // finds a free slot never waits.
        const waiting = buffer.length - Math.max(0, limit - active) * perRun;
        if (waiting >= bound()) {
          switch (overflow) {
            case 'error':
              subscriber.error(new BufferOverflowError(operator, bound()));
              return false;
            case 'drop-newest':
              return notifyDrop(item) && false;
            case 'drop-oldest':
              if (buffer.length === 0) return notifyDrop(item) && false;
              if (!notifyDrop(buffer.shift())) return false;
              break;
          }
        }
        buffer.push(item);
        return true;
      };

      const concurrencySub =
        typeof concurrency === 'number'
          ? undefined
          : concurrency.subscribe((n) => {
              if (validLimit(n)) {
                limit = n;
                drain();
              }
            });

      const sourceSub = source.subscribe({
        next: (input) => {
          if (!unpack) {
            // Without `unpack` an input is an item (the first overload).
            if (accept(input as unknown as I)) arrived();
            return;
          }
          // Items that arrive together are buffered together, then runs start: a whole reservation
          // reaching an idle writer goes in one run, not as its first job alone.
          for (const item of unpack(input)) if (!accept(item)) return;
          arrived();
        },
        error: (err: unknown) => {
          buffer.clear();
          subscriber.error(err);
        },
        complete: () => {
          sourceDone = true;
          drain();
        },
      });

      return () => {
        buffer.clear();
        gathering?.unsubscribe();
        gathering = undefined;
        sourceSub.unsubscribe();
        concurrencySub?.unsubscribe();
        for (const run of running.values()) run.unsubscribe();
        running.clear();
      };
    });
}

/** Each job of a reservation as a unit of its own, sharing the reservation's grant and gate. */
export function eachJob<T>(r: Reservation<T>): readonly Reservation<T>[] {
  if (r.jobs.length === 1) return [r];
  return r.jobs.map((job) => ({ ...r, jobs: [job] }));
}

/** Units as one: the jobs of all, with the first one's grant and gate. */
export function joinUnits<T>(units: readonly Reservation<T>[]): Reservation<T> {
  const first = units[0];
  if (units.length === 1 && first) return first;
  return { ...first, jobs: units.flatMap((u) => u.jobs) };
}

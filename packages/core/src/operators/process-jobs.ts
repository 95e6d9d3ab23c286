import type { Observable, OperatorFunction, SchedulerLike } from 'rxjs';
import type { Handler, JobReporter } from '../model/handler';
import type { Handled } from '../model/outcome';
import type { Reservation } from '../model/reservation';
import type { InFlight } from '../runtime/in-flight';
import type { Logger } from '../runtime/logger';
import type { Telemetry } from '../runtime/telemetry';
import { concurrencyLoop, eachJob } from './concurrency-loop';
import { JobRun } from './unit-run';

/** Where a handler stage runs and how its runs are reported. A `Worker` gives these to a pipeline. */
export interface RunConfig {
  /** Name reported to handlers, logs and telemetry. */
  readonly pipeline: string;
  /** Abort the handler after this long unless the job carries its own `timeoutMs`. Default: none. */
  readonly timeoutMs?: number;
  /** Clock and timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  readonly logger?: Logger;
  /** Routes cancellations and lost leases to the running handler (a `Worker` passes its own). */
  readonly inFlight?: InFlight;
  readonly telemetry?: Telemetry;
  /** Records `ctx.progress` / `ctx.log` reports (a `Worker` passes its store's). Default: `logger.debug`. */
  readonly reportJob?: JobReporter;
}

/** Configuration of {@link processJobs} and `processBatches`. */
export interface ProcessConfig extends RunConfig {
  /** Handler calls in flight at once; an Observable changes it at runtime. Default `1`. */
  readonly concurrency?: number | Observable<number>;
  /**
   * Units allowed to wait for a free slot; one more errors the output with a `BufferOverflowError`.
   * Inside a pipeline the demand channel keeps the waiting units within the in-flight budget, and the
   * pipeline passes its budget here, so exceeding it is a broken invariant that fails loudly. A
   * function is read on every arrival (the budget follows the concurrency). Default `10_000`.
   */
  readonly maxBuffered?: number | (() => number);
}

/**
 * Runs a handler on each job with bounded concurrency, isolating every failure.
 *
 * Intuition: `mergeMap(run, concurrency)` over the jobs of each reservation, except that a job's
 * failure, timeout or cancellation is caught inside its own run and comes out as a value: it never
 * errors the stream, never cancels siblings, never touches another pipeline.
 *
 * ```
 * reservations: -a-(bc)------|      concurrency 2, each run takes 4 frames
 * processJobs:  -----A-B---C-|      (c waits for a free slot and starts when a is done)
 * ```
 *
 * Each run gets an `AbortSignal` that fires on timeout (`JobTimeoutError`), on cancellation, on a
 * lost lease, or when the output is unsubscribed (`JobAbortedError`, cause `shutdown`). Handlers may
 * return a value, a promise, or an Observable (its last value counts), or flow control
 * (`{ snooze: ms }`, `{ cancel: reason }`). For marble tests, return values or Observables: promises
 * resolve outside virtual time. When a reservation carries a start gate (see `timeStarts`), each
 * job's start is admitted by it once a slot is free.
 *
 * Emits one array of `Handled` per handler call (one job here), ready for `settle`. For handlers that
 * take many jobs per call, see `processBatches` and `adaptiveBatches`.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(
 *   processJobs(async (job, { signal }) => (await fetch(job.data.url, { signal })).status, {
 *     pipeline: 'ping',
 *     concurrency: 10,
 *     timeoutMs: 5000,
 *   }),
 * );
 * ```
 */
export function processJobs<T, R = unknown>(
  handler: Handler<T, R>,
  config: ProcessConfig,
): OperatorFunction<Reservation<T>, readonly Handled<T>[]> {
  return concurrencyLoop<Reservation<T>, Reservation<T>, readonly Handled<T>[]>(
    {
      operator: 'processJobs',
      concurrency: config.concurrency ?? 1,
      maxBuffered: config.maxBuffered ?? 10_000,
      overflow: 'error',
      perRun: 1,
      unpack: eachJob,
    },
    (units, out, done) => (units[0] ? new JobRun(handler, units[0], config, out, done).start() : undefined),
  );
}

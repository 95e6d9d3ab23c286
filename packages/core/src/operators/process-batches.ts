import type { OperatorFunction } from 'rxjs';
import type { BatchHandler } from '../model/handler';
import type { Handled } from '../model/outcome';
import type { Reservation } from '../model/reservation';
import { concurrencyLoop, eachJob, joinUnits } from './concurrency-loop';
import type { ProcessConfig } from './process-jobs';
import { BatchRun } from './unit-run';

/**
 * Runs a batch handler once per reservation, with bounded concurrency, isolating every failure.
 *
 * Intuition: {@link processJobs} for handlers that take many jobs per call (a bulk insert, an API
 * that inspects 100 items per request). Each arriving reservation is one batch: form the batches
 * upstream with `batchJobs` (by size and time) or `chunkJobs` (split what the store formed).
 *
 * ```
 * batches:        -a----(bc)----|      concurrency 1, each call takes 3 frames
 * processBatches: ----A--B--C---|
 * ```
 *
 * A handler returning a plain value completes every job of the batch with it; `perJob(results)`
 * settles each job on its own; throwing fails them all. Cancellations, lost leases and timeouts
 * behave as in {@link processJobs}.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(
 *   batchJobs({ size: 100, timeMs: 50 }),
 *   processBatches(async (jobs) => perJob(await inspect(jobs.map((j) => j.data))), { pipeline: 'inspect' }),
 * );
 * ```
 */
export function processBatches<T, R = unknown>(
  handler: BatchHandler<T, R>,
  config: ProcessConfig,
): OperatorFunction<Reservation<T>, readonly Handled<T>[]> {
  return concurrencyLoop<Reservation<T>, readonly Handled<T>[]>(
    {
      operator: 'processBatches',
      concurrency: config.concurrency ?? 1,
      maxBuffered: config.maxBuffered ?? 10_000,
      overflow: 'error',
      perRun: 1,
    },
    (units, out, done) => (units[0] ? new BatchRun(handler, units[0], config, out, done).start() : undefined),
  );
}

/** Configuration of {@link adaptiveBatches}. */
export interface AdaptiveBatchesConfig extends ProcessConfig {
  /** The most jobs in one handler call. */
  readonly maxSize: number;
  /**
   * Let a call hold jobs of different groups (`job.group`). Default `false`: a call takes the oldest
   * waiting job and the waiting jobs of its group, so one handler call serves one tenant.
   */
  readonly mixGroups?: boolean;
}

/**
 * Runs a batch handler "write while busy": jobs that find a free slot are handled at once — a
 * reservation's jobs together, up to `maxSize` — and jobs that arrive while every slot is busy
 * gather and go together (up to `maxSize`) in the next call. A slow handler gets large batches and a
 * fast one small batches, with no timer to tune.
 *
 * ```
 * reservations:    a-b-c-d-e-------f-|      maxSize 10, concurrency 1, each call takes 5 frames
 * adaptiveBatches: -----A----B----C-----(D|)   f is one reservation of two jobs, f1 and f2
 *                  A = [a]  B = [b, c]  C = [d, e]  D = [f1, f2]
 * ```
 *
 * Jobs that arrive together (one reservation) are never split to start one of them early: a
 * reservation reaching an idle handler goes whole (up to `maxSize`), split by group unless
 * `mixGroups` (a call takes the oldest waiting job and the waiting jobs of its group). The jobs of a call share the
 * start gate of its first job. `maxBuffered` counts waiting jobs.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(adaptiveBatches((jobs) => db.insertMany(jobs.map((j) => j.data)), { pipeline: 'rows', maxSize: 500 }));
 * ```
 */
export function adaptiveBatches<T, R = unknown>(
  handler: BatchHandler<T, R>,
  config: AdaptiveBatchesConfig,
): OperatorFunction<Reservation<T>, readonly Handled<T>[]> {
  return concurrencyLoop<Reservation<T>, Reservation<T>, readonly Handled<T>[]>(
    {
      operator: 'adaptiveBatches',
      concurrency: config.concurrency ?? 1,
      maxBuffered: config.maxBuffered ?? 10_000,
      overflow: 'error',
      perRun: config.maxSize,
      unpack: eachJob,
      runKey: config.mixGroups ? undefined : (unit: Reservation<T>) => unit.jobs[0]?.group,
    },
    (units, out, done) => new BatchRun(handler, joinUnits(units), config, out, done).start(),
  );
}

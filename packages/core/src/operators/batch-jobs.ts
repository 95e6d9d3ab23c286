import { map, mergeMap, type OperatorFunction } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { Reservation } from '../model/reservation';
import { chunks } from '../util/chunks';
import { batch, type BatchConfig } from './batch';

/**
 * Regroups the jobs of reservations into batches of at most `size`, emitted when full or `timeMs`
 * after their first job: {@link batch} applied to jobs, for `processBatches`.
 *
 * ```text
 * reservations:                      -(ab)-c-d----e-------|
 * batchJobs({ size: 3, timeMs: 5 }): -----x------y-----z---|    x = [a, b, c]  y = [d]  z = [e]
 * ```
 *
 * A batch formed from several reservations carries none of their grants (regrouped jobs cannot keep
 * a count made per reservation): rate-limited pipelines let the store form batches instead (a
 * `fill` on the reserve) and split them with {@link chunkJobs}.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(batchJobs({ size: 100, timeMs: 50 }), processBatches(insertRows, { pipeline: 'rows' }));
 * ```
 */
export function batchJobs<T>(config: BatchConfig): OperatorFunction<Reservation<T>, Reservation<T>> {
  return (reservations$) =>
    reservations$.pipe(
      mergeMap((r) => r.jobs),
      batch<ReservedJob<T>>(config),
      map((jobs): Reservation<T> => ({ jobs })),
    );
}

/**
 * Splits each reservation into batches of at most `size` jobs, in order, each keeping the
 * reservation's grant and gate. No batch holds jobs of two reservations.
 *
 * ```text
 * reservations:    -(abcde)---f--|
 * chunkJobs(2):    -(xyz)-----w--|    x = [a, b]  y = [c, d]  z = [e]  w = [f]
 * ```
 *
 * ## Example
 * ```ts
 * reservations$.pipe(chunkJobs(100), processBatches(inspect, { pipeline: 'inspect', concurrency: 2 }));
 * ```
 */
export function chunkJobs<T>(size: number): OperatorFunction<Reservation<T>, Reservation<T>> {
  if (!Number.isInteger(size) || size < 1) {
    throw new InvalidArgumentError(`chunkJobs: size must be a positive integer, got ${String(size)}`);
  }
  return mergeMap((r) => {
    if (r.jobs.length <= size) return [r];
    return chunks(r.jobs, size).map((jobs): Reservation<T> => ({ ...r, jobs }));
  });
}

import { map, mergeMap, type OperatorFunction } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { Reservation } from '../model/reservation';
import { chunks } from '../util/chunks';
import { batch, type BatchConfig } from './batch';

/** Configuration of {@link batchJobs}. */
export interface BatchJobsConfig extends Omit<BatchConfig, 'key'> {
  /**
   * Let a batch hold jobs of different groups (`job.group`). Default `false`: each group batches on
   * its own (jobs of no group together), so one handler call serves one tenant.
   */
  readonly mixGroups?: boolean;
}

/** A job's group as a batching key (jobs of no group share one). */
const groupKey = (job: ReservedJob): string | undefined => job.group;

/**
 * Regroups the jobs of reservations into batches of at most `size`, emitted when full or `timeMs`
 * after their first job: {@link batch} applied to jobs, for `processBatches`. A batch never mixes
 * groups unless `mixGroups` is set: each group fills (and times out) its own batch.
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
export function batchJobs<T>(config: BatchJobsConfig): OperatorFunction<Reservation<T>, Reservation<T>> {
  const { mixGroups, ...timing } = config;
  return (reservations$) =>
    reservations$.pipe(
      mergeMap((r) => r.jobs),
      batch<ReservedJob<T>>(mixGroups ? timing : { ...timing, key: groupKey }),
      map((jobs): Reservation<T> => ({ jobs })),
    );
}

/**
 * Splits each reservation into batches of at most `size` jobs, in order, each keeping the
 * reservation's grant and gate. No batch holds jobs of two reservations, nor (unless `mixGroups`)
 * jobs of two groups: a reservation's jobs are first split by group, in the order each group's
 * first job comes.
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
export function chunkJobs<T>(
  size: number,
  options: { readonly mixGroups?: boolean } = {},
): OperatorFunction<Reservation<T>, Reservation<T>> {
  if (!Number.isInteger(size) || size < 1) {
    throw new InvalidArgumentError(`chunkJobs: size must be a positive integer, got ${String(size)}`);
  }
  const split = (r: Reservation<T>): Reservation<T>[] =>
    r.jobs.length <= size ? [r] : chunks(r.jobs, size).map((jobs): Reservation<T> => ({ ...r, jobs }));
  return mergeMap((r) => {
    if (options.mixGroups || r.jobs.every((j) => j.group === r.jobs[0]?.group)) return split(r);
    const byGroup = new Map<string | undefined, ReservedJob<T>[]>();
    for (const job of r.jobs) {
      const of = byGroup.get(job.group);
      if (of) of.push(job);
      else byGroup.set(job.group, [job]);
    }
    return [...byGroup.values()].flatMap((jobs) => split({ ...r, jobs }));
  });
}

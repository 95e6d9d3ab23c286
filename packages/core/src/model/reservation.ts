import type { Unsubscribable } from 'rxjs';
import type { LimitContext } from './handler';
import type { ReservedJob } from './job';
import type { UnusedUnits } from './outcome';

/**
 * Where a reserve call counted its jobs against a rate limit: the slot (the store time their units
 * are recorded at, when their work should start), the store time of the call (the jobs'
 * `lease.startedAt`) and this process's clock when the call was sent and answered, which bound where
 * store times fall on the local clock.
 */
export interface LimitGrant {
  /** Store time the jobs' units are recorded at (their slot), epoch ms. */
  readonly at: number;
  /** Store time of the reserve call. */
  readonly storeNow: number;
  /** Local time the reserve call was sent. */
  readonly sentAt: number;
  /** Local time its answer arrived. */
  readonly receivedAt: number;
  /**
   * The margin (ms) the reserve asked the store to widen the limit's window by: the store counted
   * these units with a window at least that wide, so they may start up to that long after `at`.
   * Absent: the limit's configured `marginMs`.
   */
  readonly marginMs?: number;
  /**
   * Under a group rate limit: the groups whose logs hold these jobs' units at `at` (each job of a
   * listed group is counted in its group's log), so a move moves them too.
   */
  readonly groups?: readonly string[];
}

/**
 * Decides when a unit of work (one handler call's jobs) may start. The concurrency stages ask it once
 * a handler slot is free and call the handler when it says so.
 *
 * `admit` calls `start(limit?, confirm?)` when the unit may start (a rate limit's gate passes the
 * handler's `ctx.limit`) — synchronously when it may start now, so that the last clock check and the
 * handler call happen in the same turn — or `handBack(reason, unused?)` when it may not start at all
 * (the jobs then go back to the queue at once, no attempt spent), and returns what cancels a wait.
 * A gate that times starts passes `confirm` too: the caller calls it once everything the handler call
 * needs is made, just before the call, and calls the handler only if it answers true. False means
 * the moment passed meanwhile (a collection, or the process not running): the gate then moves the
 * unit and calls `start` again, or hands it back. See `timeStarts` for the gate of rate-limited
 * pipelines.
 */
export interface StartGate {
  admit(
    jobs: readonly ReservedJob[],
    grant: LimitGrant | undefined,
    start: (limit?: LimitContext, confirm?: () => boolean) => void,
    handBack: (reason: string, unused?: UnusedUnits) => void,
  ): Unsubscribable | undefined;
}

/**
 * The jobs one reserve call leased, as they travel through a pipeline: each carries its own context
 * (the grant it was counted under, the gate that times its start), so no stage needs a side table or
 * a callback into the pipeline to find it. Stages may transform the jobs (`{ ...r, jobs }`); the
 * context travels with them.
 */
export interface Reservation<T = unknown> {
  readonly jobs: readonly ReservedJob<T>[];
  /** Set by the source: when and how the store counted these jobs. */
  readonly grant?: LimitGrant;
  /** Set by `timeStarts` on rate-limited pipelines: asked before each handler call starts. */
  readonly gate?: StartGate;
}

/**
 * The same reservation with other jobs (enriched, filtered, regrouped): grant and gate carry over.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(map((r) => withJobs(r, r.jobs.filter((job) => job.data.enabled))));
 * ```
 */
export function withJobs<T, U>(reservation: Reservation<T>, jobs: readonly ReservedJob<U>[]): Reservation<U> {
  return { ...reservation, jobs };
}

import type { Observable, SchedulerLike } from 'rxjs';
import type { BackoffPolicy } from '../model/backoff';
import { InvalidArgumentError } from '../model/errors';
import type { JobReporter } from '../model/handler';
import type { Handled } from '../model/outcome';
import type { Reservation } from '../model/reservation';
import { assertQueueName, compileSchema } from '../model/validation';
import type { IdlePolling } from '../operators/source';
import { leadSlots, storeLimit, timingLimit, type PipelineRateLimit } from '../operators/time-starts';
import type { FillSpec, GroupRules, RateLimitSpec } from '../store/store';
import type { InFlight } from './in-flight';
import type { Logger } from './logger';
import type { Telemetry } from './telemetry';

/**
 * The most jobs a rate limit grants ahead of their slots, in rounds of handlers: more would wait
 * past their margins for a handler, behind busy ones (see `GrantsAhead`, which keeps fewer while the
 * handlers are busy).
 */
const AHEAD_ROUNDS = 2;

/**
 * What a `Worker` gives a pipeline's graph: everything its handler stages need to run inside the
 * worker. It fits the config of `processJobs`, `processBatches` and `adaptiveBatches` as it is
 * (`processJobs(handler, ctx)`), or spread with your own options (`{ ...ctx, timeoutMs: 5000 }`).
 */
export interface PipelineContext {
  /** The pipeline's name, reported to handlers, logs and telemetry. */
  readonly pipeline: string;
  /** The effective concurrency: configured, then changed by the store's settings or the worker. */
  readonly concurrency: Observable<number>;
  /** The in-flight budget (the most it has been): no stage ever needs to buffer more jobs. */
  readonly maxBuffered: () => number;
  /** The worker's clock and timers (virtual in marble tests): give it to time-based stages of your own. */
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly telemetry?: Telemetry;
  /** The jobs this pipeline holds leases on; handler stages attach aborts to them. */
  readonly inFlight: InFlight;
  /** Records handlers' `ctx.progress` / `ctx.log` reports in the store (when it can). */
  readonly reportJob?: JobReporter;
}

/**
 * A pipeline's own stages: from the reservations the worker's source leased (validated, and timed
 * when the pipeline is rate-limited) to one array of results per handler call. Every job that comes
 * in must come out as a result exactly once (a job that vanished would hold its lease until the
 * worker stops): transform jobs, regroup them, enrich them, but settle each by returning from a
 * handler stage.
 */
export type PipelineGraph<T> = (
  reservations$: Observable<Reservation<T>>,
  ctx: PipelineContext,
) => Observable<readonly Handled[]>;

/** What a `Worker` needs to know of a pipeline, besides its graph. Every field but `queue` is optional. */
export interface PipelineSpec {
  /** Default: the queue name. Must be unique within a worker. */
  readonly name?: string;
  readonly queue: string;
  /** Handler calls in flight at once. Default `1`. */
  readonly concurrency?: number;
  /** Jobs one handler call takes (1, a batch size, an adaptive maximum). Default `1`. */
  readonly unitSize?: number;
  /**
   * Extra jobs reserved beyond what the handler slots take, so the next reservation overlaps the
   * current work (or, for adaptive batches, so the next batch gathers while one is written).
   * Prefetched jobs are leased to this worker; a drain hands them back unstarted. Not with a rate
   * limit (a prefetched job would start later than the limit counted it). Default `0`.
   */
  readonly prefetch?: number;
  /** Lease per reserved job; heartbeats renew it every `leaseMs / 3`. Default `30_000`. */
  readonly leaseMs?: number;
  /** JSON schema payloads must match; invalid jobs are dead-lettered at reserve. Default: the queue's stored schema. */
  readonly schema?: object;
  /** Checked by the store with each reserve, across every process; handler starts are timed to it. */
  readonly rateLimit?: PipelineRateLimit;
  /** Delay before retrying a failed job. Default `exponential()` with full jitter. */
  readonly backoff?: BackoffPolicy;
  /** Most jobs per reserve call. Default `min(budget, 1000)`. */
  readonly maxReserve?: number;
  /** Replenishments smaller than this are coalesced. Default `max(1, budget / 4)`. */
  readonly coalesce?: number;
  readonly idle?: IdlePolling;
  /** Let the store form batches (see `FillSpec`): no reserved job waits on a local timer. */
  readonly fill?: FillSpec;
  /**
   * Jobs of the queue running at once across every worker and process, at most: a semaphore kept
   * with the leases in the store (a job counts from its reserve to its settle, so a crashed worker's
   * share comes back when its leases are recovered). `concurrency` still bounds each worker.
   * Default: no cap.
   */
  readonly globalConcurrency?: number;
  /**
   * Rules for the groups of the queue's jobs (`JobOptions.group`), checked by the store with each
   * reserve across every process: `{ concurrency: 1 }` runs one job per group at a time, in add
   * order. Groups take turns whatever the rules (see `GroupRules`). Default: no rules.
   */
  readonly groups?: GroupRules;
}

/** A validated pipeline: its description and its graph. Give it to a `Worker`. */
export interface PipelineDefinition<T = unknown, R = unknown> {
  readonly name: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly unitSize: number;
  readonly prefetch: number;
  readonly leaseMs: number;
  readonly schema?: object;
  /** The limit as configured. */
  readonly rateLimit?: PipelineRateLimit;
  /** The limit the store enforces (its window includes the margin). */
  readonly storeLimit?: RateLimitSpec;
  readonly backoff?: BackoffPolicy;
  readonly maxReserve?: number;
  readonly coalesce?: number;
  readonly idle?: IdlePolling;
  readonly fill?: FillSpec;
  readonly globalConcurrency?: number;
  readonly groups?: GroupRules;
  /**
   * Jobs reserved and not yet settled, at most, for a concurrency:
   * `concurrency × unitSize + prefetch`, plus for a rate-limited pipeline the jobs granted ahead of
   * their slots at the usual lead: `⌈allowed × jobs per unit × min(20, 2 × maxLeadMs) / periodMs⌉`,
   * at most `2 × concurrency × unitSize` (see `aheadOf`).
   */
  budget(concurrency: number): number;
  /**
   * Of the budget, the jobs a rate limit may grant ahead of their slots (0 without a limit): the
   * usual lead's worth, at most two rounds of handlers (`2 × concurrency × unitSize`). While running, the
   * worker keeps fewer ahead when its handlers are slow to free up (see `GrantsAhead`).
   */
  aheadOf(concurrency: number): number;
  readonly graph: PipelineGraph<T>;
  /** The result type its outcomes carry (a type only). */
  readonly resultType?: R;
}

/**
 * A pipeline from your own stages: the seam `definePipeline` is built on.
 *
 * Intuition: the worker owns both ends — a demand-driven source that leases jobs (with heartbeats,
 * recovery, cancellation, drain and pause), and `settle`, which writes results back and returns
 * demand. Between them runs your graph, from reservations to results, composed from the operators
 * (`processJobs`, `processBatches`, `adaptiveBatches`, `batchJobs`, `chunkJobs`) and any RxJS stage
 * of your own. A rate-limited pipeline's reservations reach your graph already timed (`timeStarts`),
 * and each carries the gate its handler calls pass.
 *
 * ```
 * worker:  source ─► validate ─► [timeStarts] ─► ┌ your graph ┐ ─► settle ─► outcomes$
 *                                                 └────────────┘
 * ```
 *
 * ## Example
 * ```ts
 * const orders = pipeline<Order>({ queue: 'orders', concurrency: 10 }, (reservations$, ctx) =>
 *   reservations$.pipe(
 *     mergeMap(async (r) => withJobs(r, await addCustomers(r.jobs))), // one lookup per reservation
 *     processJobs((job) => ship(job.data), ctx),
 *   ),
 * );
 * ```
 */
export function pipeline<T = unknown, R = unknown>(
  spec: PipelineSpec,
  graph: PipelineGraph<T>,
): PipelineDefinition<T, R> {
  assertQueueName(spec.queue);
  const name = spec.name ?? spec.queue;
  const concurrency = spec.concurrency ?? 1;
  const unitSize = spec.unitSize ?? 1;
  const prefetch = spec.prefetch ?? 0;
  const leaseMs = spec.leaseMs ?? 30_000;
  const positive = (what: string, n: number, min: number): void => {
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`pipeline "${name}": ${what} must be an integer ≥ ${min}, got ${n}`);
    }
  };
  positive('concurrency', concurrency, 1);
  positive('unitSize (the batch size)', unitSize, 1);
  positive('prefetch', prefetch, 0);
  if (spec.globalConcurrency !== undefined) positive('globalConcurrency', spec.globalConcurrency, 1);
  if (spec.groups?.concurrency !== undefined) positive('groups.concurrency', spec.groups.concurrency, 1);
  const groupLimit = spec.groups?.rateLimit;
  if (groupLimit) {
    positive('groups.rateLimit.allowed', groupLimit.allowed, 1);
    if (!(groupLimit.periodMs > 0) || !Number.isFinite(groupLimit.periodMs)) {
      throw new InvalidArgumentError(`pipeline "${name}": groups.rateLimit.periodMs must be > 0`);
    }
    if (unitSize > 1 || spec.rateLimit?.per === 'call') {
      throw new InvalidArgumentError(
        `pipeline "${name}": a group rate limit counts jobs one by one; it cannot be combined with batches`,
      );
    }
  }
  if (!(leaseMs > 0)) throw new InvalidArgumentError(`pipeline "${name}": leaseMs must be > 0`);
  const limit = spec.rateLimit;
  if ((limit || groupLimit) && prefetch > 0) {
    throw new InvalidArgumentError(
      `pipeline "${name}": prefetch cannot be combined with a rate limit: the limit counts a job when it ` +
        'is reserved, and a prefetched job would start later than counted',
    );
  }
  if (spec.schema) compileSchema(spec.schema); // an invalid schema fails here, not in the worker
  // The limit that times the starts (its margin checked here: a bad one fails at definition).
  const timed = limit ?? (groupLimit ? timingLimit({ groupLimit }) : undefined);
  const ahead = timed ? leadSlots(timed, unitSize) : 0;
  const aheadOf = (c: number): number => Math.min(ahead, AHEAD_ROUNDS * c * unitSize);
  return {
    ...spec,
    name,
    concurrency,
    unitSize,
    prefetch,
    leaseMs,
    ...(limit ? { storeLimit: storeLimit(limit, spec.queue, unitSize) } : {}),
    budget: (c) => c * unitSize + prefetch + aheadOf(c),
    aheadOf,
    graph,
  };
}

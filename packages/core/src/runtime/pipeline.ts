import {
  asyncScheduler,
  catchError,
  concat,
  connect,
  defer,
  EMPTY,
  ignoreElements,
  identity,
  tap,
  of,
  timer,
  filter,
  map,
  merge,
  mergeMap,
  type Observable,
  type OperatorFunction,
  type SchedulerLike,
} from 'rxjs';
import type { BackoffPolicy } from '../model/backoff';
import type { Demand } from './demand';
import { InvalidArgumentError } from '../model/errors';
import type { BatchHandler, Handler } from '../model/handler';
import type { InFlight } from './in-flight';
import type { ReservedJob } from '../model/job';
import { LeaseClock, localSlop, preciseNow } from './lease-clock';
import type { LimiterRegistry } from './limiter';
import type { Logger } from './logger';
import { adaptiveBatch } from '../operators/adaptive-batch';
import { batch } from '../operators/batch';
import {
  processJobs,
  runUnit,
  type Handled,
  type LimitGrant,
  type WorkUnit,
} from '../operators/process-jobs';
import { settle } from '../operators/settle';
import { source, type IdlePolling } from '../operators/source';
import { validate } from '../operators/validate';
import type { Outcome } from '../model/outcome';
import type { RateLimitSpec, Store } from '../store/store';
import type { Telemetry } from './telemetry';
import { assertQueueName, compileSchema, type PayloadValidator } from '../model/validation';

/** Flush a batch at `size` jobs or `timeMs` after its first job, whichever comes first. */
export interface SizeTimeBatch {
  readonly size: number;
  /** Default: flush on size only (and on drain). */
  readonly timeMs?: number;
}

/** "Write while busy": the first job goes at once; while the handler is busy jobs gather, up to `maxSize`. */
export interface AdaptiveBatch {
  readonly adaptive: true;
  readonly maxSize: number;
}

export type BatchSpec = SizeTimeBatch | AdaptiveBatch;

/** A pipeline's rate limit; see {@link RateLimitSpec}. `per: 'call'` needs a size/time batch. */
export interface PipelineRateLimit {
  readonly allowed: number;
  readonly periodMs: number;
  /** Share the limit with other pipelines (on any node) that name the same key. Default: the queue. */
  readonly key?: string;
  /** `'job'` (default) counts jobs started; `'call'` counts handler calls (each up to one batch). */
  readonly per?: 'job' | 'call';
  /**
   * Safety margin added to the window the store enforces. The store counts a start when it grants a
   * lease (its clock, exact across nodes); the handler is called a little later, after the reply
   * crosses the network and the event loop. Spacing windows by `periodMs + marginMs` keeps the limit
   * true for handler start times too, as long as that delay varies by less than the margin; when it
   * varies more (a GC pause, a slow reply), each worker also checks its own handler starts against the
   * limit and holds a start back by those few milliseconds. Default: 0.5% of `periodMs`, at most 10 ms
   * (5 ms for a 1 s window, costing 0.5% of the rate).
   */
  readonly marginMs?: number;
  /**
   * Every start waits until this long after the store counted it (the grant's store time mapped onto
   * the worker's clock, see `LeaseClock`; or the usual round trip, if longer). Starts then trail their
   * grants by the same delay, so they keep the spacing the limit gave the grants even when a worker
   * takes a while to start a burst (a busy core, a GC pause, a reply queued behind other calls, a job
   * waiting for a free slot): the handler start times, as a provider sees them, hold the limit across
   * every process. A start later than that still first moves its count in the store to just before
   * the present (by this delay, less the lateness allowed and a recent round trip), so it starts as
   * the answer arrives and trails its count by this delay like the others. Costs that much latency,
   * not rate. Default: 3% of `periodMs`, between 5 and 30 ms (30 ms for 1 s).
   */
  readonly alignStartsMs?: number;
}

interface CommonConfig {
  /** Default: the queue name. Must be unique within a worker. */
  readonly name?: string;
  readonly queue: string;
  /** Handler calls in flight at once. Default `1`. */
  readonly concurrency?: number;
  readonly rateLimit?: PipelineRateLimit;
  /** Delay before retrying a failed job. Default `exponential()` with full jitter. */
  readonly backoff?: BackoffPolicy;
  /** Abort a handler after this long unless the job has its own `timeoutMs`. Default: no timeout. */
  readonly timeoutMs?: number;
  /** Lease per reserved job; heartbeats renew it every `leaseMs / 3`. Default `30_000`. */
  readonly leaseMs?: number;
  /**
   * Extra jobs reserved beyond what the handlers can take, so the next reservation overlaps the
   * current work instead of waiting for its acks: `concurrency × batch size` (one more unit per
   * handler slot) gives a busy worker about a fifth more throughput on a local Redis. Prefetched jobs
   * are leased to this worker; a drain hands them back unstarted. Not with a rate limit (a prefetched
   * job would start later than the limit counted it). Default `0`: a worker holds only what it runs.
   */
  readonly prefetch?: number;
  /** JSON schema payloads must match; invalid jobs are dead-lettered at reserve. Default: the queue's stored schema. */
  readonly schema?: object;
  /** Most jobs per reserve call. Default `min(budget, 1000)`. */
  readonly maxReserve?: number;
  /** Replenishments smaller than this are coalesced. Default `max(1, budget / 4)`. */
  readonly coalesce?: number;
  readonly idle?: IdlePolling;
}

/** A pipeline whose handler takes one job at a time. */
export interface SingleJobPipelineConfig<T, R> extends CommonConfig {
  readonly batch?: undefined;
  readonly handler: Handler<T, R>;
}

/** A pipeline whose handler takes a batch of jobs. */
export interface BatchPipelineConfig<T, R> extends CommonConfig {
  readonly batch: BatchSpec;
  readonly handler: BatchHandler<T, R>;
}

export type PipelineConfig<T = unknown, R = unknown> =
  SingleJobPipelineConfig<T, R> | BatchPipelineConfig<T, R>;

/** What a running pipeline is wired to; supplied by the `Worker` (or a test). */
export interface PipelineContext {
  readonly store: Store;
  readonly demand: Demand;
  readonly inFlight: InFlight;
  /** Effective concurrency (changes at runtime). */
  readonly concurrency$: Observable<number>;
  /** `true` while the pipeline must not start jobs. */
  readonly paused$: Observable<boolean>;
  readonly scheduler?: SchedulerLike;
  readonly logger: Logger;
  readonly telemetry?: Telemetry;
  /** Used when the pipeline has no schema of its own (the queue's stored schema). */
  readonly fallbackValidator?: PayloadValidator;
  /**
   * This process's limiters, by rate-limit key: they check handler start times on the local clock
   * (see `RunConfig.startGate`). Default: no local check.
   */
  readonly limiters?: LimiterRegistry;
}

/** A validated pipeline definition; give it to a `Worker`. */
export interface PipelineDefinition<T = unknown, R = unknown> {
  readonly name: string;
  readonly queue: string;
  readonly config: PipelineConfig<T, R>;
  readonly concurrency: number;
  readonly leaseMs: number;
  /** Jobs per handler call: 1, the batch size, or the adaptive maximum. */
  readonly unitSize: number;
  /** The limit the store enforces for this pipeline (period includes the margin), if any. */
  readonly rateLimit?: RateLimitSpec;
  /** In-flight budget for a concurrency: `concurrency × unitSize + prefetch`. */
  budget(concurrency: number): number;
  /** The pipeline as one Observable of outcomes. */
  build(ctx: PipelineContext): Observable<Outcome<T, R>>;
}

/**
 * Defines a pipeline: a demand-driven source on a queue, an optional rate limit and batching, a
 * handler with bounded concurrency, and settlement of every outcome.
 *
 * Intuition: this is a short composition of the operators in `./operators` — read `build` below to
 * see exactly what runs, or copy it to make your own:
 *
 * ```
 * demand ─► source (reserve ≤ demand, rate limit in the same store call)
 *        ─► validate ─► [batch | chunk | adaptiveBatch] ─► processJobs (concurrency c)
 *        ─► settle (acks grouped) ─► outcomes, and request(k) back to demand
 * ```
 *
 * ## Example
 * ```ts
 * const emails = definePipeline<Email, string>({
 *   queue: 'emails',
 *   concurrency: 5,
 *   rateLimit: { allowed: 400, periodMs: 1000 },
 *   timeoutMs: 10_000,
 *   handler: async (job, { signal }) => {
 *     const res = await provider.send(job.data, { signal });
 *     if (res.status === 429) return { snooze: 1000 };
 *     return res.messageId;
 *   },
 * });
 * ```
 */
/* eslint-disable @typescript-eslint/unified-signatures -- a union loses the handler's contextual type */
export function definePipeline<T = unknown, R = unknown>(
  config: SingleJobPipelineConfig<T, R>,
): PipelineDefinition<T, R>;
export function definePipeline<T = unknown, R = unknown>(
  config: BatchPipelineConfig<T, R>,
): PipelineDefinition<T, R>;
/* eslint-enable @typescript-eslint/unified-signatures */
export function definePipeline<T = unknown, R = unknown>(
  config: PipelineConfig<T, R>,
): PipelineDefinition<T, R> {
  assertQueueName(config.queue);
  const name = config.name ?? config.queue;
  const concurrency = config.concurrency ?? 1;
  const leaseMs = config.leaseMs ?? 30_000;
  const prefetch = config.prefetch ?? 0;
  const spec = config.batch;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(
      `pipeline "${name}": concurrency must be an integer ≥ 1, got ${concurrency}`,
    );
  }
  if (!(leaseMs > 0)) throw new InvalidArgumentError(`pipeline "${name}": leaseMs must be > 0`);
  if (!Number.isInteger(prefetch) || prefetch < 0) {
    throw new InvalidArgumentError(`pipeline "${name}": prefetch must be an integer ≥ 0`);
  }
  const unitSize = spec === undefined ? 1 : 'adaptive' in spec ? spec.maxSize : spec.size;
  if (!Number.isInteger(unitSize) || unitSize < 1) {
    throw new InvalidArgumentError(`pipeline "${name}": batch size must be an integer ≥ 1`);
  }
  const perCall = config.rateLimit?.per === 'call';
  if (perCall && (spec === undefined || 'adaptive' in spec)) {
    throw new InvalidArgumentError(
      `pipeline "${name}": a rate limit per call needs a size/time batch ({ size, timeMs })`,
    );
  }
  if (config.rateLimit && prefetch > 0) {
    throw new InvalidArgumentError(
      `pipeline "${name}": prefetch cannot be combined with a rate limit: the limit counts a job when it ` +
        'is reserved, and a prefetched job would start later than counted',
    );
  }
  // With a limit, a size/time batch is formed by the store (fill) and never waits on a local timer:
  // a reserved job starts when it was counted.
  const storeBatches = config.rateLimit !== undefined && spec !== undefined && !('adaptive' in spec);
  const ownValidator = config.schema ? compileSchema(config.schema) : undefined;
  const rateLimitSpec: RateLimitSpec | undefined = config.rateLimit && {
    key: config.rateLimit.key ?? config.queue,
    allowed: config.rateLimit.allowed,
    periodMs: config.rateLimit.periodMs + rateMargin(config.rateLimit),
    per: config.rateLimit.per ?? 'job',
    jobsPerCall: perCall ? unitSize : 1,
  };
  // Jobs waiting out the start alignment (see `alignStartsMs`) hold no handler slot but are in
  // flight: the budget covers what the limit can grant during one alignment.
  const alignMs = config.rateLimit ? startAlignment(config.rateLimit) : 0;
  const aligning = config.rateLimit
    ? Math.ceil((config.rateLimit.allowed * (perCall ? unitSize : 1) * alignMs) / config.rateLimit.periodMs)
    : 0;
  const budget = (c: number): number => c * unitSize + prefetch + aligning;

  const build = (ctx: PipelineContext): Observable<Outcome<T, R>> => {
    const { store, demand, inFlight, logger } = ctx;
    const scheduler = ctx.scheduler;
    const leaseClock = new LeaseClock();
    const margin = config.rateLimit ? rateMargin(config.rateLimit) : 0;
    // Sub-millisecond on the wall clock: two whole-millisecond clocks would spend 2 ms of the margin.
    const clock = { now: preciseNow(scheduler ?? asyncScheduler) };
    /** The reserve call that leased each job, for the start gate. */
    const grants = new WeakMap<ReservedJob, LimitGrant>();
    // Starts may trail their due time by this much (the store call that moves a later one takes a
    // round trip too); with the uncertainty allowed below, start times vary by less than the margin.
    const lateAfterMs = Math.max(1.5, margin * 0.4);
    // The rest of the margin, less half a millisecond for the handler's own first steps, bounds how
    // far a grant's local time may be unknown; a grant known less well than that is moved before it
    // starts.
    const maxUncertaintyMs = Math.max(1.5, margin - lateAfterMs - 0.5);
    /**
     * When a unit counted at `grant.at` (store time) may start: the grant's local time, known to lie
     * within both the call's own round trip and what the clock has learnt, plus the alignment.
     */
    const dueAt = (grant: LimitGrant): { at: number; certain: boolean } => {
      const [earliest, latest] = leaseClock.bounds(grant.at);
      const low = Math.max(earliest, grant.sentAt);
      const slop = localSlop(grant.sentAt, grant.receivedAt);
      const high = Math.min(latest, grant.receivedAt + slop);
      const local = high >= low ? (low + high) / 2 : leaseClock.toLocal(grant.at);
      return {
        // Whole milliseconds on a whole-millisecond clock (a virtual one steps in whole frames).
        at: (slop ? Math.floor(local) : local) + Math.max(alignMs, leaseClock.usualRoundTrip()),
        certain: high >= low && high - low <= maxUncertaintyMs,
      };
    };
    /** A store call whose answer carries the store's time: one more round trip for the clock. */
    const timed = <V>(call: () => Observable<V>, storeAt: (answer: V) => number | undefined) =>
      defer(() => {
        const sentAt = clock.now();
        return call().pipe(
          tap((answer) => {
            const at = storeAt(answer);
            if (at !== undefined) leaseClock.observe(sentAt, clock.now(), at);
          }),
        );
      });
    // The slack of a move counts on the moves' own round trips (one small script), not on the
    // reserves': a reserve that waited behind a busy server would make every moved start cost the
    // limit a whole alignment of room.
    const moveTrips = new RoundTrips(clock.now);
    const rebase = store.rebaseLimit?.bind(store);
    const startGate =
      config.rateLimit && ctx.limiters && rateLimitSpec
        ? {
            dueAt,
            now: clock.now,
            grantOf: (job: ReservedJob): LimitGrant =>
              grants.get(job) ?? { at: job.lease.startedAt, sentAt: clock.now(), receivedAt: clock.now() },
            lateAfterMs,
            ...(rebase
              ? {
                  // A unit moved the first time counts from shortly before the store's now: as
                  // long before as the alignment, less the lateness allowed and the slowest recent
                  // round trip, so a start made as the answer arrives (or a little after) trails
                  // its count by the alignment like every other start, and the handler slot it
                  // holds does not sit idle for a whole alignment. A unit moved again (the answer
                  // was slower than that) counts from now and waits out the whole alignment.
                  rebase: (units: number, grantedAt: number, moves: number) => {
                    const slack = lateAfterMs + moveTrips.recentSlowest();
                    const lag = moves === 0 ? Math.max(0, alignMs - slack) : 0;
                    return timed(
                      () => rebase(config.queue, rateLimitSpec, grantedAt, units, lag),
                      (r) => (r.moved ? r.now : undefined),
                    ).pipe(moveTrips.time());
                  },
                }
              : {}),
            // The store's window (with its margin): the handler reads the clock a moment after the gate.
            limiter: ctx.limiters.get(config.rateLimit.key ?? config.queue, {
              allowed: config.rateLimit.allowed,
              periodMs: config.rateLimit.periodMs + Math.max(1, rateMargin(config.rateLimit)),
            }),
            per: config.rateLimit.per ?? 'job',
          }
        : undefined;
    const runConfig = {
      pipeline: name,
      ...(startGate ? { startGate } : {}),
      logger,
      inFlight,
      ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
      ...(scheduler ? { scheduler } : {}),
      ...(ctx.telemetry ? { telemetry: ctx.telemetry } : {}),
    };
    const limit = rateLimitSpec;
    const sizeTime = spec && !('adaptive' in spec) ? spec : undefined;

    // The handler stage, chosen by the batching mode. Each emits one Handled[] per handler call.
    let run: OperatorFunction<readonly ReservedJob<T>[], readonly Handled<T>[]>;
    if (spec === undefined) {
      const handler = config.handler as Handler<T>;
      run = (jobs$) =>
        jobs$.pipe(
          mergeMap((jobs) => jobs.map((job): WorkUnit<T> => ({ jobs: [job], batch: false }))),
          processJobs(handler, {
            ...runConfig,
            concurrency: ctx.concurrency$,
            maxBuffered: Number.MAX_SAFE_INTEGER,
          }),
        );
    } else {
      const handler = config.handler as BatchHandler<T>;
      if ('adaptive' in spec) {
        run = (jobs$) =>
          jobs$.pipe(
            mergeMap((jobs) => jobs),
            adaptiveBatch((jobs: ReservedJob<T>[]) => runUnit(handler, { jobs, batch: true }, runConfig), {
              maxSize: spec.maxSize,
              concurrency: ctx.concurrency$,
              maxBuffered: Number.MAX_SAFE_INTEGER, // bounded by demand
            }),
          );
      } else if (storeBatches) {
        // The reservation is the batch (per call it was counted as ceil(n / size) calls): keep its
        // chunks intact, so no call holds jobs of two reservations.
        run = (jobs$) =>
          jobs$.pipe(
            mergeMap((jobs) => chunk(jobs, spec.size).map((c): WorkUnit<T> => ({ jobs: c, batch: true }))),
            processJobs(handler, {
              ...runConfig,
              concurrency: ctx.concurrency$,
              maxBuffered: Number.MAX_SAFE_INTEGER,
            }),
          );
      } else {
        run = (jobs$) =>
          jobs$.pipe(
            mergeMap((jobs) => jobs),
            batch<ReservedJob<T>>({
              size: spec.size,
              ...(spec.timeMs === undefined ? {} : { timeMs: spec.timeMs }),
              ...(scheduler ? { scheduler } : {}),
            }),
            map((jobs): WorkUnit<T> => ({ jobs, batch: true })),
            processJobs(handler, {
              ...runConfig,
              concurrency: ctx.concurrency$,
              maxBuffered: Number.MAX_SAFE_INTEGER,
            }),
          );
      }
    }

    const validator = ownValidator ?? ctx.fallbackValidator;
    const flow = source<T>({
      store,
      queue: config.queue,
      demand,
      leaseMs,
      maxBatch: config.maxReserve ?? Math.min(1000, budget(concurrency)),
      ...(perCall ? { multipleOf: unitSize } : {}),
      wakeups: store.wakeups(config.queue),
      paused: ctx.paused$,
      ...(startGate ? { now: clock.now } : {}),
      onReserved: (jobs, sentAt) => {
        inFlight.add(jobs);
        const first = jobs[0];
        if (startGate && first) {
          const grant = { at: first.lease.startedAt, sentAt, receivedAt: clock.now() };
          leaseClock.observe(grant.sentAt, grant.receivedAt, grant.at);
          for (const job of jobs) grants.set(job, grant);
        }
      },
      onError: (error) => {
        logger.warn('reserve failed; backing off', {
          pipeline: name,
          queue: config.queue,
          error: String(error),
        });
      },
      ...(limit ? { limit } : {}),
      ...(storeBatches && sizeTime?.timeMs !== undefined
        ? { fill: { count: sizeTime.size, waitMs: sizeTime.timeMs } }
        : {}),
      ...(config.idle ? { idle: config.idle } : {}),
      ...(scheduler ? { scheduler } : {}),
    }).pipe(
      validate<T>(validator),
      connect((checked$) =>
        merge(
          checked$.pipe(
            map((c) => c.invalid),
            filter((invalid) => invalid.length > 0),
          ),
          checked$.pipe(
            map((c) => c.valid),
            filter((valid) => valid.length > 0),
            // A limited pipeline's reservations wait out the alignment before taking handler slots.
            startGate
              ? alignStarts<T>(
                  (job) => dueAt(startGate.grantOf(job)).at,
                  scheduler ?? asyncScheduler,
                  clock.now,
                )
              : identity,
            run,
          ),
        ),
      ),
      settle<T>({
        store,
        pipeline: name,
        inFlight,
        logger,
        onSettled: (n) => {
          if (n > 0) demand.request(n);
        },
        ...(config.backoff ? { backoff: config.backoff } : {}),
        ...(scheduler ? { scheduler } : {}),
        ...(ctx.telemetry ? { telemetry: ctx.telemetry } : {}),
      }),
    ) as Observable<Outcome<T, R>>;
    const storeTime = store.storeTime?.bind(store);
    if (!startGate || !storeTime) return flow;
    // Before the first reserve under a limit, a few readings of the store's clock: a cold process's
    // first reserves are slow and would teach the clock little, so their grants would all be moved.
    const reading = timed(
      () => storeTime(config.queue),
      (at) => at,
    );
    const readings = concat(...Array.from({ length: CLOCK_READINGS }, () => reading)).pipe(
      ignoreElements(),
      catchError(() => EMPTY), // best effort: reserves teach the clock too
    );
    return concat(readings, flow);
  };

  return {
    name,
    queue: config.queue,
    config,
    concurrency,
    leaseMs,
    unitSize,
    budget,
    build,
    ...(rateLimitSpec ? { rateLimit: rateLimitSpec } : {}),
  };
}

/** The slowest of the last few round trips of one kind of call. */
class RoundTrips {
  private readonly trips: number[] = [];
  private next = 0;
  constructor(
    private readonly now: () => number,
    private readonly size = 8,
  ) {}

  /** Times each subscription to the source until its first value. */
  time<V>(): OperatorFunction<V, V> {
    return (source$) =>
      defer(() => {
        const sentAt = this.now();
        let first = true;
        return source$.pipe(
          tap(() => {
            if (!first) return;
            first = false;
            this.trips[this.next] = this.now() - sentAt;
            this.next = (this.next + 1) % this.size;
          }),
        );
      });
  }

  recentSlowest(): number {
    let max = 0;
    for (const t of this.trips) max = Math.max(max, t);
    return max;
  }
}

/** Store-clock readings a rate-limited pipeline takes before its first reserve. */
const CLOCK_READINGS = 5;

function rateMargin(limit: PipelineRateLimit): number {
  const margin = limit.marginMs ?? Math.min(10, Math.round(limit.periodMs * 0.005));
  if (!(margin >= 0)) throw new InvalidArgumentError(`rateLimit.marginMs must be ≥ 0, got ${margin}`);
  return margin;
}

/** Delays each reservation until its jobs are due (no handler slot is held meanwhile). */
function alignStarts<T>(
  dueAt: (job: ReservedJob<T>) => number,
  scheduler: SchedulerLike,
  now: () => number,
): OperatorFunction<readonly ReservedJob<T>[], readonly ReservedJob<T>[]> {
  return mergeMap((jobs) => {
    const first = jobs[0];
    const wait = first ? dueAt(first) - now() : 0;
    return wait > 0 ? timer(wait, scheduler).pipe(map(() => jobs)) : of(jobs);
  });
}

function startAlignment(limit: PipelineRateLimit): number {
  const align = limit.alignStartsMs ?? Math.min(30, Math.max(5, Math.round(limit.periodMs * 0.03)));
  if (!(align >= 0)) throw new InvalidArgumentError(`rateLimit.alignStartsMs must be ≥ 0, got ${align}`);
  return align;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

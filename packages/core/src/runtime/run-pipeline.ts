import { concat, connect, filter, identity, map, merge, type Observable, type SchedulerLike } from 'rxjs';
import type { Handled, Outcome } from '../model/outcome';
import type { PayloadValidator } from '../model/validation';
import { settle } from '../operators/settle';
import { source } from '../operators/source';
import { localWindow, rateMargin, startTiming } from '../operators/time-starts';
import { validate } from '../operators/validate';
import type { Store } from '../store/store';
import type { Demand } from './demand';
import type { InFlight } from './in-flight';
import { preciseNow } from './lease-clock';
import type { LimiterRegistry } from './limiter';
import type { Logger } from './logger';
import type { PipelineContext, PipelineDefinition } from './pipeline';
import type { Telemetry } from './telemetry';

/** What one run of a pipeline is wired to; the `Worker` makes one per (re)start. */
export interface PipelineRun {
  readonly store: Store;
  readonly demand: Demand;
  readonly inFlight: InFlight;
  readonly concurrency$: Observable<number>;
  readonly paused$: Observable<boolean>;
  /** The most jobs in flight the budget has allowed so far: every stage's buffer bound. */
  readonly maxBuffered: () => number;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly telemetry?: Telemetry;
  /** Checks payloads when the pipeline has no schema of its own (the queue's stored schema). */
  readonly validator: PayloadValidator | undefined;
  /** This process's limiters by key: handler starts of pipelines sharing a key share one. */
  readonly limiters: LimiterRegistry;
}

/**
 * The frame a worker puts around every pipeline's graph: the demand-driven source (leases enter
 * `inFlight`), the schema check (invalid jobs go straight to the dead-letter queue), start timing for
 * rate-limited pipelines, the graph, and `settle` (leases leave `inFlight`, demand comes back).
 *
 * ```
 * demand ─► source ─► validate ─┬─────────────── invalid ───────────────┬─► settle ─► outcomes
 *                               └─► [timeStarts] ─► graph ─► results ───┘
 * ```
 */
export function runPipeline<T>(def: PipelineDefinition<T>, run: PipelineRun): Observable<Outcome> {
  const { store, demand, inFlight, scheduler, logger } = run;
  const limit = def.rateLimit;
  const ctx: PipelineContext = {
    pipeline: def.name,
    concurrency: run.concurrency$,
    maxBuffered: run.maxBuffered,
    scheduler,
    logger,
    inFlight,
    ...(run.telemetry ? { telemetry: run.telemetry } : {}),
  };
  // Start timing reads the store's clock before the source is subscribed: the source is shared by
  // `connect`, and a branch subscribed later would miss the reservations emitted meanwhile.
  const timer =
    limit && def.storeLimit
      ? startTiming({
          store,
          queue: def.queue,
          limit,
          jobsPerCall: def.unitSize,
          limiter: run.limiters.get(def.storeLimit.key ?? def.queue, {
            allowed: limit.allowed,
            periodMs: localWindow(def.storeLimit, rateMargin(limit)),
          }),
          scheduler,
        })()
      : undefined;
  const flow = source<T>({
    store,
    queue: def.queue,
    demand,
    inFlight,
    leaseMs: def.leaseMs,
    maxBatch: def.maxReserve ?? Math.min(1000, def.budget(def.concurrency)),
    ...(limit?.per === 'call' ? { multipleOf: def.unitSize } : {}),
    wakeups: store.wakeups(def.queue),
    paused: run.paused$,
    // Grant times to a fraction of a millisecond: two whole-millisecond readings would spend 2 ms of
    // a limit's margin.
    now: preciseNow(scheduler),
    onError: (error) => {
      logger.warn('reserve failed; backing off', {
        pipeline: def.name,
        queue: def.queue,
        error: String(error),
      });
    },
    ...(def.storeLimit ? { limit: def.storeLimit } : {}),
    ...(def.fill ? { fill: def.fill } : {}),
    ...(def.idle ? { idle: def.idle } : {}),
    scheduler,
  }).pipe(
    validate<T>(run.validator),
    connect((checked$): Observable<readonly Handled[]> =>
      merge(
        checked$.pipe(
          map((c) => c.invalid),
          filter((invalid) => invalid.length > 0),
        ),
        def.graph(
          checked$.pipe(
            map((c) => c.valid),
            filter((valid) => valid.jobs.length > 0),
            timer ? timer.align<T>() : identity,
          ),
          ctx,
        ),
      ),
    ),
    settle({
      store,
      pipeline: def.name,
      inFlight,
      demand,
      logger,
      scheduler,
      maxBuffered: run.maxBuffered,
      ...(def.backoff ? { backoff: def.backoff } : {}),
      ...(run.telemetry ? { telemetry: run.telemetry } : {}),
    }),
  );
  return timer ? concat(timer.warmUp(), flow) : flow;
}

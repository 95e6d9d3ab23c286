import {
  concat,
  connect,
  defer,
  finalize,
  filter,
  identity,
  map,
  merge,
  type Observable,
  type SchedulerLike,
  tap,
} from 'rxjs';
import type { Handled, Outcome } from '../model/outcome';
import type { PayloadValidator } from '../model/validation';
import { settleCalls } from '../operators/settle';
import { source } from '../operators/source';
import {
  maxSlotLead,
  maxRateMargin,
  rateMargin,
  startTiming,
  timingLimit,
  type PipelineRateLimit,
  type StartObserver,
  type StartTimer,
} from '../operators/time-starts';
import { validate } from '../operators/validate';
import type { Store } from '../store/store';
import type { Demand } from './demand';
import type { InFlight } from './in-flight';
import { GrantsAhead } from './grants-ahead';
import { preciseNow } from './lease-clock';
import type { Logger } from './logger';
import type { PipelineContext, PipelineDefinition } from './pipeline';
import type { StartTimingKind, Telemetry } from './telemetry';
import type { JobReporter } from '../model/handler';
import { storeJobReporter } from '../store/job-reporter';

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
 *
 * The outcomes come out in lists, one per store call (`settleCalls`), never empty: the worker
 * hands each on by itself.
 */
export function runPipeline<T>(def: PipelineDefinition<T>, run: PipelineRun): Observable<readonly Outcome[]> {
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
    ...withReporter(storeJobReporter(store)),
  };
  // Start timing reads the store's clock before the source is subscribed: the source is shared by
  // `connect`, and a branch subscribed later would miss the reservations emitted meanwhile.
  // A group rate limit gets the start gate too, with or without a pipeline limit.
  const groupLimit = def.groups?.rateLimit;
  const timed =
    (limit && def.storeLimit) || groupLimit
      ? timingLimit({ ...(limit ? { limit } : {}), ...(groupLimit ? { groupLimit } : {}) })
      : undefined;
  // Start timing, and the jobs granted ahead of their slots kept within what the handlers take
  // (see GrantsAhead), told how long units waited for a handler by the start gate.
  let timer: StartTimer | undefined;
  let ahead: GrantsAhead | undefined;
  if (timed) {
    const report = startTimingReport(def.name, def.queue, def.storeLimit?.key ?? def.queue, timed, run);
    const grants = new GrantsAhead({
      demand,
      most: (c) => def.aheadOf(c),
      unitSize: def.unitSize,
      waitMs: Math.max(1, (rateMargin(timed) - 2) / 2),
      concurrency: def.concurrency,
      changed: (jobs) => {
        report.ahead(jobs);
      },
    });
    ahead = grants;
    timer = startTiming({
      store,
      queue: def.queue,
      ...(limit ? { limit } : {}),
      ...(groupLimit ? { groupLimit } : {}),
      jobsPerCall: def.unitSize,
      scheduler,
      observer: {
        ...report,
        waited: (ms) => {
          grants.waited(ms);
        },
      },
    })();
  }
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
    // Grant times on the clock starts are checked on, to a fraction of a millisecond where it can.
    now: timer?.now ?? preciseNow(scheduler),
    ...(timer ? { slotLead: timer } : {}),
    // Each unit starts at its own slot: a job, or a call under a per-call limit (a batch of per-job
    // units starts once, at its first unit's slot, so its slots stay together).
    ...(timer && (limit?.per === 'call' || def.unitSize === 1) ? { slotSpread: true } : {}),
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
    ...(def.globalConcurrency !== undefined ? { maxActive: def.globalConcurrency } : {}),
    ...(def.groups ? { groups: def.groups } : {}),
    scheduler,
  }).pipe(
    validate<T>(run.validator),
    connect((checked$): Observable<readonly Handled[]> =>
      merge(
        checked$.pipe(
          map((c) => c.invalid),
          filter((invalid) => invalid.length > 0),
        ),
        def
          .graph(
            checked$.pipe(
              map((c) => c.valid),
              filter((valid) => valid.jobs.length > 0),
              timer ? timer.align<T>() : identity,
            ),
            ctx,
          )
          .pipe(
            timer
              ? tap((handled) => {
                  pauseOnRefusal(handled, timer);
                })
              : identity,
          ),
      ),
    ),
    settleCalls({
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
  if (!timer || !ahead) return flow;
  return defer(() => {
    // The worker adjusts the demand by the whole budget when the concurrency changes; the jobs held
    // back from the lead follow it.
    const concurrency = run.concurrency$.subscribe((c) => {
      ahead.concurrencyChanged(c);
    });
    return concat(timer.warmUp(), flow).pipe(
      finalize(() => {
        concurrency.unsubscribe();
      }),
    );
  });
}

/** A handler said the provider refused (`{ retryAfter }`): pause the limit for that long. */
function pauseOnRefusal(handled: readonly Handled[], timer: StartTimer): void {
  for (const h of handled) {
    if (h.status === 'snoozed' && h.pauseLimitMs !== undefined) timer.pause(h.pauseLimitMs);
  }
}

/**
 * Reports a limited pipeline's start timing as `start-timing` telemetry events, and warns once each
 * time the lead reaches its cap (answers slower than `maxLeadMs`: slots come before their
 * reservations arrive, and starts are moved) or the margin reaches its cap (requests leave later
 * than `maxMarginMs` allows for).
 */
function startTimingReport(
  pipeline: string,
  queue: string,
  key: string,
  limit: PipelineRateLimit,
  run: PipelineRun,
): StartObserver & { ahead(aheadJobs: number): void } {
  let marginMs = rateMargin(limit);
  const maxMargin = maxRateMargin(limit);
  const maxLead = maxSlotLead(limit);
  let leadMs = Math.min(5, maxLead);
  let capped = false;
  let marginCapped = false;
  const emit = (
    kind: StartTimingKind,
    lateMs: number,
    reason?: string,
    pauseMs?: number,
    aheadJobs?: number,
  ): void => {
    const telemetry = run.telemetry;
    if (!telemetry?.observed) return;
    telemetry.emit({
      type: 'start-timing',
      queue,
      at: run.scheduler.now(),
      pipeline,
      key,
      kind,
      lateMs,
      leadMs,
      marginMs,
      capped,
      marginCapped,
      ...(reason === undefined ? {} : { reason }),
      ...(pauseMs === undefined ? {} : { pauseMs }),
      ...(aheadJobs === undefined ? {} : { aheadJobs }),
    });
  };
  return {
    started: (lateMs) => {
      emit('started', lateMs);
    },
    moved: (lateMs) => {
      emit('moved', lateMs);
    },
    handedBack: (reason) => {
      emit('handed-back', 0, reason);
    },
    paused: (ms, here) => {
      emit('paused', 0, here ? 'a handler here reported a refusal' : 'paused by another process', ms);
    },
    sent: (lateMs) => {
      emit('sent', lateMs);
    },
    corrected: (lateMs, _units, movedMs) => {
      emit('corrected', lateMs, movedMs < 0 ? 'the store could not move the units' : undefined);
    },
    margin: (ms, atCap) => {
      marginMs = ms;
      if (atCap && !marginCapped) {
        run.logger.warn(
          'rate-limit margin at its cap: requests leave later after their slots than maxMarginMs allows for; a provider may count more than allowed in a window',
          { pipeline, key, maxMarginMs: maxMargin },
        );
      }
      marginCapped = atCap;
      emit('margin', 0);
    },
    lead: (ms, atCap) => {
      leadMs = ms;
      if (atCap && !capped) {
        run.logger.warn('rate-limit lead at its cap: answers arrive later than maxLeadMs, starts get moved', {
          pipeline,
          key,
          maxLeadMs: maxLead,
        });
      }
      capped = atCap;
      emit('lead', 0);
    },
    ahead: (aheadJobs) => {
      emit('ahead', 0, undefined, undefined, aheadJobs);
    },
  };
}

function withReporter(reportJob: JobReporter | undefined): { reportJob?: JobReporter } {
  return reportJob ? { reportJob } : {};
}

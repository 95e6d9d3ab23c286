import { defer, EMPTY, type Observable, Subject, tap, throwError } from 'rxjs';
import { StoreError, type ErrorInfo } from '../model/errors';
import type { OutcomeKind } from '../model/outcome';
import type { JobRecord, JobState, NewJob, TraceContext } from '../model/job';
import type { SettleResult, Settlement } from '../model/outcome';
import type {
  CancelResult,
  EnqueueResult,
  ExtendResult,
  JobEvent,
  LeaseRef,
  ListOptions,
  MinuteBucket,
  QueueConfig,
  QueueSettings,
  QueueStats,
  LimitPause,
  RateLimitNumbers,
  RateLimitSpec,
  RebaseResult,
  RecoverResult,
  ReserveOptions,
  ReserveResult,
  Store,
  WorkerInfo,
  HandoffChannel,
} from '../store/store';

/**
 * Typed telemetry events. Every event carries `type`, `queue` and `at` (ms, the emitter's clock).
 *
 * | event | measurements | metadata |
 * |---|---|---|
 * | `enqueue` | `count`, `duplicates`, `durationMs` | `queue` |
 * | `reserve` | `requested`, `reserved`, `durationMs` | `queue`, `paused`, `retryAfterMs` |
 * | `rate-limited` | `retryAfterMs` | `queue`, `key` |
 * | `rejected` | — | `queue`, `jobId`, `reason` (malformed job dead-lettered at reserve) |
 * | `start` | `jobs` (1, or the batch size), `waitMs` (due → leased) | `queue`, `pipeline`, `jobIds`, `attempt`, `traces?` (producers' trace contexts) |
 * | `start-timing` | `lateMs`, `leadMs`, `marginMs`, `pauseMs?` | `queue`, `pipeline`, `key`, `kind` (`started`, `moved`, `handed-back`, `lead`, `paused`, `sent`, `corrected`, `margin`), `capped`, `marginCapped`, `reason?` (rate-limited pipelines: how late starts ran against their slots, moves, hand-backs, the lead new slots get, pauses after a provider refused, how late requests left, late requests moved in the log to when they left, the margin) |
 * | `stop` | `durationMs` | `queue`, `pipeline`, `jobId`, `kind` (the outcome) |
 * | `exception` | `durationMs` | `queue`, `pipeline`, `jobId`, `error` |
 * | `settle-refused` | — | `queue`, `jobId`, `reason` (`lease-lost`, `not-found`) |
 * | `demand` | `outstanding`, `inFlight` | `queue`, `pipeline` |
 * | `action` | — | `queue`, `action`, `jobId?`, `actor?` (administrative actions: retry, purge, pause …) |
 */
export type TelemetryEvent =
  | (Base & { type: 'enqueue'; count: number; duplicates: number; durationMs: number })
  | (Base & {
      type: 'reserve';
      requested: number;
      reserved: number;
      durationMs: number;
      paused: boolean;
      retryAfterMs?: number;
    })
  | (Base & { type: 'rate-limited'; key: string; retryAfterMs: number })
  | (Base & { type: 'rejected'; jobId: string; reason: string })
  | (Base & {
      type: 'start';
      pipeline: string;
      jobIds: readonly string[];
      jobs: number;
      attempt: number;
      /** From the moment the (first) job became due to its lease start, on the store's clock. */
      waitMs: number;
      /**
       * The producers' trace contexts (`JobOptions.trace`), one per id of `jobIds` (`null` for a job
       * added without one); present only when some job has one. A tracing bridge parents or links
       * the job's span to them.
       */
      traces?: readonly (TraceContext | null)[];
    })
  | (Base & {
      type: 'start-timing';
      pipeline: string;
      /** The rate-limit key. */
      key: string;
      /**
       * `started`: a unit started, `lateMs` after its slot surely came; `moved`: it missed its margin
       * by that much and was moved to a new slot; `handed-back`: it could not be placed (`reason`) and
       * went back to the queue; `lead`: new slots now go `leadMs` ahead (`capped` when the measured
       * need is above `maxLeadMs`); `paused`: a provider refused (`{ retryAfter }`), here or in
       * another process, and no unit starts for `pauseMs`; `sent`: a handler's request left
       * `lateMs` (at most) after its slot (`ctx.limit.sent()`); `margin`: the margin asked of the
       * store is now `marginMs` (`marginCapped` when what was observed wants more than
       * `maxMarginMs`); `ahead`: the limit may now grant `aheadJobs` jobs ahead of their slots
       * (fewer, down to 0, while units whose slots came wait for a busy handler).
       */
      kind: StartTimingKind;
      lateMs: number;
      leadMs: number;
      marginMs: number;
      /** The lead is at its cap. */
      capped: boolean;
      /** The margin is at its cap. */
      marginCapped: boolean;
      reason?: string;
      pauseMs?: number;
      /** `ahead`: the jobs the limit may grant ahead of their slots now. */
      aheadJobs?: number;
    })
  | (Base & { type: 'stop'; pipeline: string; jobId: string; kind: OutcomeKind; durationMs: number })
  | (Base & { type: 'exception'; pipeline: string; jobId: string; error: ErrorInfo; durationMs: number })
  | (Base & { type: 'settle-refused'; jobId: string; reason: string })
  | (Base & { type: 'demand'; pipeline: string; outstanding: number; inFlight: number })
  | (Base & { type: 'action'; action: string; jobId?: string; actor?: string; detail?: string });

/** What a `start-timing` event reports (see {@link TelemetryEvent}). */
export type StartTimingKind =
  'started' | 'moved' | 'handed-back' | 'lead' | 'paused' | 'sent' | 'corrected' | 'margin' | 'ahead';

interface Base {
  queue: string;
  at: number;
}

export type TelemetryEventType = TelemetryEvent['type'];

/**
 * A hub of telemetry events, exposed as a hot Observable. Emitting never throws into the caller: a
 * subscriber that throws is reported by RxJS, not by the pipeline that emitted.
 *
 * ## Example
 * ```ts
 * const telemetry = new Telemetry();
 * telemetry.events$.pipe(filter((e) => e.type === 'rate-limited')).subscribe((e) => console.log(e));
 * const worker = new Worker({ store, pipelines, telemetry });
 * ```
 */
export class Telemetry {
  private readonly subject = new Subject<TelemetryEvent>();
  readonly events$: Observable<TelemetryEvent> = this.subject.asObservable();

  /** Whether anyone listens; emitters skip building events when no one does. */
  get observed(): boolean {
    return this.subject.observed;
  }

  emit(event: TelemetryEvent): void {
    if (this.subject.observed) this.subject.next(event);
  }
}

/**
 * Wraps any store so its pipeline-facing calls emit telemetry: `enqueue`, `reserve`, `rate-limited`,
 * `rejected` and `settle-refused`. Stores themselves never emit; this is the one place that does.
 */
export function instrumentStore(
  store: Store,
  telemetry: Telemetry,
  now: () => number,
  workerId?: string,
): Store {
  return new InstrumentedStore(store, telemetry, now, workerId);
}

class InstrumentedStore implements Store {
  // Optional capabilities pass straight through, present only when the inner store has them.
  declare readonly updateJob?: NonNullable<Store['updateJob']>;
  declare readonly jobUpdates?: NonNullable<Store['jobUpdates']>;
  declare readonly updateQueueConfig?: NonNullable<Store['updateQueueConfig']>;
  declare readonly drain?: NonNullable<Store['drain']>;
  declare readonly obliterate?: NonNullable<Store['obliterate']>;
  declare readonly openHandoffs?: NonNullable<Store['openHandoffs']>;

  constructor(
    private readonly inner: Store,
    private readonly telemetry: Telemetry,
    private readonly now: () => number,
    /** Named on every reserve that does not name a worker itself (a `Worker`'s id). */
    private readonly workerId?: string,
  ) {
    if (inner.updateJob) this.updateJob = inner.updateJob.bind(inner);
    if (inner.jobUpdates) this.jobUpdates = inner.jobUpdates.bind(inner);
    if (inner.updateQueueConfig) this.updateQueueConfig = inner.updateQueueConfig.bind(inner);
    if (inner.drain) this.drain = inner.drain.bind(inner);
    if (inner.obliterate) this.obliterate = inner.obliterate.bind(inner);
    const openHandoffs = inner.openHandoffs?.bind(inner);
    if (openHandoffs) {
      // A handoff leases jobs as a reserve does: reported as one that took no time.
      this.openHandoffs = <T>(queue: string, parkId: string): HandoffChannel<T> => {
        const channel = openHandoffs<T>(queue, parkId);
        return {
          ...channel,
          handoffs: channel.handoffs.pipe(
            tap((handoff) => {
              if (!this.telemetry.observed) return;
              const at = this.now();
              this.leased(queue, at, handoff.parked, { ...handoff, paused: false }, 0);
            }),
          ),
        };
      };
    }
  }

  get kind(): string {
    return this.inner.kind;
  }

  /** As the inner store's: `settle` below sends the inner settle when it is subscribed. */
  get settlesInOrder(): boolean {
    return this.inner.settlesInOrder === true;
  }

  enqueue(jobs: readonly NewJob[]): Observable<readonly EnqueueResult[]> {
    return defer(() => {
      const started = this.now();
      return this.inner.enqueue(jobs).pipe(
        tap((results) => {
          if (!this.telemetry.observed) return;
          const byQueue = new Map<string, { count: number; duplicates: number }>();
          results.forEach((r, i) => {
            const queue = jobs[i]?.queue ?? '';
            const agg = byQueue.get(queue) ?? { count: 0, duplicates: 0 };
            agg.count++;
            if (r.duplicate) agg.duplicates++;
            byQueue.set(queue, agg);
          });
          const at = this.now();
          for (const [queue, agg] of byQueue) {
            this.telemetry.emit({ type: 'enqueue', queue, at, durationMs: at - started, ...agg });
          }
        }),
      );
    });
  }

  reserve<T = unknown>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> {
    return defer(() => {
      const started = this.now();
      const named =
        this.workerId === undefined || options.workerId !== undefined
          ? options
          : { ...options, workerId: this.workerId };
      return this.inner.reserve<T>(queue, n, named).pipe(
        tap((result) => {
          if (!this.telemetry.observed) return;
          const at = this.now();
          this.leased(queue, at, n, result, at - started);
          if (result.retryAfterMs !== undefined && options.limit) {
            this.telemetry.emit({
              type: 'rate-limited',
              queue,
              at,
              key: options.limit.key ?? queue,
              retryAfterMs: result.retryAfterMs,
            });
          }
        }),
      );
    });
  }

  /** A reserve's answer (or a handoff's): its `reserve` event and its rejected jobs. */
  private leased(
    queue: string,
    at: number,
    requested: number,
    result: Pick<ReserveResult, 'jobs' | 'paused' | 'rejected' | 'retryAfterMs'>,
    durationMs: number,
  ): void {
    this.telemetry.emit({
      type: 'reserve',
      queue,
      at,
      requested,
      reserved: result.jobs.length,
      durationMs,
      paused: result.paused,
      ...(result.retryAfterMs === undefined ? {} : { retryAfterMs: result.retryAfterMs }),
    });
    for (const r of result.rejected) {
      this.telemetry.emit({ type: 'rejected', queue, at, jobId: r.id, reason: r.reason });
    }
  }

  settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    return this.inner.settle(settlements).pipe(
      tap((results) => {
        results.forEach((r, i) => {
          if (!r.applied) {
            this.telemetry.emit({
              type: 'settle-refused',
              queue: settlements[i]?.queue ?? '',
              at: this.now(),
              jobId: r.id,
              reason: r.reason,
            });
          }
        });
      }),
    );
  }

  extendLeases(queue: string, leases: readonly LeaseRef[], leaseMs: number): Observable<ExtendResult> {
    return this.inner.extendLeases(queue, leases, leaseMs);
  }
  recoverExpired(queue: string): Observable<RecoverResult> {
    return this.inner.recoverExpired(queue);
  }
  wakeups(queue: string): Observable<void> {
    return this.inner.wakeups(queue);
  }
  cancellations(queue: string): Observable<string> {
    return this.inner.cancellations(queue);
  }
  settings(queue: string): Observable<QueueSettings> {
    return this.inner.settings(queue);
  }
  events(queue: string): Observable<JobEvent> {
    return this.inner.events(queue);
  }
  queueConfig(queue: string): Observable<QueueConfig> {
    return this.inner.queueConfig(queue);
  }
  pause(queue: string): Promise<void> {
    return this.action(queue, 'pause', () => this.inner.pause(queue));
  }
  resume(queue: string): Promise<void> {
    return this.action(queue, 'resume', () => this.inner.resume(queue));
  }
  setConcurrency(queue: string, concurrency: number | undefined): Promise<void> {
    return this.action(
      queue,
      'set-concurrency',
      () => this.inner.setConcurrency(queue, concurrency),
      undefined,
      String(concurrency),
    );
  }
  cancel(queue: string, id: string): Promise<CancelResult> {
    return this.action(queue, 'cancel', () => this.inner.cancel(queue, id), id);
  }
  getJob<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | undefined> {
    return this.inner.getJob<T>(queue, id);
  }
  listJobs(queue: string, state: JobState, options?: ListOptions): Promise<readonly JobRecord[]> {
    return this.inner.listJobs(queue, state, options);
  }
  retryJobs(queue: string, ids: readonly string[] | 'all-dead'): Promise<number> {
    return this.action(
      queue,
      'retry',
      () => this.inner.retryJobs(queue, ids),
      ids === 'all-dead' ? undefined : ids.join(','),
    );
  }
  promoteJob(queue: string, id: string): Promise<boolean> {
    return this.action(queue, 'promote', () => this.inner.promoteJob(queue, id), id);
  }
  removeJob(queue: string, id: string): Promise<boolean> {
    return this.action(queue, 'remove', () => this.inner.removeJob(queue, id), id);
  }
  purge(queue: string, state: 'dead' | 'completed' | 'cancelled'): Promise<number> {
    return this.action(queue, 'purge', () => this.inner.purge(queue, state), undefined, state);
  }
  stats(queue: string): Promise<QueueStats> {
    return this.inner.stats(queue);
  }
  history(queue: string, minutes: number): Promise<readonly MinuteBucket[]> {
    return this.inner.history(queue, minutes);
  }
  queues(): Promise<readonly string[]> {
    return this.inner.queues();
  }
  getQueueConfig(queue: string): Promise<QueueConfig> {
    return this.inner.getQueueConfig(queue);
  }
  setQueueConfig(queue: string, config: QueueConfig): Promise<void> {
    return this.inner.setQueueConfig(queue, config);
  }
  reportWorker(info: Omit<WorkerInfo, 'lastSeenAt'>, ttlMs: number): Promise<void> {
    return this.inner.reportWorker ? this.inner.reportWorker(info, ttlMs) : Promise.resolve();
  }
  workers(): Promise<readonly WorkerInfo[]> {
    return this.inner.workers ? this.inner.workers() : Promise.resolve([]);
  }
  rebaseLimit(
    queue: string,
    limit: RateLimitSpec,
    from: number,
    units: number,
    leadMs?: number,
  ): Observable<RebaseResult> {
    if (!this.inner.rebaseLimit) {
      return throwError(
        () => new StoreError('this store cannot move rate-limit counts (no rebaseLimit)', { queue }),
      );
    }
    return this.inner.rebaseLimit(queue, limit, from, units, leadMs);
  }
  refundLimit(queue: string, limit: RateLimitSpec, at: number, units: number): Observable<void> {
    if (!this.inner.refundLimit) {
      return throwError(
        () => new StoreError('this store cannot give rate-limit units back (no refundLimit)', { queue }),
      );
    }
    return this.inner.refundLimit(queue, limit, at, units);
  }
  pauseLimit(queue: string, limit: RateLimitSpec, ms: number): Observable<LimitPause> {
    if (!this.inner.pauseLimit) {
      return throwError(
        () => new StoreError('this store cannot pause rate limits (no pauseLimit)', { queue }),
      );
    }
    return this.inner.pauseLimit(queue, limit, ms);
  }
  setRateLimit(queue: string, key: string, numbers: RateLimitNumbers | null): Promise<void> {
    if (!this.inner.setRateLimit) {
      return Promise.reject(new StoreError('this store cannot set rate limits (no setRateLimit)', { queue }));
    }
    return this.inner.setRateLimit(queue, key, numbers);
  }
  getRateLimit(queue: string, key: string): Promise<RateLimitNumbers | null> {
    return this.inner.getRateLimit ? this.inner.getRateLimit(queue, key) : Promise.resolve(null);
  }
  limitPauses(queue: string, limit: RateLimitSpec): Observable<number> {
    // A store that cannot pause limits never announces a pause.
    return this.inner.limitPauses ? this.inner.limitPauses(queue, limit) : EMPTY;
  }
  storeTime(queue: string): Observable<number> {
    // A store without its own clock answers nothing: the worker then learns from its reserves only.
    return this.inner.storeTime ? this.inner.storeTime(queue) : EMPTY;
  }
  rateLimitUsage(queue: string, key: string, periodMs: number): Promise<number> {
    return this.inner.rateLimitUsage ? this.inner.rateLimitUsage(queue, key, periodMs) : Promise.resolve(0);
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  private async action<R>(
    queue: string,
    action: string,
    fn: () => Promise<R>,
    jobId?: string,
    detail?: string,
  ): Promise<R> {
    const result = await fn();
    this.telemetry.emit({
      type: 'action',
      queue,
      at: this.now(),
      action,
      ...(jobId === undefined ? {} : { jobId }),
      ...(detail === undefined ? {} : { detail }),
    });
    return result;
  }
}

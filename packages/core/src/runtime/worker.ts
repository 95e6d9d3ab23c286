import {
  asyncScheduler,
  BehaviorSubject,
  catchError,
  combineLatest,
  defer,
  distinctUntilChanged,
  EMPTY,
  exhaustMap,
  firstValueFrom,
  map,
  type Observable,
  race,
  type SchedulerLike,
  Subject,
  Subscription,
  timer,
  filter,
  take,
  tap,
  shareReplay,
  startWith,
  of,
} from 'rxjs';
import { hostname } from 'node:os';
import { parseCron, type CronExpression } from './cron';
import { Demand } from './demand';
import { InvalidArgumentError, toErrorInfo, WorkerStateError } from '../model/errors';
import { InFlight } from './in-flight';
import { createLogger, type Logger } from './logger';
import type { PipelineDefinition } from './pipeline';
import { runPipeline } from './run-pipeline';
import type { NewJob } from '../model/job';
import type { Outcome, Settlement } from '../model/outcome';
import type { QueueConfig, QueueSettings, Store } from '../store/store';
import { instrumentStore, Telemetry, type TelemetryEvent } from './telemetry';
import { compileSchema, type PayloadValidator } from '../model/validation';
import { Hub } from '../util/hub';
import { helperThreads, type HelperThreadsPolicy } from './helper-threads';
import { NONE } from '../util/none';

export interface WorkerConfig {
  readonly store: Store;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- definitions of any payload type
  readonly pipelines: readonly PipelineDefinition<any, any>[];
  /** Default: winston JSON on stderr at `LOG_LEVEL`. */
  readonly logger?: Logger;
  /** Receives telemetry from the store wrapper and every pipeline. Default: a private hub. */
  readonly telemetry?: Telemetry;
  /** Clock and timers for every stage. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** How often this worker recovers expired leases of its queues. Default: half the shortest lease. */
  readonly recoverEveryMs?: number;
  /** Restart a pipeline this long after an unexpected stream error. Default `1000`. */
  readonly restartDelayMs?: number;
  /** How often the worker reports itself to the store (dashboards list live workers). Default `5000`. */
  readonly reportEveryMs?: number;
  /** Identifies this worker in reports. Default: `<host>:<pid>:<random>`. */
  readonly id?: string;
  /**
   * How often the worker reads its queues' recurring schedules and adds the ticks due within the next
   * two periods (each tick once across all workers). Default `1000`.
   */
  readonly scheduleEveryMs?: number;
  /**
   * The helper threads of this Node.js process (V8's optimizing compiler and garbage-collector
   * helpers). `'adaptive'` (default): on Linux, while this process's event loop and the machine's
   * cores are lightly loaded, they run under `SCHED_IDLE`, so the thread that starts jobs never waits
   * behind a compile on its core (in a new worker on 2 vCPUs at 500 jobs/s, those waits made the
   * 99th percentile of job starts about 1.3 ms instead of 0.4–0.6 ms); when either is busy, and
   * once every worker of the process has closed, they run normally again. Uses `chrt`; without it,
   * or off Linux, nothing changes. `'normal'`: left alone. See `HelperThreads`.
   */
  readonly helperThreads?: HelperThreadsPolicy;
}

export interface CloseOptions {
  /**
   * How long in-flight jobs may take to finish and settle. Past it, their handlers are aborted and
   * their jobs are left to lease recovery. Default `30_000`.
   */
  readonly timeoutMs?: number;
}

export interface CloseResult {
  /** Every in-flight job finished and settled before the timeout. */
  readonly drained: boolean;
  /** Jobs still leased when the timeout hit; another worker recovers them when their lease expires. */
  readonly abandoned: number;
}

/** Live numbers of one pipeline. */
export interface PipelineStatus {
  readonly name: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly paused: boolean;
  /** Jobs reserved and not yet settled. */
  readonly inFlight: number;
  /** The largest `inFlight` seen. */
  readonly maxInFlight: number;
  /** Demand the source may still use. */
  readonly outstanding: number;
  readonly budget: number;
}

/** A handle on one pipeline of a started worker. */
export interface PipelineHandle<T = unknown, R = unknown> {
  readonly name: string;
  /** Hot: every outcome of this pipeline, completing when the worker closes. */
  readonly outcomes$: Observable<Outcome<T, R>>;
  /** Stops this worker's pipeline from starting jobs (in-flight jobs finish). Other nodes are unaffected; see `store.pause`. */
  pause(): void;
  resume(): void;
  /** Changes this worker's concurrency for the pipeline; `undefined` returns to the store's or the configured value. */
  setConcurrency(concurrency: number | undefined): void;
  status(): PipelineStatus;
}

interface Runtime {
  readonly def: PipelineDefinition;
  readonly outcomes: Hub<Outcome>;
  readonly localPaused: BehaviorSubject<boolean>;
  readonly localConcurrency: BehaviorSubject<number | undefined>;
  readonly done: Subject<void>;
  demand: Demand;
  inFlight: InFlight;
  concurrency: number;
  /** The largest budget the pipeline has had: the bound of every buffer in it. */
  maxBudget: number;
  paused: boolean;
  completed: boolean;
  subscription: Subscription;
}

type State = 'idle' | 'running' | 'closing' | 'closed';

/** A tick's unique lock outlives any clock skew between the workers that may add it. */
const CRON_LOCK_TTL_MS = 3_600_000;

/**
 * Runs pipelines against a store: subscribes them, renews the leases of running jobs, recovers jobs
 * orphaned by crashed workers, routes cancellations, obeys pause/resume and concurrency changes made
 * from any process, and drains gracefully.
 *
 * ## Example
 * ```ts
 * const worker = new Worker({ store, pipelines: [emails, alerts] });
 * worker.outcomes$.subscribe((o) => console.log(o.pipeline, o.kind, o.job.id));
 * worker.start();
 * process.on('SIGTERM', () => void worker.close({ timeoutMs: 25_000 }));
 * ```
 */
export class Worker {
  private readonly store: Store;
  private readonly logger: Logger;
  private readonly telemetry: Telemetry;
  private readonly scheduler: SchedulerLike;
  private readonly runtimes = new Map<string, Runtime>();
  private readonly background = new Subscription();
  private readonly allOutcomes = new Hub<Outcome>();
  /** One subscription per queue to its settings and its stored configuration, shared by every user. */
  private readonly settingsByQueue = new Map<string, Observable<QueueSettings>>();
  private readonly configByQueue = new Map<string, Observable<QueueConfig>>();

  private shared<V>(
    cache: Map<string, Observable<V>>,
    queue: string,
    create: () => Observable<V>,
  ): Observable<V> {
    let o = cache.get(queue);
    if (!o) {
      o = create().pipe(shareReplay({ bufferSize: 1, refCount: true }));
      cache.set(queue, o);
    }
    return o;
  }
  /** Local start-time checks of rate limits, shared by key between this worker's pipelines. */
  private readonly restartDelayMs: number;
  private readonly recoverEveryMs: number;
  private state: State = 'idle';
  private readonly reportEveryMs: number;
  private readonly scheduleEveryMs: number;
  private readonly startedAt: number;
  private readonly helperThreadsPolicy: HelperThreadsPolicy;
  /** Gives the process's helper threads back (set while the worker runs with the adaptive policy). */
  private releaseHelperThreads: (() => void) | undefined;
  /** This worker's id in reports to the store. */
  readonly id: string;

  /** Hot: the outcomes of every pipeline of this worker; completes when the worker closes. */
  readonly outcomes$: Observable<Outcome> = this.allOutcomes.observable;

  constructor(config: WorkerConfig) {
    this.logger = config.logger ?? createLogger();
    this.telemetry = config.telemetry ?? new Telemetry();
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.id = config.id ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
    this.store = instrumentStore(config.store, this.telemetry, () => this.scheduler.now(), this.id);
    this.restartDelayMs = config.restartDelayMs ?? 1000;
    this.reportEveryMs = config.reportEveryMs ?? 5000;
    this.scheduleEveryMs = config.scheduleEveryMs ?? 1000;
    this.startedAt = this.scheduler.now();
    this.helperThreadsPolicy = config.helperThreads ?? 'adaptive';
    const shortestLease = Math.min(...config.pipelines.map((p) => p.leaseMs));
    this.recoverEveryMs = config.recoverEveryMs ?? Math.max(100, Math.floor(shortestLease / 2));
    if (config.pipelines.length === 0) throw new InvalidArgumentError('a worker needs at least one pipeline');
    for (const def of config.pipelines) {
      if (this.runtimes.has(def.name)) {
        throw new InvalidArgumentError(`two pipelines are named "${def.name}"; give one a distinct name`);
      }
      this.runtimes.set(def.name, {
        def,
        outcomes: new Hub(),
        localPaused: new BehaviorSubject(false),
        localConcurrency: new BehaviorSubject<number | undefined>(undefined),
        done: new Subject(),
        demand: new Demand({ initial: 0 }),
        inFlight: new InFlight(),
        concurrency: def.concurrency,
        maxBudget: def.budget(def.concurrency),
        paused: false,
        completed: false,
        subscription: new Subscription(),
      });
    }
  }

  /** The telemetry hub this worker emits on. */
  get events$(): Observable<TelemetryEvent> {
    return this.telemetry.events$;
  }

  /** Starts every pipeline, heartbeats and the recovery loop. */
  start(): this {
    if (this.state !== 'idle') throw new WorkerStateError(`cannot start a worker that is ${this.state}`);
    this.state = 'running';
    for (const rt of this.runtimes.values()) this.startPipeline(rt);
    const queues = new Set([...this.runtimes.values()].map((rt) => rt.def.queue));
    for (const queue of queues) this.background.add(this.recoveryLoop(queue));
    this.background.add(this.reportLoop());
    if (this.helperThreadsPolicy === 'adaptive')
      this.releaseHelperThreads = helperThreads.acquire(this.logger);
    for (const queue of queues) this.background.add(this.scheduleLoop(queue));
    this.logger.info('worker started', {
      store: this.store.kind,
      pipelines: [...this.runtimes.keys()],
    });
    return this;
  }

  /**
   * A handle on one pipeline, by its definition (its payload and result types carry over) or by
   * name. Throws for a pipeline this worker does not run.
   */
  pipeline<T = unknown, R = unknown>(which: string | PipelineDefinition<T, R>): PipelineHandle<T, R> {
    const name = typeof which === 'string' ? which : which.name;
    const rt = this.runtimes.get(name);
    if (!rt) throw new InvalidArgumentError(`no pipeline named "${name}"`);
    return {
      name,
      outcomes$: rt.outcomes.observable as unknown as Observable<Outcome<T, R>>,
      pause: () => {
        rt.localPaused.next(true);
      },
      resume: () => {
        rt.localPaused.next(false);
      },
      setConcurrency: (c) => {
        if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
          throw new InvalidArgumentError(`concurrency must be an integer ≥ 1, got ${c}`);
        }
        rt.localConcurrency.next(c);
      },
      status: () => ({
        name,
        queue: rt.def.queue,
        concurrency: rt.concurrency,
        paused: rt.paused,
        inFlight: rt.inFlight.size,
        maxInFlight: rt.inFlight.maxSize,
        outstanding: rt.demand.outstanding,
        budget: rt.def.budget(rt.concurrency),
      }),
    };
  }

  /** Pauses every pipeline of this worker (in-flight jobs finish). */
  pause(): void {
    for (const rt of this.runtimes.values()) rt.localPaused.next(true);
  }

  resume(): void {
    for (const rt of this.runtimes.values()) rt.localPaused.next(false);
  }

  /**
   * Drains: stops reserving, lets in-flight jobs finish and settle, then stops heartbeats. Past
   * `timeoutMs` handlers are aborted and their jobs left to lease recovery. Nothing is lost either way.
   * Does not close the store.
   */
  close(options: CloseOptions = {}): Promise<CloseResult> {
    return firstValueFrom(this.drain(options));
  }

  /**
   * {@link close} as an Observable (usable in virtual time). Every call shares the first drain: a second
   * `close()` (SIGTERM then SIGINT, say) waits for the same result rather than cutting the drain short.
   */
  drain(options: CloseOptions = {}): Observable<CloseResult> {
    return defer(() => {
      this.draining$ ??= this.startDrain(options).pipe(shareReplay(1));
      return this.draining$;
    });
  }

  private draining$: Observable<CloseResult> | undefined;

  private startDrain(options: CloseOptions): Observable<CloseResult> {
    return defer(() => {
      const wasRunning = this.state === 'running';
      this.state = 'closing';
      const rts = [...this.runtimes.values()];
      for (const rt of rts) {
        rt.demand.cancel();
        rt.inFlight.close(); // a reserve already under way hands its jobs back instead of running them
      }
      const allDone$ = wasRunning
        ? combineLatest(rts.map((rt) => (rt.completed ? [undefined] : rt.done.pipe(take(1)))))
        : [[]];
      const timeoutMs = options.timeoutMs ?? 30_000;
      return race(
        defer(() => allDone$).pipe(map(() => ({ drained: true, abandoned: 0 }))),
        timer(timeoutMs, this.scheduler).pipe(
          map(() => ({ drained: false, abandoned: rts.reduce((n, rt) => n + rt.inFlight.held, 0) })),
        ),
      ).pipe(
        take(1),
        map((result) => {
          this.shutdown();
          this.logger.info('worker closed', { ...result });
          return result;
        }),
      );
    });
  }

  private shutdown(): void {
    this.state = 'closed';
    for (const rt of this.runtimes.values()) {
      rt.subscription.unsubscribe(); // aborts handlers still running (cause: shutdown)
      rt.outcomes.complete();
    }
    this.background.unsubscribe();
    this.releaseHelperThreads?.();
    this.releaseHelperThreads = undefined;
    this.allOutcomes.complete();
  }

  private startPipeline(rt: Runtime): void {
    const { def } = rt;
    const store = this.store;
    const settings$ = this.shared(this.settingsByQueue, def.queue, () => store.settings(def.queue));
    const config$ = this.shared(this.configByQueue, def.queue, () => store.queueConfig(def.queue));

    // The stored schema, when the pipeline has none of its own: followed as it changes, and no job
    // starts before it has been read once (a worker started during a Redis outage waits for it).
    let storedValidator: PayloadValidator | undefined;
    const needsStoredSchema = !def.schema;
    const configKnown$ = needsStoredSchema
      ? config$.pipe(
          map((cfg) => {
            storedValidator = compileStoredSchema(cfg, (error) => {
              this.logger.error('the queue’s stored schema is invalid; payloads are not checked', {
                queue: def.queue,
                error: toErrorInfo(error),
              });
            });
            return true;
          }),
          startWith(false),
          distinctUntilChanged(),
        )
      : of(true);
    const fallbackValidator: PayloadValidator = (data) => (storedValidator ? storedValidator(data) : NONE);

    // Until the store's settings arrive: the configured concurrency, not paused (a paused queue's
    // reserve returns nothing anyway).
    const knownSettings$ = settings$.pipe(startWith<QueueSettings | undefined>(undefined));
    const concurrency$ = combineLatest([rt.localConcurrency, knownSettings$]).pipe(
      map(([local, s]) => local ?? s?.concurrency ?? def.concurrency),
      distinctUntilChanged(),
    );
    const paused$ = combineLatest([rt.localPaused, knownSettings$, configKnown$]).pipe(
      map(([local, s, known]) => local || s?.paused === true || !known),
      distinctUntilChanged(),
      shareReplay({ bufferSize: 1, refCount: true }),
    );

    const run = (): void => {
      const initialConcurrency = rt.concurrency;
      const demand = new Demand({
        initial: def.budget(initialConcurrency),
        coalesce: def.coalesce ?? Math.max(1, Math.floor(def.budget(initialConcurrency) / 4)),
        scheduler: this.scheduler,
      });
      rt.demand = demand;
      rt.inFlight = new InFlight();
      const inFlight = rt.inFlight;
      const subscription = new Subscription();
      rt.subscription = subscription;

      subscription.add(
        concurrency$.subscribe((c) => {
          const delta = def.budget(c) - def.budget(rt.concurrency);
          rt.concurrency = c;
          rt.maxBudget = Math.max(rt.maxBudget, def.budget(c));
          demand.adjust(delta);
        }),
      );
      subscription.add(
        paused$.subscribe((p) => {
          rt.paused = p;
        }),
      );
      subscription.add(this.heartbeat(def.queue, def.leaseMs, inFlight));
      subscription.add(
        store.cancellations(def.queue).subscribe((id) => {
          inFlight.abort(id, 'cancelled', 'cancelled by request');
        }),
      );
      if (this.telemetry.observed) {
        subscription.add(
          demand.outstanding$.subscribe((outstanding) => {
            this.telemetry.emit({
              type: 'demand',
              queue: def.queue,
              at: this.scheduler.now(),
              pipeline: def.name,
              outstanding,
              inFlight: inFlight.size,
            });
          }),
        );
      }

      subscription.add(
        runPipeline(def, {
          store,
          demand,
          inFlight,
          concurrency$,
          paused$,
          maxBuffered: () => rt.maxBudget,
          scheduler: this.scheduler,
          logger: this.logger,
          telemetry: this.telemetry,
          validator: def.schema ? compileSchema(def.schema) : fallbackValidator,
        }).subscribe({
          next: (outcomes) => {
            // Skipped when no one is subscribed.
            for (const outcome of outcomes) {
              if (rt.outcomes.observed) rt.outcomes.next(outcome);
              if (this.allOutcomes.observed) this.allOutcomes.next(outcome);
            }
          },
          error: (err: unknown) => {
            this.logger.error('pipeline stream failed; restarting', {
              pipeline: def.name,
              error: toErrorInfo(err),
            });
            subscription.unsubscribe(); // aborts the run's handlers (cause: shutdown)
            this.handBack(def.name, inFlight);
            if (this.state !== 'running') {
              this.markDone(rt);
              return;
            }
            this.background.add(
              timer(this.restartDelayMs, this.scheduler).subscribe(() => {
                if (this.state === 'running') run();
                else this.markDone(rt);
              }),
            );
          },
          complete: () => {
            subscription.unsubscribe();
            this.markDone(rt);
          },
        }),
      );
    };
    run();
  }

  /**
   * Gives the jobs a failed run still held back to their queue at once, without spending an attempt
   * (the run's stream errored, in a stage of the pipeline's own graph, say): waiting for their leases
   * to expire would delay them by a lease and count the wait as a failed attempt.
   */
  private handBack(pipeline: string, inFlight: InFlight): void {
    const jobs = inFlight.jobs();
    if (jobs.length === 0) return;
    this.logger.warn('handing back the jobs of a failed pipeline run', { pipeline, jobs: jobs.length });
    this.store
      .settle(
        jobs.map((job): Settlement => ({
          queue: job.queue,
          id: job.id,
          token: job.lease.token,
          kind: 'snoozed',
          delayMs: 0,
        })),
      )
      .pipe(
        catchError((err: unknown) => {
          this.logger.warn('hand-back failed; the jobs return when their leases expire', {
            pipeline,
            error: toErrorInfo(err),
          });
          return EMPTY;
        }),
      )
      .subscribe();
  }

  private markDone(rt: Runtime): void {
    if (rt.completed) return;
    rt.completed = true;
    rt.done.next();
    rt.done.complete();
  }

  /** Renews every lease the pipeline holds every `leaseMs / 3`; aborts jobs whose lease was lost. */
  private heartbeat(queue: string, leaseMs: number, inFlight: InFlight): Subscription {
    const every = Math.max(10, Math.floor(leaseMs / 3));
    return timer(every, every, this.scheduler)
      .pipe(
        filter(() => inFlight.held > 0), // settling jobs too: their answer may be slow
        exhaustMap(() => {
          const leases = inFlight.leases();
          return this.store.extendLeases(queue, leases, leaseMs).pipe(
            tap(({ lost }) => {
              // A lost lease is one attempt's: the job may be held again by now, under a new lease
              // (its retry, leased by a reserve answered first), which must run on.
              if (lost.length === 0) return;
              const sent = new Map(leases.map((l) => [l.id, l.token]));
              for (const id of lost) {
                const token = sent.get(id);
                if (token !== undefined) {
                  inFlight.abort(id, 'lease-lost', 'the lease expired and was taken over', token);
                }
              }
            }),
            catchError((err: unknown) => {
              this.logger.warn('lease heartbeat failed', { queue, error: toErrorInfo(err) });
              return EMPTY;
            }),
          );
        }),
      )
      .subscribe();
  }

  /**
   * Adds the jobs of the queue's recurring schedules. Every worker does it; each tick's job carries the
   * unique key `cron:<name>:<tick>` and runs at the tick, so however many workers add it, and whatever
   * their clocks, it exists once and runs at the tick on the store's clock.
   */
  private scheduleLoop(queue: string): Subscription {
    const every = this.scheduleEveryMs;
    const lastTick = new Map<string, number>();
    const parsed = new Map<string, CronExpression | undefined>();
    const expression = (cron: string): CronExpression | undefined => {
      if (!parsed.has(cron)) {
        try {
          parsed.set(cron, parseCron(cron));
        } catch (err) {
          this.logger.error('invalid cron schedule ignored', { queue, cron, error: toErrorInfo(err) });
          parsed.set(cron, undefined);
        }
      }
      return parsed.get(cron);
    };
    const config$ = this.shared(this.configByQueue, queue, () => this.store.queueConfig(queue));
    return combineLatest([timer(0, every, this.scheduler), config$])
      .pipe(
        exhaustMap(([, config]) => {
          const now = this.scheduler.now();
          const horizon = now + 2 * every;
          const jobs: NewJob[] = [];
          const reached = new Map<string, number>();
          for (const [name, spec] of Object.entries(config.schedules ?? {})) {
            const cron = expression(spec.cron);
            if (!cron) continue;
            let t = Math.max(lastTick.get(name) ?? -Infinity, now - every);
            for (let i = 0; i < 100; i++) {
              const tick = cron.next(t);
              if (tick === undefined || tick > horizon) break;
              jobs.push({
                ...spec.options,
                queue,
                name,
                data: spec.data ?? null,
                runAt: tick,
                unique: { key: `cron:${name}:${tick}`, ttlMs: CRON_LOCK_TTL_MS },
              });
              t = tick;
            }
            reached.set(name, t);
          }
          if (jobs.length === 0) return EMPTY;
          return this.store.enqueue(jobs).pipe(
            // Only ticks the store took count as done; a failed add is tried again next time.
            map(() => {
              for (const [name, t] of reached) lastTick.set(name, t);
            }),
            catchError((err: unknown) => {
              this.logger.warn('recurring schedules failed', { queue, error: toErrorInfo(err) });
              return EMPTY;
            }),
          );
        }),
      )
      .subscribe();
  }

  /** Reports this worker and its pipelines to the store every `reportEveryMs` (a TTL of three periods). */
  private reportLoop(): Subscription {
    const store = this.store;
    return timer(0, this.reportEveryMs, this.scheduler)
      .pipe(
        exhaustMap(() =>
          defer(() =>
            store.reportWorker
              ? store.reportWorker(
                  {
                    id: this.id,
                    host: hostname(),
                    pid: process.pid,
                    startedAt: this.startedAt,
                    pipelines: [...this.runtimes.values()].map((rt) => ({
                      name: rt.def.name,
                      queue: rt.def.queue,
                      concurrency: rt.concurrency,
                      paused: rt.paused,
                      inFlight: rt.inFlight.size,
                      // The limit as configured (the store's window also carries the safety margin).
                      ...(rt.def.storeLimit && rt.def.rateLimit
                        ? { rateLimit: { ...rt.def.storeLimit, periodMs: rt.def.rateLimit.periodMs } }
                        : {}),
                    })),
                  },
                  this.reportEveryMs * 3,
                )
              : Promise.resolve(),
          ).pipe(
            catchError((err: unknown) => {
              this.logger.debug('worker report failed', { error: toErrorInfo(err) });
              return EMPTY;
            }),
          ),
        ),
      )
      .subscribe();
  }

  /** Returns expired leases of the queue to it; any node may do this, the store makes it idempotent. */
  private recoveryLoop(queue: string): Subscription {
    return timer(0, this.recoverEveryMs, this.scheduler)
      .pipe(
        exhaustMap(() =>
          this.store.recoverExpired(queue).pipe(
            catchError((err: unknown) => {
              this.logger.warn('lease recovery failed', { queue, error: toErrorInfo(err) });
              return EMPTY;
            }),
          ),
        ),
      )
      .subscribe(({ recovered, dead }) => {
        if (recovered.length > 0 || dead.length > 0) {
          this.logger.warn('recovered jobs with expired leases', {
            queue,
            recovered: recovered.length,
            dead: dead.length,
          });
        }
      });
  }
}

/** The stored schema as a validator; an invalid schema is reported and checks nothing. */
function compileStoredSchema(
  config: QueueConfig,
  onInvalid: (error: unknown) => void,
): PayloadValidator | undefined {
  if (!config.schema) return undefined;
  try {
    return compileSchema(config.schema);
  } catch (error) {
    onInvalid(error);
    return undefined;
  }
}

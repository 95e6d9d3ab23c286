import {
  asyncScheduler,
  isObservable,
  Observable,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  timer,
} from 'rxjs';
import {
  InvalidArgumentError,
  JobAbortedError,
  JobTimeoutError,
  SluiceError,
  ErrorCode,
  toErrorInfo,
} from '../model/errors';
import {
  isCancel,
  isFailure,
  isPerJob,
  isSnooze,
  type BatchHandler,
  type Handler,
  type JobContext,
} from '../model/handler';
import type { InFlight, PendingAbort } from '../runtime/in-flight';
import type { SlidingWindowLimiter } from '../runtime/limiter';
import type { RebaseResult } from '../store/store';
import type { ReservedJob } from '../model/job';
import { silentLogger, type Logger } from '../runtime/logger';
import type { Telemetry } from '../runtime/telemetry';

/** What the process stage runs: one job, or a batch of jobs for a batch handler. */
export interface WorkUnit<T = unknown> {
  readonly jobs: readonly ReservedJob<T>[];
  /** Call the handler with the array (batch handler) rather than the single job. */
  readonly batch: boolean;
}

/** How one job's run ended, before it is written back to the store. */
export type Handled<T = unknown> = { readonly job: ReservedJob<T>; readonly durationMs: number } & (
  | { readonly status: 'ok'; readonly value: unknown }
  | { readonly status: 'error'; readonly error: unknown }
  | { readonly status: 'snooze'; readonly delayMs: number }
  | { readonly status: 'cancel'; readonly reason: string }
  /** Never reached the handler: the payload failed the schema. */
  | { readonly status: 'invalid'; readonly reason: string }
  /** The lease is gone (taken over elsewhere): nothing may be written for this job. */
  | { readonly status: 'abandoned'; readonly reason: string }
);

export interface RunConfig {
  /** Name reported to handlers, logs and telemetry. */
  readonly pipeline: string;
  /** Abort the handler after this long unless the job carries its own `timeoutMs`. Default: none. */
  readonly timeoutMs?: number;
  /** Clock and timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  readonly logger?: Logger;
  /** Registry that routes cancellations and lost leases to the running handler. */
  readonly inFlight?: InFlight;
  /**
   * A local check of handler start times against a rate limit, on this process's clock. The store's
   * limit counts a start when it grants the lease; the handler runs a little later (network, event
   * loop). This gate delays a start — by milliseconds, and only when that delay varied by more than
   * the limit's margin — so the handler calls this process makes hold the limit as measured here too.
   */
  readonly startGate?: StartGate;
  readonly telemetry?: Telemetry;
}

/** Store time `at` at which units were counted, by a call sent and answered at local times. */
export interface LimitGrant {
  readonly at: number;
  readonly sentAt: number;
  readonly receivedAt: number;
}

/** See {@link RunConfig.startGate}. */
export interface StartGate {
  readonly limiter: SlidingWindowLimiter;
  /** `'call'`: a unit counts once; `'job'`: each job counts. */
  readonly per: 'job' | 'call';
  /**
   * When a unit counted by the store is due to start on this process's clock (its grant mapped onto
   * this clock plus a fixed alignment; see `LeaseClock`). A unit is held back until then, and with
   * `rebase`, one starting more than `lateAfterMs` after it (this process stalled) first moves its
   * units of the store's limit to the present and waits for its new due time: every start then
   * trails its count in the store by the same delay, so the limit holds across every process for the
   * times handlers really start. A grant whose local time is `certain: false` (a slow round trip
   * before the clocks were matched) is moved once before it starts. Default: due at once.
   */
  readonly dueAt?: (grant: LimitGrant) => { readonly at: number; readonly certain: boolean };
  /** The clock due times are on. Default: the scheduler's. */
  readonly now?: () => number;
  /** The grant of a unit's first job (the reserve call that leased it). */
  readonly grantOf?: (job: ReservedJob) => LimitGrant;
  readonly lateAfterMs?: number;

  /** Moves a unit's count in the store; `moves` says how often this unit was moved already. */
  readonly rebase?: (units: number, grantedAt: number, moves: number) => Observable<RebaseResult>;
}

export interface ProcessConfig extends RunConfig {
  /** Handler calls in flight at once; an Observable changes it at runtime. Default `1`. */
  readonly concurrency?: number | Observable<number>;
  /**
   * Units allowed to wait for a free slot before the stream errors. Inside a pipeline the demand
   * channel keeps this at 0; the bound only matters when the operator is used on its own.
   * Default `10_000`.
   */
  readonly maxBuffered?: number;
}

type AnyHandler<T> = Handler<T> | BatchHandler<T>;

/**
 * Runs a handler on each unit with bounded concurrency, isolating every failure.
 *
 * Intuition: `mergeMap(run, concurrency)`, except that a job's failure, timeout or cancellation is
 * caught inside its own inner observable and comes out as a value: it never errors the stream, never
 * cancels siblings, never touches another pipeline.
 *
 * ```
 * units:       -a-bc--------|      concurrency 2, each run takes 4 frames
 * processJobs: -----A-B-C---|      (c waits for a free slot and starts when a is done)
 * ```
 *
 * Each run gets an `AbortSignal` that fires on timeout (`JobTimeoutError`), on cancellation, on a
 * lost lease, or when the output is unsubscribed (`JobAbortedError`, cause `shutdown`). Handlers may
 * return a value, a promise, or an Observable (its last value counts), or flow control
 * (`{ snooze: ms }`, `{ cancel: reason }`). For marble tests, return values or Observables: promises
 * resolve outside virtual time.
 *
 * ## Example
 * ```ts
 * units$.pipe(
 *   processJobs(async (job, { signal }) => (await fetch(job.data.url, { signal })).status, { pipeline: 'ping', concurrency: 10, timeoutMs: 5000 }),
 * ).subscribe((handled) => console.log(handled.map((h) => h.status)));
 * ```
 */
export function processJobs<T>(
  handler: AnyHandler<T>,
  config: ProcessConfig,
): OperatorFunction<WorkUnit<T>, readonly Handled<T>[]> {
  const maxBuffered = config.maxBuffered ?? 10_000;
  if (!(Number.isInteger(maxBuffered) && maxBuffered >= 0)) {
    throw new InvalidArgumentError(`maxBuffered must be an integer ≥ 0, got ${maxBuffered}`);
  }
  const fixed = config.concurrency ?? 1;
  if (typeof fixed === 'number' && !(Number.isInteger(fixed) && fixed >= 1)) {
    throw new InvalidArgumentError(`concurrency must be an integer ≥ 1, got ${fixed}`);
  }
  return (units) =>
    new Observable<readonly Handled<T>[]>((subscriber) => {
      let limit = typeof fixed === 'number' ? fixed : 1;
      const waiting: WorkUnit<T>[] = [];
      const running = new Set<UnitRun<T>>();
      let active = 0;
      let upstreamDone = false;

      const sink: UnitSink<T> = {
        done: (run, handled) => {
          subscriber.next(handled);
          active--;
          running.delete(run);
          drain();
        },
      };
      const startRun = (unit: WorkUnit<T>): void => {
        active++;
        const run = new UnitRun(handler, unit, config, sink);
        // A synchronous handler finishes inside start() and takes itself out again.
        running.add(run);
        run.start();
      };

      // Re-entrancy: a synchronous run completes inside startRun and calls drain() again; the guard
      // turns that nested call into one more pass of the loop below.
      let draining = false;
      let again = false;
      const drain = (): void => {
        if (draining) {
          again = true;
          return;
        }
        draining = true;
        do {
          again = false;
          while (active < limit && waiting.length > 0) startRun(waiting.shift() as WorkUnit<T>);
        } while (again as boolean); // set by nested calls
        draining = false;
        if (upstreamDone && active === 0 && waiting.length === 0) subscriber.complete();
      };

      const concurrencySub =
        typeof fixed === 'number'
          ? undefined
          : fixed.subscribe((n) => {
              if (Number.isInteger(n) && n >= 1) {
                limit = n;
                drain();
              }
            });

      const upstream = units.subscribe({
        next: (unit) => {
          waiting.push(unit);
          drain();
          // Counted after drain(): a unit that found a free slot never waits.
          if (waiting.length > maxBuffered) {
            subscriber.error(
              new SluiceError(
                ErrorCode.InvalidArgument,
                `processJobs: more than ${maxBuffered} units waiting`,
              ),
            );
          }
        },
        error: (err: unknown) => {
          subscriber.error(err);
        },
        complete: () => {
          upstreamDone = true;
          drain();
        },
      });

      return () => {
        upstream.unsubscribe();
        concurrencySub?.unsubscribe();
        for (const run of running) run.cancel();
        running.clear();
      };
    });
}

/**
 * Runs the handler once for a unit and emits exactly one array of {@link Handled} (one per job), then
 * completes. Never errors. Unsubscribing before it finishes aborts the handler (cause `shutdown`).
 * Shared by {@link process} and the adaptive-batch pipelines.
 */
export function runUnit<T>(
  handler: AnyHandler<T>,
  unit: WorkUnit<T>,
  config: RunConfig,
): Observable<readonly Handled<T>[]> {
  return new Observable<readonly Handled<T>[]>((subscriber) => {
    const run = new UnitRun(handler, unit, config, {
      done: (_run, handled) => {
        subscriber.next(handled);
        subscriber.complete();
      },
    });
    run.start();
    return () => {
      run.cancel();
    };
  });
}

/**
 * Most times one unit's count is moved before it starts anyway: only reached when the store cannot
 * answer within the alignment again and again (a badly overloaded worker or link).
 */
const MAX_MOVES = 16;

/** Where a {@link UnitRun} delivers its one result (never called when the run is cancelled). */
interface UnitSink<T> {
  done(run: UnitRun<T>, handled: readonly Handled<T>[]): void;
}

/**
 * One handler call for one unit: the start gate, the call, its timeout and aborts, and the result.
 * A class rather than a closure per step, because one is made for every job a worker runs: its state
 * lives in fields and its steps on the prototype, so a run allocates a few objects, not dozens.
 */
class UnitRun<T> {
  private readonly scheduler: SchedulerLike;
  // The handler's AbortController is made only when the handler reads `signal` (most never do): an
  // abort before that is remembered and applied when it is made.
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private started: number;
  /** Jobs aborted before their start (cancelled, lease lost): they settle without running. */
  private readonly early: Handled<T>[] = [];
  private readonly jobs: ReservedJob<T>[] = [];
  private done = false;
  private timeoutSub: Subscription | undefined;
  private resultSub: Subscription | undefined;
  private gateSub: Subscription | undefined;
  /** Where this unit's units are counted: the grant, or where a rebase moved them. */
  private grant: LimitGrant = { at: 0, sentAt: 0, receivedAt: 0 };
  /** Start without the gate's timing (the store could not be reached to move a late start). */
  private forced = false;
  /** An uncertain grant was moved once already. */
  private movedForCertainty = false;
  /** Moves so far; after {@link MAX_MOVES} the unit starts (a store answering too slowly for any). */
  private moves = 0;
  /** Given to the in-flight registry, which calls it on a cancellation or a lost lease. */
  readonly abort = (reason: unknown): void => {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.onAbort(reason);
  };

  constructor(
    private readonly handler: AnyHandler<T>,
    private readonly unit: WorkUnit<T>,
    private readonly config: RunConfig,
    private readonly sink: UnitSink<T>,
  ) {
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.started = this.scheduler.now();
  }

  start(): void {
    const inFlight = this.config.inFlight;
    for (const job of this.unit.jobs) {
      const pending = inFlight?.attach(job.id, this.abort);
      if (pending) {
        // Settled without running: a later abort of this job must not reach its siblings' handler.
        inFlight?.detach(job.id);
        this.early.push(fromPendingAbort(job, pending));
      } else this.jobs.push(job);
    }
    if (this.jobs.length === 0) {
      this.done = true;
      this.sink.done(this, this.early);
      return;
    }
    const gate = this.config.startGate;
    if (gate) {
      const first = this.jobs[0] as ReservedJob<T>;
      const at = first.lease.startedAt;
      this.grant = gate.grantOf?.(first) ?? { at, sentAt: at, receivedAt: at };
      this.tryStart();
    } else {
      this.begin();
    }
  }

  /** Unsubscribed before it finished: aborts the handler (cause `shutdown`), emits nothing. */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    const reason = new JobAbortedError(this.jobs[0]?.id ?? '', 'shutdown');
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.cleanup();
  }

  signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  private finish(handled: Handled<T>[]): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    const telemetry = this.config.telemetry;
    if (telemetry?.observed) {
      const at = this.scheduler.now();
      for (const h of handled) {
        if (h.status === 'error') {
          telemetry.emit({
            type: 'exception',
            queue: h.job.queue,
            at,
            pipeline: this.config.pipeline,
            jobId: h.job.id,
            error: toErrorInfo(h.error),
            durationMs: h.durationMs,
          });
        }
      }
    }
    this.sink.done(this, this.early.length > 0 ? [...this.early, ...handled] : handled);
  }

  private cleanup(): void {
    this.timeoutSub?.unsubscribe();
    this.resultSub?.unsubscribe();
    this.gateSub?.unsubscribe();
    const inFlight = this.config.inFlight;
    if (inFlight) for (const job of this.jobs) inFlight.detach(job.id);
  }

  private elapsed(): number {
    return this.scheduler.now() - this.started;
  }

  private onValue(value: unknown): void {
    this.finish(toHandled(this.jobs, this.unit.batch, value, this.elapsed()));
  }

  private onError(error: unknown): void {
    const durationMs = this.elapsed();
    this.finish(this.jobs.map((job) => ({ job, durationMs, status: 'error', error })));
  }

  private onAbort(reason: unknown): void {
    if (this.done) return;
    const durationMs = this.elapsed();
    if (reason instanceof JobAbortedError) {
      if (reason.abortCause === 'shutdown') return; // the subscriber is going away; nothing to emit
      this.finish(
        this.jobs.map((job): Handled<T> => {
          if (job.id !== reason.jobId) return { job, durationMs, status: 'snooze', delayMs: 0 };
          return reason.abortCause === 'cancelled'
            ? { job, durationMs, status: 'cancel', reason: reason.message }
            : { job, durationMs, status: 'abandoned', reason: reason.message };
        }),
      );
      return;
    }
    this.onError(reason);
  }

  /** Runs the handler; called at once, or when the start gate lets the unit through. */
  private begin(): void {
    if (this.done) return;
    const { config, jobs, scheduler } = this;
    this.started = scheduler.now();
    const timeoutMs = effectiveTimeout(jobs, config.timeoutMs);
    if (timeoutMs !== undefined) {
      this.timeoutSub = timer(timeoutMs, scheduler).subscribe(() => {
        this.abort(new JobTimeoutError(jobs[0]?.id ?? '', timeoutMs));
      });
    }

    const telemetry = config.telemetry;
    if (telemetry?.observed) {
      telemetry.emit({
        type: 'start',
        queue: jobs[0]?.queue ?? '',
        at: this.started,
        pipeline: config.pipeline,
        jobIds: jobs.map((j) => j.id),
        jobs: jobs.length,
        attempt: jobs[0]?.attempt ?? 0,
        waitMs: jobs[0] ? Math.max(0, jobs[0].lease.startedAt - jobs[0].runAt) : 0,
      });
    }

    let returned: unknown;
    try {
      const ctx = new RunContext(this, config);
      returned = this.unit.batch
        ? (this.handler as BatchHandler<T>)(jobs, ctx)
        : (this.handler as Handler<T>)(jobs[0] as ReservedJob<T>, ctx);
    } catch (err) {
      this.onError(err);
      return;
    }

    if (isObservable(returned)) {
      let last: unknown;
      this.resultSub = returned.subscribe({
        next: (v) => (last = v),
        error: (err: unknown) => {
          this.onError(err);
        },
        complete: () => {
          this.onValue(last);
        },
      });
    } else if (isPromiseLike(returned)) {
      returned.then(
        (v) => {
          this.onValue(v);
        },
        (err: unknown) => {
          this.onError(err);
        },
      );
    } else {
      this.onValue(returned);
    }
  }

  /** {@link tryStart} bound to this run, for timers (made only for runs behind a start gate). */
  private retryStart?: () => void;

  /** The start gate (see {@link StartGate}): due time, late starts moved in the store, local limit. */
  private tryStart(): void {
    const gate = this.config.startGate;
    if (this.done || !gate) return;
    const retry = (this.retryStart ??= () => {
      this.tryStart();
    });
    // Jobs per unit of the limit: a call counts once, jobs each (never more than the limit allows).
    const want = Math.min(gate.per === 'call' ? 1 : this.jobs.length, gate.limiter.allowed);
    const { rebase, dueAt } = gate;
    const scheduler = this.scheduler;
    const clock = gate.now ?? (() => scheduler.now());
    const now = clock();
    const timing = dueAt && !this.forced ? dueAt(this.grant) : { at: now, certain: true };
    const uncertain = rebase !== undefined && !timing.certain && !this.movedForCertainty;
    if (!uncertain && now < timing.at) {
      this.gateSub = timer(timing.at - now, scheduler).subscribe(retry);
      return;
    }
    if (rebase && (uncertain || now - timing.at > (gate.lateAfterMs ?? 0))) {
      // Late (this process stalled), or not known to be on time: count the start now, in the store,
      // before running it.
      const sentAt = now;
      this.gateSub = rebase(want, this.grant.at, this.moves).subscribe({
        next: (r) => {
          if (r.moved) {
            this.movedForCertainty = true;
            if (++this.moves >= MAX_MOVES) this.forced = true;
            // The units count from `r.at`, `r.now − r.at` before the store's now: the call's local
            // times, shifted back by as much, bound the local time of `r.at`.
            const shift = r.now - r.at;
            this.grant = { at: r.at, sentAt: sentAt - shift, receivedAt: clock() - shift };
            this.tryStart();
          } else {
            this.gateSub = timer(Math.max(1, r.retryAfterMs), scheduler).subscribe(retry);
          }
        },
        // Best effort (the store cannot be reached, or cannot move counts): the start was counted at
        // the grant already.
        error: () => {
          this.forced = true;
          this.tryStart();
        },
      });
      return;
    }
    if (gate.limiter.available(now) >= want) {
      gate.limiter.record(want, now);
      this.begin();
    } else {
      this.gateSub = timer(Math.max(1, gate.limiter.retryAfter(now)), scheduler).subscribe(retry);
    }
  }
}

/** What a handler gets besides its job(s); `signal` makes the run's AbortController on first read. */
class RunContext implements JobContext {
  readonly pipeline: string;
  readonly logger: Logger;
  constructor(
    private readonly run: { signal(): AbortSignal },
    config: RunConfig,
  ) {
    this.pipeline = config.pipeline;
    this.logger = config.logger ?? silentLogger;
  }
  get signal(): AbortSignal {
    return this.run.signal();
  }
}

function effectiveTimeout(jobs: readonly ReservedJob[], fallback: number | undefined): number | undefined {
  let t: number | undefined;
  for (const job of jobs) {
    const j = job.timeoutMs ?? fallback;
    if (j !== undefined && (t === undefined || j < t)) t = j;
  }
  return t;
}

function fromPendingAbort<T>(job: ReservedJob<T>, pending: PendingAbort): Handled<T> {
  const reason = pending.detail ?? pending.cause;
  switch (pending.cause) {
    case 'cancelled':
      return { job, durationMs: 0, status: 'cancel', reason };
    case 'shutdown':
      // Reserved as the worker began to drain: back to the queue at once, its attempt given back.
      return { job, durationMs: 0, status: 'snooze', delayMs: 0 };
    case 'lease-lost':
      return { job, durationMs: 0, status: 'abandoned', reason };
  }
}

function toHandled<T>(
  jobs: readonly ReservedJob<T>[],
  batch: boolean,
  value: unknown,
  durationMs: number,
): Handled<T>[] {
  if (batch && isPerJob(value)) {
    const results = value.results;
    if (results.length !== jobs.length) {
      const error = new InvalidArgumentError(
        `batch handler returned ${results.length} results for ${jobs.length} jobs`,
      );
      return jobs.map((job) => ({ job, durationMs, status: 'error', error }));
    }
    return jobs.map((job, i) => one(job, results[i], durationMs));
  }
  return jobs.map((job) => one(job, value, durationMs));
}

function one<T>(job: ReservedJob<T>, value: unknown, durationMs: number): Handled<T> {
  if (isFailure(value)) return { job, durationMs, status: 'error', error: value.error };
  if (isSnooze(value)) return { job, durationMs, status: 'snooze', delayMs: Math.max(0, value.snooze) };
  if (isCancel(value)) return { job, durationMs, status: 'cancel', reason: value.cancel };
  return { job, durationMs, status: 'ok', value };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

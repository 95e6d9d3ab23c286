import {
  asyncScheduler,
  isObservable,
  type SchedulerLike,
  type Subscriber,
  type Subscription,
  timer,
  type Unsubscribable,
} from 'rxjs';
import { InvalidArgumentError, JobAbortedError, JobTimeoutError, toErrorInfo } from '../model/errors';
import {
  isCancel,
  isFailure,
  isPerJob,
  isRetryAfter,
  isSnooze,
  type BatchHandler,
  type Handler,
  type JobContext,
  type LimitContext,
} from '../model/handler';
import { OutcomeKind, type Handled, type UnusedUnits } from '../model/outcome';
import type { JobUpdate, ReservedJob } from '../model/job';
import type { Reservation } from '../model/reservation';
import type { Held, PendingAbort } from '../runtime/in-flight';
import { silentLogger, type Logger } from '../runtime/logger';
import { NONE } from '../util/none';
import type { RunConfig } from './process-jobs';

/**
 * One handler call for one unit (a job, or a batch): its start gate, the call, its timeout and
 * aborts, and its one result. A class rather than a closure per step, because one is made for every
 * job a worker runs: its state lives in fields and its steps on the prototype, so a run allocates a
 * few objects, not dozens. `JobRun` and `BatchRun` differ only in how they call the handler.
 *
 * Emits exactly one array of {@link Handled} (one per job) on `out`, then calls `done`; never errors.
 * `unsubscribe()` before that aborts the handler (cause `shutdown`) and emits nothing.
 */
abstract class UnitRun<T> implements Unsubscribable {
  private readonly scheduler: SchedulerLike;
  // The handler's AbortController is made only when the handler reads `signal` (most never do): an
  // abort before that is remembered and applied when it is made.
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private started: number;
  /** Jobs aborted before their start (cancelled, lease lost): they settle without running. */
  private readonly early: Handled<T>[] = [];
  protected jobs: readonly ReservedJob<T>[] = NONE;
  /** The in-flight handles of `jobs` (with an `inFlight`; a job it does not hold has none). */
  private held: readonly (Held | undefined)[] = NONE;
  private finished = false;
  private timeoutSub: Subscription | undefined;
  private resultSub: Subscription | undefined;
  private gateSub: Unsubscribable | undefined;
  /** The handler was called and its start not yet reported. */
  private reportStart = false;
  /** Given to the in-flight registry, which calls it on a cancellation or a lost lease. */
  readonly abort = (reason: unknown): void => {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.onAbort(reason);
  };

  constructor(
    private readonly unit: Reservation<T>,
    private readonly config: RunConfig,
    private readonly out: Subscriber<readonly Handled<T>[]>,
    private readonly done: () => void,
  ) {
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.started = this.scheduler.now();
  }

  /** Calls the handler with this run's jobs (at least one). */
  protected abstract call(ctx: JobContext): unknown;
  /** One result per job from what the handler returned. */
  protected abstract results(value: unknown, durationMs: number): Handled<T>[];

  start(): this {
    const inFlight = this.config.inFlight;
    const all = this.unit.jobs;
    // Made at their full size (a list grown by push is copied each time it outgrows itself), and
    // the unit's own list kept when every job runs.
    const held = inFlight ? new Array<Held | undefined>(all.length) : undefined;
    let jobs: ReservedJob<T>[] | undefined;
    let n = 0;
    for (let i = 0; i < all.length; i++) {
      const job = all[i] as ReservedJob<T>;
      const h = inFlight?.start(job, this.abort);
      if (h?.pending) {
        // Settled without running: a later abort of this job must not reach its siblings' handler.
        inFlight?.detachHeld(h);
        this.early.push(fromPendingAbort(job, h.pending));
        jobs ??= all.slice(0, i);
      } else {
        jobs?.push(job);
        if (held) held[n] = h;
        n++;
      }
    }
    if (held) held.length = n;
    this.held = held ?? NONE;
    this.jobs = jobs ?? all;
    if (this.jobs.length === 0) {
      this.finish([]);
      return this;
    }
    const gate = this.unit.gate;
    if (gate) {
      this.gateSub = gate.admit(
        this.jobs,
        this.unit.grant,
        (limit, confirm) => {
          this.begin(limit, confirm);
        },
        (_reason, unused) => {
          this.handBack(unused);
        },
      );
    } else {
      this.begin();
    }
    return this;
  }

  /** Unsubscribed before it finished: aborts the handler (cause `shutdown`), emits nothing. */
  unsubscribe(): void {
    if (this.finished) return;
    this.finished = true;
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
    if (this.finished) return;
    this.emitStart(); // a handler that finished inside its own call
    this.finished = true;
    this.cleanup();
    const telemetry = this.config.telemetry;
    if (telemetry?.observed) {
      const at = this.scheduler.now();
      for (const h of handled) {
        if (h.status === 'failed') {
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
    this.out.next(this.early.length > 0 ? [...this.early, ...handled] : handled);
    this.done();
  }

  private cleanup(): void {
    this.timeoutSub?.unsubscribe();
    this.resultSub?.unsubscribe();
    this.gateSub?.unsubscribe();
    const inFlight = this.config.inFlight;
    if (inFlight) for (const held of this.held) if (held) inFlight.detachHeld(held);
  }

  private elapsed(): number {
    return this.scheduler.now() - this.started;
  }

  private onValue(value: unknown): void {
    this.finish(this.results(value, this.elapsed()));
  }

  private onError(error: unknown): void {
    const durationMs = this.elapsed();
    this.finish(this.jobs.map((job) => ({ job, durationMs, status: 'failed', error })));
  }

  private onAbort(reason: unknown): void {
    if (this.finished) return;
    const durationMs = this.elapsed();
    if (reason instanceof JobAbortedError) {
      if (reason.abortCause === 'shutdown') return; // the subscriber is going away; nothing to emit
      this.finish(
        this.jobs.map((job): Handled<T> => {
          if (job.id !== reason.jobId) return { job, durationMs, status: 'snoozed', delayMs: 0 };
          return reason.abortCause === 'cancelled'
            ? { job, durationMs, status: 'cancelled', reason: reason.message }
            : { job, durationMs, status: 'abandoned', reason: reason.message };
        }),
      );
      return;
    }
    this.onError(reason);
  }

  /** The gate refused the start: every job goes back to the queue at once, no attempt spent. */
  private handBack(unused: UnusedUnits | undefined): void {
    this.finish(
      this.jobs.map((job): Handled<T> => ({
        job,
        durationMs: 0,
        status: 'snoozed',
        delayMs: 0,
        front: true,
        ...(unused && job.group !== undefined ? { unused } : {}),
      })),
    );
  }

  /** Emits the `start` telemetry event once, after the handler was called and before any result. */
  private emitStart(): void {
    if (!this.reportStart) return;
    this.reportStart = false;
    const { config, jobs } = this;
    const telemetry = config.telemetry;
    if (!telemetry?.observed) return;
    telemetry.emit({
      type: 'start',
      queue: jobs[0]?.queue ?? '',
      at: this.started,
      pipeline: config.pipeline,
      jobIds: jobs.map((j) => j.id),
      jobs: jobs.length,
      attempt: jobs[0]?.attempt ?? 0,
      waitMs: jobs[0] ? Math.max(0, jobs[0].lease.startedAt - jobs[0].runAt) : 0,
      ...(jobs.some((j) => j.trace !== undefined) ? { traces: jobs.map((j) => j.trace ?? null) } : {}),
    });
  }

  /**
   * Runs the handler; called at once, or when the start gate lets the unit through. With `confirm`
   * (a gate that times starts) the handler is called only if it still answers true once the call's
   * context and timeout are made; otherwise nothing is left behind and the gate calls again (or
   * hands the unit back).
   */
  private begin(limit?: LimitContext, confirm?: () => boolean): void {
    if (this.finished) return;
    const { config, jobs, scheduler } = this;
    this.started = scheduler.now();
    const timeoutMs = effectiveTimeout(jobs, config.timeoutMs);
    const timeoutSub =
      timeoutMs === undefined
        ? undefined
        : timer(timeoutMs, scheduler).subscribe(() => {
            this.abort(new JobTimeoutError(jobs[0]?.id ?? '', timeoutMs));
          });
    const ctx = new RunContext(this, this.jobs, config, limit);
    if (confirm && !confirm()) {
      timeoutSub?.unsubscribe();
      return;
    }
    this.timeoutSub = timeoutSub;

    // The handler is called first (on a rate-limited pipeline the gate checked the clock just now:
    // nothing may come between), then the start is reported, before any result is.
    this.reportStart = true;
    let returned: unknown;
    try {
      returned = this.call(ctx);
    } catch (err) {
      this.emitStart();
      this.onError(err);
      return;
    }
    this.emitStart();

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
}

/** A handler call for one job. */
export class JobRun<T> extends UnitRun<T> {
  constructor(
    private readonly handler: Handler<T>,
    unit: Reservation<T>,
    config: RunConfig,
    out: Subscriber<readonly Handled<T>[]>,
    done: () => void,
  ) {
    super(unit, config, out, done);
  }

  protected call(ctx: JobContext): unknown {
    const job = this.jobs[0];
    return job && this.handler(job, ctx);
  }

  protected results(value: unknown, durationMs: number): Handled<T>[] {
    return this.jobs.map((job) => one(job, value, durationMs));
  }
}

/** A handler call for a batch of jobs. */
export class BatchRun<T> extends UnitRun<T> {
  constructor(
    private readonly handler: BatchHandler<T>,
    unit: Reservation<T>,
    config: RunConfig,
    out: Subscriber<readonly Handled<T>[]>,
    done: () => void,
  ) {
    super(unit, config, out, done);
  }

  protected call(ctx: JobContext): unknown {
    return this.handler(this.jobs, ctx);
  }

  protected results(value: unknown, durationMs: number): Handled<T>[] {
    const jobs = this.jobs;
    if (isPerJob(value)) {
      const results = value.results;
      if (results.length !== jobs.length) {
        const error = new InvalidArgumentError(
          `batch handler returned ${results.length} results for ${jobs.length} jobs`,
        );
        return jobs.map((job) => ({ job, durationMs, status: 'failed', error }));
      }
      return jobs.map((job, i) => one(job, results[i], durationMs));
    }
    return jobs.map((job) => one(job, value, durationMs));
  }
}

/** What a handler gets besides its job(s); `signal` makes the run's AbortController on first read. */
class RunContext implements JobContext {
  readonly pipeline: string;
  readonly logger: Logger;
  readonly limit?: LimitContext;
  constructor(
    private readonly run: { signal(): AbortSignal },
    private readonly jobs: readonly ReservedJob[],
    private readonly config: RunConfig,
    limit: LimitContext | undefined,
  ) {
    this.pipeline = config.pipeline;
    this.logger = config.logger ?? silentLogger;
    if (limit) this.limit = limit;
  }
  get signal(): AbortSignal {
    return this.run.signal();
  }
  progress(value: unknown): Promise<boolean> {
    return this.report({ progress: value });
  }
  log(...lines: string[]): Promise<boolean> {
    return this.report({ log: lines });
  }
  private report(update: JobUpdate): Promise<boolean> {
    const jobs = this.jobs;
    if (this.config.reportJob) return this.config.reportJob(jobs, update);
    this.logger.debug('job report', { pipeline: this.pipeline, jobs: jobs.map((j) => j.id), ...update });
    return Promise.resolve(true);
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
      return { job, durationMs: 0, status: 'cancelled', reason };
    case 'shutdown':
      // Reserved as the worker began to drain: back to the queue at once, its attempt given back.
      return { job, durationMs: 0, status: 'snoozed', delayMs: 0 };
    case 'lease-lost':
      return { job, durationMs: 0, status: 'abandoned', reason };
  }
}

function one<T>(job: ReservedJob<T>, value: unknown, durationMs: number): Handled<T> {
  if (isFailure(value)) return { job, durationMs, status: 'failed', error: value.error };
  if (isSnooze(value)) return { job, durationMs, status: 'snoozed', delayMs: Math.max(0, value.snooze) };
  if (isRetryAfter(value)) {
    const ms = Math.max(0, value.retryAfter);
    return { job, durationMs, status: 'snoozed', delayMs: ms, pauseLimitMs: ms };
  }
  if (isCancel(value)) return { job, durationMs, status: 'cancelled', reason: value.cancel };
  return new Completed(job, durationMs, value);
}

/** A job its handler completed. A class for the reason `Held` in runtime/in-flight.ts gives. */
class Completed<T> {
  readonly status = OutcomeKind.Completed;

  constructor(
    readonly job: ReservedJob<T>,
    readonly durationMs: number,
    readonly value: unknown,
  ) {}
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

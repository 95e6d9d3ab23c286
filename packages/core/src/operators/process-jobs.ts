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
} from '../errors';
import {
  isCancel,
  isFailure,
  isPerJob,
  isSnooze,
  type BatchHandler,
  type Handler,
  type JobContext,
} from '../handler';
import type { InFlight, PendingAbort } from '../in-flight';
import type { SlidingWindowLimiter } from '../limiter';
import type { RebaseResult } from '../store';
import type { ReservedJob } from '../job';
import { silentLogger, type Logger } from '../logger';
import type { Telemetry } from '../telemetry';

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

/** See {@link RunConfig.startGate}. */
export interface StartGate {
  readonly limiter: SlidingWindowLimiter;
  /** `'call'`: a unit counts once; `'job'`: each job counts. */
  readonly per: 'job' | 'call';
  /**
   * The local time a unit counted by the store at store time `grantedAt` is due to start (its grant
   * mapped onto this process's clock plus a fixed alignment; see `LeaseClock`). A unit is held back
   * until then, and with `rebase`, one starting more than `lateAfterMs` after it (this process
   * stalled) first moves its units of the store's limit to the present and waits for its new due
   * time: every start then trails its count in the store by the same delay, so the limit holds
   * across every process for the times handlers really start. Default: due at once, never late.
   */
  readonly dueAt?: (grantedAt: number) => number;
  readonly lateAfterMs?: number;

  readonly rebase?: (units: number, grantedAt: number) => Observable<RebaseResult>;
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
      const running = new Set<Subscription>();
      let active = 0;
      let upstreamDone = false;

      const startRun = (unit: WorkUnit<T>): void => {
        active++;
        let finished = false;
        let sub: Subscription | undefined = undefined;
        sub = runUnit(handler, unit, config).subscribe({
          next: (handled) => {
            subscriber.next(handled);
          },
          complete: () => {
            finished = true;
            active--;
            if (sub) running.delete(sub);
            drain();
          },
        });
        // A synchronous handler completes inside subscribe(); only keep runs still going.
        if (!(finished as boolean)) running.add(sub);
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
        for (const sub of running) sub.unsubscribe();
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
    const scheduler = config.scheduler ?? asyncScheduler;
    const inFlight = config.inFlight;
    const telemetry = config.telemetry;
    // The handler's AbortController is made only when the handler reads `signal` (most never do):
    // an abort before that is remembered and applied when it is made.
    let controller: AbortController | undefined;
    let abortReason: unknown;
    let aborted = false;
    const abort = (reason: unknown): void => {
      if (aborted) return;
      aborted = true;
      abortReason = reason;
      controller?.abort(reason);
      onAbort(reason);
    };
    const signal = (): AbortSignal => {
      if (!controller) {
        controller = new AbortController();
        if (aborted) controller.abort(abortReason);
      }
      return controller.signal;
    };
    let started = scheduler.now();

    // Jobs aborted before their start (cancelled, lease lost) settle without running.
    const early: Handled<T>[] = [];
    const jobs: ReservedJob<T>[] = [];
    for (const job of unit.jobs) {
      const pending = inFlight?.attach(job.id, abort);
      if (pending) {
        // Settled without running: a later abort of this job must not reach its siblings' handler.
        inFlight?.detach(job.id);
        early.push(fromPendingAbort(job, pending));
      } else jobs.push(job);
    }
    if (jobs.length === 0) {
      subscriber.next(early);
      subscriber.complete();
      return undefined;
    }

    let done = false;
    let timeoutSub: Subscription | undefined;
    let resultSub: Subscription | undefined;
    let gateSub: Subscription | undefined;

    const finish = (handled: Handled<T>[]): void => {
      if (done) return;
      done = true;
      cleanup();
      if (telemetry?.observed) {
        const at = scheduler.now();
        for (const h of handled) {
          if (h.status === 'error') {
            telemetry.emit({
              type: 'exception',
              queue: h.job.queue,
              at,
              pipeline: config.pipeline,
              jobId: h.job.id,
              error: toErrorInfo(h.error),
              durationMs: h.durationMs,
            });
          }
        }
      }
      subscriber.next(early.length > 0 ? [...early, ...handled] : handled);
      subscriber.complete();
    };

    const cleanup = (): void => {
      timeoutSub?.unsubscribe();
      resultSub?.unsubscribe();
      gateSub?.unsubscribe();
      for (const job of jobs) inFlight?.detach(job.id);
    };

    const elapsed = (): number => scheduler.now() - started;

    const onValue = (value: unknown): void => {
      finish(toHandled(jobs, unit.batch, value, elapsed()));
    };

    const onError = (error: unknown): void => {
      const durationMs = elapsed();
      finish(jobs.map((job) => ({ job, durationMs, status: 'error', error })));
    };

    function onAbort(reason: unknown): void {
      if (done) return;
      const durationMs = elapsed();
      if (reason instanceof JobAbortedError) {
        if (reason.abortCause === 'shutdown') return; // the subscriber is going away; nothing to emit
        finish(
          jobs.map((job): Handled<T> => {
            if (job.id !== reason.jobId) return { job, durationMs, status: 'snooze', delayMs: 0 };
            return reason.abortCause === 'cancelled'
              ? { job, durationMs, status: 'cancel', reason: reason.message }
              : { job, durationMs, status: 'abandoned', reason: reason.message };
          }),
        );
        return;
      }
      onError(reason);
    }

    // Runs the handler; called at once, or when the start gate lets the unit through.
    const begin = (): void => {
      if (done) return;
      started = scheduler.now();
      const timeoutMs = effectiveTimeout(jobs, config.timeoutMs);
      if (timeoutMs !== undefined) {
        timeoutSub = timer(timeoutMs, scheduler).subscribe(() => {
          abort(new JobTimeoutError(jobs[0]?.id ?? '', timeoutMs));
        });
      }

      if (telemetry?.observed) {
        telemetry.emit({
          type: 'start',
          queue: jobs[0]?.queue ?? '',
          at: started,
          pipeline: config.pipeline,
          jobIds: jobs.map((j) => j.id),
          jobs: jobs.length,
          attempt: jobs[0]?.attempt ?? 0,
          waitMs: jobs[0] ? Math.max(0, jobs[0].lease.startedAt - jobs[0].runAt) : 0,
        });
      }

      const ctx: JobContext = {
        get signal() {
          return signal();
        },
        pipeline: config.pipeline,
        logger: config.logger ?? silentLogger,
      };
      let returned: unknown;
      try {
        returned = unit.batch
          ? (handler as BatchHandler<T>)(jobs, ctx)
          : (handler as Handler<T>)(jobs[0] as ReservedJob<T>, ctx);
      } catch (err) {
        onError(err);
        return;
      }

      if (isObservable(returned)) {
        let last: unknown;
        resultSub = returned.subscribe({
          next: (v) => (last = v),
          error: onError,
          complete: () => {
            onValue(last);
          },
        });
      } else if (isPromiseLike(returned)) {
        returned.then(onValue, onError);
      } else {
        onValue(returned);
      }
    };

    const gate = config.startGate;
    if (gate) {
      // Jobs per unit of the limit: a call counts once, jobs each (never more than the limit allows).
      const want = Math.min(gate.per === 'call' ? 1 : jobs.length, gate.limiter.allowed);
      // The store time this unit's units are counted at: the grant, or where a rebase moved them.
      let grantedAt = jobs[0]?.lease.startedAt ?? 0;
      let forced = false;
      const tryStart = (): void => {
        if (done) return;
        const { rebase, dueAt } = gate;
        const now = scheduler.now();
        const due = dueAt && !forced ? dueAt(grantedAt) : now;
        if (now < due) {
          gateSub = timer(due - now, scheduler).subscribe(tryStart);
          return;
        }
        if (rebase && now - due > (gate.lateAfterMs ?? 0)) {
          // Late (this process stalled): count the start now, in the store, before running it.
          gateSub = rebase(want, grantedAt).subscribe({
            next: (r) => {
              if (r.moved) {
                grantedAt = r.at;
                tryStart();
              } else {
                gateSub = timer(Math.max(1, r.retryAfterMs), scheduler).subscribe(tryStart);
              }
            },
            // Best effort (the store cannot be reached): the start was counted at the grant already.
            error: () => {
              forced = true;
              tryStart();
            },
          });
          return;
        }
        if (gate.limiter.available(now) >= want) {
          gate.limiter.record(want, now);
          begin();
        } else {
          gateSub = timer(Math.max(1, gate.limiter.retryAfter(now)), scheduler).subscribe(tryStart);
        }
      };
      tryStart();
    } else {
      begin();
    }

    function cleanupOnUnsubscribe(): void {
      if (done) return;
      done = true;
      const reason = new JobAbortedError(jobs[0]?.id ?? '', 'shutdown');
      aborted = true;
      abortReason = reason;
      controller?.abort(reason);
      cleanup();
    }
    return cleanupOnUnsubscribe;
  });
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

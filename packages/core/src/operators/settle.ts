import {
  asyncScheduler,
  concat,
  Observable,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { exponential, type BackoffPolicy } from '../model/backoff';
import {
  ErrorCode,
  InvalidArgumentError,
  StoreClosedError,
  toErrorInfo,
  type ErrorInfo,
} from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { Held, InFlight } from '../runtime/in-flight';
import { silentLogger, type Logger } from '../runtime/logger';
import {
  OutcomeKind,
  type Handled,
  type Outcome,
  type SettleResult,
  type Settlement,
} from '../model/outcome';
import type { Demand } from '../runtime/demand';
import type { Store } from '../store/store';
import type { Telemetry } from '../runtime/telemetry';
import { chunks } from '../util/chunks';
import { adaptiveBatch } from './adaptive-batch';

export interface SettleConfig {
  readonly store: Store;
  /** Name reported on outcomes and telemetry. */
  readonly pipeline: string;
  /** Delay before the next attempt of a failed job. Default: `exponential()` (full jitter). */
  readonly backoff?: BackoffPolicy;
  /** Most settlements per store call. Default `1000`. */
  readonly maxPerCall?: number;
  /** Jobs are removed from it once their settlement is written. */
  readonly inFlight?: InFlight;
  /**
   * Replenished with the jobs that left the pipeline after each store call; with a store that
   * applies calls in order (`Store.settlesInOrder`), as soon as the call is sent.
   */
  readonly demand?: Demand;
  /**
   * Handler calls' results allowed to wait while a store call is in flight; one more errors the output
   * (`BufferOverflowError`). A pipeline passes its in-flight budget. Default `10_000`.
   */
  readonly maxBuffered?: number | (() => number);
  /** A store call that fails is retried, backing off up to this delay. Default `5000`. */
  readonly maxRetryDelayMs?: number;
  readonly scheduler?: SchedulerLike;
  readonly logger?: Logger;
  readonly telemetry?: Telemetry;
}

/**
 * Writes each job's result back to the store and emits its typed {@link Outcome}.
 *
 * Intuition: the acks of a pipeline are themselves a stream that benefits from batching. The first
 * result is written at the end of the turn it arrives in, with the results that arrived in the same
 * turn; results that finish while a store call is in flight are gathered and written together in
 * the next call ("write while busy"), so a busy pipeline makes a fraction of a store call per job and
 * an idle one adds no latency beyond the turn (`adaptiveBatch`'s `gather`).
 *
 * ```
 * handled:  -a-bc------d-|       a store call takes 3 frames
 * store:    -[a]-[bc]--[d]       (b and c arrive while [a] is in flight)
 * settle:   ----A--(BC)---D|
 * ```
 *
 * Failures become retries after `backoff(attempt)`, or dead letters once a job has used its
 * `maxAttempts` or threw a `PermanentError`. A settlement the store refuses (the lease was taken over
 * by another worker) emits no outcome. A store call that fails is retried with backoff, so an ack is
 * never dropped while the process lives; heartbeats keep the leases alive meanwhile. Only a closed
 * store ends the retries: its jobs stay leased and another worker recovers them.
 *
 * Each handler call's results (one job, or a whole batch) stay together; groups are split into store
 * calls of at most `maxPerCall` settlements.
 *
 * Demand: settled jobs give their demand back when the store answers, or, with a store that applies
 * a queue's calls in the order they are sent (`Store.settlesInOrder`), as soon as the settle is sent:
 * a reserve that demand makes is applied after the settle, so the jobs leased and unsettled in the
 * store stay within the budget, and the worker fetches while the settle travels instead of a round
 * trip later. The jobs stay in `inFlight` (`settling`, their leases still extended) until the answer.
 *
 * ## Example
 * ```ts
 * units$.pipe(processJobs(handler, { pipeline: 'emails' }), settle({ store, pipeline: 'emails' }))
 *   .subscribe((outcome) => console.log(outcome.kind, outcome.job.id));
 * ```
 */
export function settle<T>(config: SettleConfig): OperatorFunction<readonly Handled<T>[], Outcome<T>> {
  const calls = settleCalls<T>(config);
  return (handled$) => eachOf(calls(handled$));
}

/**
 * {@link settle}, emitting the outcomes of each store call together, in one list (never empty): what
 * a worker runs, so that an outcome does not pass each operator on the way out by itself.
 */
export function settleCalls<T>(
  config: SettleConfig,
): OperatorFunction<readonly Handled<T>[], readonly Outcome<T>[]> {
  const { store, pipeline, inFlight, demand } = config;
  const backoff = config.backoff ?? exponential();
  const scheduler = config.scheduler ?? asyncScheduler;
  const logger = config.logger ?? silentLogger;
  const maxRetryDelayMs = config.maxRetryDelayMs ?? 5000;

  const maxPerCall = config.maxPerCall ?? 1000;
  if (!(Number.isInteger(maxPerCall) && maxPerCall >= 1)) {
    throw new InvalidArgumentError(`maxPerCall must be an integer ≥ 1, got ${maxPerCall}`);
  }

  /**
   * One store call for `batch`: its settlements sent when subscribed, the call retried with backoff
   * until it is answered (only a closed store ends the retries), the outcomes of its answer emitted
   * in one list. Written as one observable rather than a chain of operators (defer, retry,
   * mergeMap, catchError): a lightly loaded worker makes this call for every job, and each operator
   * of a chain is a subscription and a few objects more per call.
   */
  const write = (batch: readonly Handled<T>[]): Observable<readonly Outcome<T>[]> =>
    new Observable<readonly Outcome<T>[]>((subscriber) => {
      // The jobs to write and their settlements, in two parallel lists (no object per job), made at
      // their full size at once (a list grown by push is copied each time it outgrows itself).
      const written = new Array<Handled<T>>(batch.length);
      const settlements = new Array<Settlement>(batch.length);
      let kept = 0;
      for (const handled of batch) {
        const settlement = toSettlement(handled, backoff);
        if (settlement) {
          written[kept] = handled;
          settlements[kept++] = settlement;
        }
      }
      written.length = kept;
      settlements.length = kept;
      // Demand returns for the jobs that really left: a job a stage emitted twice (or one this
      // pipeline never held) must not raise the in-flight budget. It returns once: when the settle
      // is answered, or, with a store that applies calls in order, as soon as it is sent (`sent`).
      // `left(job)`: whether the job was held under its lease (and now is not); without an
      // `inFlight`, every job.
      let returned = false;
      const giveBack = (left: ((job: ReservedJob<T>) => boolean) | undefined): void => {
        returned = true;
        let n = batch.length;
        if (left) {
          n = 0;
          for (const h of batch) if (left(h.job)) n++;
        }
        if (n > 0) demand?.request(n);
      };
      // The handles of the jobs marked settling when the call was sent, removed once it is answered.
      let settling: Held[] | undefined;
      const sent = (): void => {
        if (returned) return;
        const marked: Held[] = [];
        settling = marked;
        giveBack(
          inFlight &&
            ((job) => {
              const held = inFlight.settlingOf(job);
              if (held) marked.push(held);
              return held !== undefined;
            }),
        );
      };
      const release = (): void => {
        if (!returned) giveBack(inFlight && ((job) => inFlight.removeOf(job)));
        else if (inFlight && settling) for (const held of settling) inFlight.settledHeld(held);
      };
      if (settlements.length === 0) {
        release();
        subscriber.complete();
        return undefined;
      }
      // Nothing can be written (a closed store): the leases will expire and recovery returns the jobs.
      const abandon = (error: unknown): void => {
        logger.warn('store closed; leaving jobs to lease recovery', {
          pipeline,
          jobs: settlements.length,
          error: toErrorInfo(error),
        });
        release();
        subscriber.complete();
      };
      // The outcomes of an answer (the jobs settled are released first).
      const answered = (results: readonly SettleResult[]): Outcome<T>[] => {
        const outcomes = new Array<Outcome<T>>(results.length);
        let n = 0;
        results.forEach((result, i) => {
          const handled = written[i];
          const settlement = settlements[i];
          if (handled && settlement) {
            const outcome = toOutcome(pipeline, handled, settlement, result);
            if (outcome) outcomes[n++] = outcome;
          }
        });
        outcomes.length = n;
        release();
        if (config.telemetry?.observed) {
          for (const o of outcomes) {
            config.telemetry.emit({
              type: 'stop',
              queue: o.job.queue,
              at: o.at,
              pipeline,
              jobId: o.job.id,
              kind: o.kind,
              durationMs: o.durationMs,
            });
          }
        }
        return outcomes;
      };
      // The call is made once and subscribed to again for each retry, as `retry` would.
      const call$ = store.settle(settlements);
      let attempts = 0;
      let call: Subscription | undefined;
      let wait: Subscription | undefined;
      const send = (): void => {
        wait = undefined;
        call = call$.subscribe({
          next: (results) => {
            let outcomes: Outcome<T>[];
            try {
              outcomes = answered(results);
            } catch (error) {
              // An answer that cannot be read (a store's bug) is treated as no answer at all.
              abandon(error);
              return;
            }
            if (outcomes.length > 0) subscriber.next(outcomes);
          },
          error: (error: unknown) => {
            if (error instanceof StoreClosedError) {
              abandon(error);
              return;
            }
            attempts++;
            logger.warn('settle failed; retrying', {
              pipeline,
              error: toErrorInfo(error),
              attempt: attempts,
            });
            wait = scheduler.schedule(send, Math.min(maxRetryDelayMs, 50 * 2 ** Math.min(attempts, 16)));
          },
          complete: () => {
            subscriber.complete();
          },
        });
      };
      send();
      // Sent: with a store that applies calls in order, a reserve the returned demand makes is
      // applied after this settle.
      if (store.settlesInOrder) sent();
      return () => {
        call?.unsubscribe();
        wait?.unsubscribe();
      };
    });

  return (handled$) =>
    handled$.pipe(
      // Groups (one per handler call) gather while a store call is in flight. Bounded by the
      // pipeline's demand: at most the in-flight budget can be waiting here.
      adaptiveBatch<readonly Handled<T>[], readonly Outcome<T>[]>(
        (groups) => {
          const all = flatten(groups);
          // Mostly one store call: written as it is, without slicing it into chunks.
          return all.length <= maxPerCall
            ? write(all)
            : concat(...chunks(all, maxPerCall).map((c) => write(c)));
        },
        {
          maxSize: maxPerCall,
          concurrency: 1,
          maxBuffered: config.maxBuffered ?? 10_000,
          gather: scheduler,
        },
      ),
    );
}

/** Each item of each list, in order. */
function eachOf<R>(lists$: Observable<readonly R[]>): Observable<R> {
  return new Observable<R>((subscriber) =>
    lists$.subscribe({
      next: (list) => {
        for (const item of list) subscriber.next(item);
      },
      error: (error: unknown) => {
        subscriber.error(error);
      },
      complete: () => {
        subscriber.complete();
      },
    }),
  );
}

/** The handled jobs of every handler call, in order (one call's own list when there is one). */
function flatten<T>(groups: readonly (readonly Handled<T>[])[]): readonly Handled<T>[] {
  if (groups.length === 1) return groups[0] as readonly Handled<T>[];
  let n = 0;
  for (const group of groups) n += group.length;
  const all = new Array<Handled<T>>(n);
  n = 0;
  for (const group of groups) for (const handled of group) all[n++] = handled;
  return all;
}

/** The settlement of a completed job. */
class Completion {
  readonly kind = OutcomeKind.Completed;

  constructor(
    readonly queue: string,
    readonly id: string,
    readonly token: string,
    readonly result: unknown,
    readonly durationMs: number,
  ) {}
}

/**
 * The outcome of a completed job: the same fields, in the same order, as the object literal it
 * replaces, made by `new` for the reason `Completion` is (see `Held` in runtime/in-flight.ts).
 */
class CompletedOutcome<T> {
  readonly pipeline: string;
  readonly job: ReservedJob<T>;
  readonly durationMs: number;
  readonly at: number;
  readonly kind: typeof OutcomeKind.Completed;
  readonly result: unknown;

  constructor(pipeline: string, job: ReservedJob<T>, durationMs: number, at: number, result: unknown) {
    this.pipeline = pipeline;
    this.job = job;
    this.durationMs = durationMs;
    this.at = at;
    this.kind = OutcomeKind.Completed;
    this.result = result;
  }
}

/** Decides what the store should do with one handled job; `undefined` for nothing (lease lost). */
export function toSettlement<T>(handled: Handled<T>, backoff: BackoffPolicy): Settlement | undefined {
  const { job } = handled;
  // The hot path, written out: no spread, one allocation per job (by `new`: see `Held` in
  // runtime/in-flight.ts).
  if (handled.status === 'completed') {
    return new Completion(job.queue, job.id, job.lease.token, handled.value, handled.durationMs);
  }
  const base = { queue: job.queue, id: job.id, token: job.lease.token };
  switch (handled.status) {
    case 'failed': {
      const error = toErrorInfo(handled.error);
      if (error.code === ErrorCode.Permanent) {
        return { ...base, kind: 'dead', reason: `permanent failure: ${error.message}`, error };
      }
      if (job.attempt >= job.maxAttempts) {
        return {
          ...base,
          kind: 'dead',
          reason: `failed ${job.attempt} of ${job.maxAttempts} attempts: ${error.message}`,
          error,
        };
      }
      return { ...base, kind: 'retrying', delayMs: safeDelay(backoff, job.attempt, error, handled), error };
    }
    case 'snoozed':
      return {
        ...base,
        kind: 'snoozed',
        delayMs: handled.delayMs,
        ...(handled.front === true ? { front: true } : {}),
        ...(handled.unused ? { unused: handled.unused } : {}),
      };
    case 'cancelled':
      return { ...base, kind: 'cancelled', reason: handled.reason };
    case 'invalid':
      return {
        ...base,
        kind: 'dead',
        reason: handled.reason,
        error: { name: 'PayloadValidationError', message: handled.reason },
      };
    case 'abandoned':
      return undefined;
  }
}

function safeDelay<T>(
  backoff: BackoffPolicy,
  attempt: number,
  error: ErrorInfo,
  handled: Handled<T>,
): number {
  try {
    const ms = backoff(attempt, error, handled.job);
    return Number.isFinite(ms) && ms >= 0 ? ms : 0;
  } catch {
    return 0;
  }
}

function toOutcome<T>(
  pipeline: string,
  handled: Handled<T>,
  settlement: Settlement,
  result: SettleResult,
): Outcome<T> | undefined {
  if (!result.applied) return undefined;
  if (settlement.kind === 'completed') {
    return new CompletedOutcome(pipeline, handled.job, handled.durationMs, result.at, settlement.result);
  }
  const base = { pipeline, job: handled.job, durationMs: handled.durationMs, at: result.at };
  switch (settlement.kind) {
    case 'retrying':
      return { ...base, kind: 'retrying', error: settlement.error, retryAt: result.runAt ?? result.at };
    case 'dead':
      return {
        ...base,
        kind: 'dead',
        reason: settlement.reason,
        ...(settlement.error ? { error: settlement.error } : {}),
      };
    case 'snoozed':
      return { ...base, kind: 'snoozed', until: result.runAt ?? result.at };
    case 'cancelled':
      return { ...base, kind: 'cancelled', reason: settlement.reason };
  }
}

import type { Observable } from 'rxjs';
import type { JobUpdate, ReservedJob } from './job';
import type { Logger } from '../runtime/logger';

/** Postpone the job by `snooze` ms without spending an attempt. */
export interface Snooze {
  readonly snooze: number;
}

/** Stop the job for good: it is recorded as cancelled with this reason, not retried. */
export interface Cancel {
  readonly cancel: string;
}

/**
 * The provider refused the call (a 429 with `Retry-After`, a quota error): the job goes back to the
 * queue for `retryAfter` ms without spending an attempt, and every worker sharing the pipeline's
 * rate limit, in every process, stops starting handlers for that long. Without a rate limit it is a
 * snooze.
 */
export interface RetryAfter {
  readonly retryAfter: number;
}

/** Flow control a handler returns as a value (exceptions always mean failure). */
export type FlowControl = Snooze | Cancel | RetryAfter;

/** What a handler sees besides its job(s). */
export interface JobContext {
  /**
   * Fires when the job times out, is cancelled, loses its lease or the worker shuts down. Pass it to
   * `fetch` and other abortable calls; `signal.reason` says why.
   */
  readonly signal: AbortSignal;
  readonly pipeline: string;
  readonly logger: Logger;
  /** Set on rate-limited pipelines: this call's place in the limit. */
  readonly limit?: LimitContext;
  /**
   * Reports the job's progress (a number, or a JSON object or array of at most 4 KiB): kept with the
   * job (`getJob(...).progress`) and published on `store.jobUpdates(queue)` to every process. For a
   * batch call it applies to every job of the batch. Resolves `false` when the job is no longer this
   * handler's to report on (its lease was lost); rejects with `InvalidArgumentError` on bad input.
   * Without a store that records reports (a bare operator), the report goes to `logger.debug`.
   */
  progress(value: unknown): Promise<boolean>;
  /**
   * Appends lines to the job's log, kept with the job (the newest 100, `getJob(...).logs`) and
   * published like {@link progress}.
   */
  log(...lines: string[]): Promise<boolean>;
}

/**
 * A rate-limited handler call's place in its limit. The limit holds by handler start; a provider
 * counts arrivals. Call `sent()` when the request leaves (for example in the request's `finish`
 * event): the worker measures how late requests leave against their slots and keeps the limit's
 * margin above that (up to `maxMarginMs`), so the time a handler takes to send stays inside the
 * window the store counts.
 */
export interface LimitContext {
  /** The store time this call is counted at in the limit's log. */
  readonly slot: number;
  /** The request to the provider left now (the first call counts; later ones are ignored). */
  sent(): void;
}

/** How a handler stage records what handlers report (`ctx.progress`, `ctx.log`): a `Worker` gives the store's. */
export type JobReporter = (jobs: readonly ReservedJob[], update: JobUpdate) => Promise<boolean>;

/** A handler may return a value, a promise of one, or an Observable (its last value counts). */
export type HandlerReturn<R> = R | FlowControl | PromiseLike<R | FlowControl> | Observable<R | FlowControl>;

/** Runs one job. Return a result, throw to fail, or return `{ snooze: ms }` / `{ cancel: reason }`. */
export type Handler<T = unknown, R = unknown> = (job: ReservedJob<T>, ctx: JobContext) => HandlerReturn<R>;

/**
 * Runs a batch of jobs in one call. Returning a plain value completes every job with it; return
 * {@link perJob} results to settle each job on its own; throwing fails every job of the batch.
 */
export type BatchHandler<T = unknown, R = unknown> = (
  jobs: readonly ReservedJob<T>[],
  ctx: JobContext,
) => HandlerReturn<R | PerJobResults<R>>;

const failureBrand: unique symbol = Symbol('sluice.failure');
const perJobBrand: unique symbol = Symbol('sluice.perJob');

/** One job of a batch failed; the others are unaffected. Built with {@link failed}. */
export interface JobFailure {
  readonly [failureBrand]: true;
  readonly error: unknown;
}

/** One result per job of a batch, in the batch's order. Built with {@link perJob}. */
export interface PerJobResults<R = unknown> {
  readonly [perJobBrand]: true;
  readonly results: readonly (R | FlowControl | JobFailure)[];
}

/** Marks one job of a batch as failed (it is retried or dead-lettered like a thrown error). */
export function failed(error: unknown): JobFailure {
  return { [failureBrand]: true, error };
}

/**
 * Settles each job of a batch with its own result.
 *
 * ## Example
 * ```ts
 * const handler: BatchHandler<Item, Finding[]> = async (jobs) => {
 *   const res = await inspect(jobs.map((j) => j.data));
 *   return perJob(res.map((r) => (r.ok ? r.findings : failed(new Error(r.error)))));
 * };
 * ```
 */
export function perJob<R>(results: readonly (R | FlowControl | JobFailure)[]): PerJobResults<R> {
  return { [perJobBrand]: true, results };
}

export function isFailure(value: unknown): value is JobFailure {
  return typeof value === 'object' && value !== null && failureBrand in value;
}

export function isPerJob(value: unknown): value is PerJobResults {
  return typeof value === 'object' && value !== null && perJobBrand in value;
}

/** `{ snooze: ms }` with nothing else: a snooze request. */
export function isSnooze(value: unknown): value is Snooze {
  return isSingleKey(value, 'snooze') && typeof (value as Snooze).snooze === 'number';
}

/** `{ retryAfter: ms }` with nothing else: the provider refused, pause the limit. */
export function isRetryAfter(value: unknown): value is RetryAfter {
  return isSingleKey(value, 'retryAfter') && typeof (value as RetryAfter).retryAfter === 'number';
}

/** `{ cancel: reason }` with nothing else: a cancel request. */
export function isCancel(value: unknown): value is Cancel {
  return isSingleKey(value, 'cancel') && typeof (value as Cancel).cancel === 'string';
}

function isSingleKey(value: unknown, key: string): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === key;
}

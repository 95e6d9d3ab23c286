import type { ErrorInfo } from './errors';
import type { ReservedJob } from './job';

/**
 * How one job's run ended, before it is written back to the store: what the handler stages emit and
 * `settle` takes.
 */
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

/**
 * What a pipeline asks the store to do with a job it holds a lease on. The store applies it only if
 * `token` still matches the job's lease; otherwise the settlement is refused.
 */
export type Settlement =
  | (SettlementBase & { readonly kind: 'completed'; readonly result: unknown; readonly durationMs: number })
  /** Back to `scheduled`, due `delayMs` after the store's now. */
  | (SettlementBase & { readonly kind: 'retry'; readonly delayMs: number; readonly error: ErrorInfo })
  | (SettlementBase & { readonly kind: 'dead'; readonly reason: string; readonly error?: ErrorInfo })
  /** Back to `scheduled` without spending an attempt. */
  | (SettlementBase & { readonly kind: 'snoozed'; readonly delayMs: number })
  | (SettlementBase & { readonly kind: 'cancelled'; readonly reason: string });

export interface SettlementBase {
  readonly queue: string;
  readonly id: string;
  readonly token: string;
}

export type SettlementKind = Settlement['kind'];

/** The store's answer for one settlement, in the order they were given. */
export type SettleResult =
  /** Applied at store time `at`; for retries and snoozes `runAt` is when the job is due again. */
  | { readonly id: string; readonly applied: true; readonly at: number; readonly runAt?: number }
  /** Refused: the lease was lost (expired and re-leased, or recovered) or the job no longer exists. */
  | { readonly id: string; readonly applied: false; readonly reason: 'lease-lost' | 'not-found' };

/** The typed result of running one job, as published on `outcomes$`. */
export type Outcome<T = unknown, R = unknown> =
  | (OutcomeBase<T> & { readonly kind: 'completed'; readonly result: R })
  | (OutcomeBase<T> & { readonly kind: 'retrying'; readonly error: ErrorInfo; readonly retryAt: number })
  | (OutcomeBase<T> & { readonly kind: 'dead'; readonly reason: string; readonly error?: ErrorInfo })
  | (OutcomeBase<T> & { readonly kind: 'cancelled'; readonly reason: string })
  | (OutcomeBase<T> & { readonly kind: 'snoozed'; readonly until: number });

export interface OutcomeBase<T> {
  /** The pipeline that ran the job. */
  readonly pipeline: string;
  readonly job: ReservedJob<T>;
  /** Handler time in ms (worker clock); 0 for jobs that never reached the handler. */
  readonly durationMs: number;
  /** Store time the outcome was recorded. */
  readonly at: number;
}

export type OutcomeKind = Outcome['kind'];

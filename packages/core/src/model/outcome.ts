import type { ErrorInfo } from './errors';
import type { ReservedJob } from './job';

/**
 * The one vocabulary of a job's result, from the handler's end to the store: settlement kinds, outcome
 * kinds, the kinds of `JobEvent`s and the kinds the Redis scripts receive and write on the event stream
 * are these names.
 */
export const OutcomeKind = {
  /** The handler succeeded; the job is finished. */
  Completed: 'completed',
  /** The handler failed with attempts left; the job is due again after a backoff. */
  Retrying: 'retrying',
  /** Dead-lettered: attempts used up, a permanent failure, an invalid payload or a lost record. */
  Dead: 'dead',
  /** Back to the queue for later without spending an attempt. */
  Snoozed: 'snoozed',
  /** Finished without running to its end, on request. */
  Cancelled: 'cancelled',
} as const;
export type OutcomeKind = (typeof OutcomeKind)[keyof typeof OutcomeKind];

/**
 * How one job's run ended, before it is written back to the store: what the handler stages emit and
 * `settle` takes. Statuses use the outcome's words; `settle` turns `failed` into `retrying` or `dead`.
 */
export type Handled<T = unknown> = { readonly job: ReservedJob<T>; readonly durationMs: number } & (
  | { readonly status: typeof OutcomeKind.Completed; readonly value: unknown }
  /** The handler threw, rejected, errored or returned `failed(err)`. */
  | { readonly status: 'failed'; readonly error: unknown }
  | {
      readonly status: typeof OutcomeKind.Snoozed;
      readonly delayMs: number;
      /** The provider refused (`{ retryAfter }`): pause the pipeline's rate limit this long. */
      readonly pauseLimitMs?: number;
      /** Handed back by the start gate: to the head of its group (or priority), not the back. */
      readonly front?: boolean;
      /** Handed back: the units it was granted at store time `at` in its group's log were never used. */
      readonly unused?: UnusedUnits;
    }
  | { readonly status: typeof OutcomeKind.Cancelled; readonly reason: string }
  /** Never reached the handler: the payload failed the schema. */
  | { readonly status: 'invalid'; readonly reason: string }
  /** The lease is gone (taken over elsewhere): nothing may be written for this job. */
  | { readonly status: 'abandoned'; readonly reason: string }
);

/** `completed`, `failed`, `snoozed`, `cancelled` (outcome words), `invalid` or `abandoned`. */
export type HandledStatus = Handled['status'];

/**
 * What a pipeline asks the store to do with a job it holds a lease on. The store applies it only if
 * `token` still matches the job's lease; otherwise the settlement is refused.
 */
export type Settlement =
  | (SettlementBase & {
      readonly kind: typeof OutcomeKind.Completed;
      readonly result: unknown;
      readonly durationMs: number;
    })
  /** Back to `scheduled`, due `delayMs` after the store's now. */
  | (SettlementBase & {
      readonly kind: typeof OutcomeKind.Retrying;
      readonly delayMs: number;
      readonly error: ErrorInfo;
    })
  | (SettlementBase & {
      readonly kind: typeof OutcomeKind.Dead;
      readonly reason: string;
      readonly error?: ErrorInfo;
    })
  /** Back to `scheduled` without spending an attempt. */
  | (SettlementBase & {
      readonly kind: typeof OutcomeKind.Snoozed;
      readonly delayMs: number;
      /**
       * With `delayMs` 0: back to the head of its group (or of its priority), before the jobs that
       * were behind it, as if it had not been reserved (a start gate's hand-back keeps a group's
       * order with concurrency 1). Default: the back.
       */
      readonly front?: boolean;
      /**
       * Units the job was granted at store time `at` in its group's rate-limit log and never used
       * (no work started there): the store removes them, so the group's window gets them back.
       */
      readonly unused?: UnusedUnits;
    })
  | (SettlementBase & { readonly kind: typeof OutcomeKind.Cancelled; readonly reason: string });

export interface SettlementBase {
  readonly queue: string;
  readonly id: string;
  readonly token: string;
}

/** The same names as {@link OutcomeKind}: a settlement of kind `k` becomes an outcome of kind `k`. */
export type SettlementKind = Settlement['kind'];

/** The store's answer for one settlement, in the order they were given. */
export type SettleResult =
  /** Applied at store time `at`; for retries and snoozes `runAt` is when the job is due again. */
  | { readonly id: string; readonly applied: true; readonly at: number; readonly runAt?: number }
  /** Refused: the lease was lost (expired and re-leased, or recovered) or the job no longer exists. */
  | { readonly id: string; readonly applied: false; readonly reason: 'lease-lost' | 'not-found' };

/** The typed result of running one job, as published on `outcomes$`. */
export type Outcome<T = unknown, R = unknown> =
  | (OutcomeBase<T> & { readonly kind: typeof OutcomeKind.Completed; readonly result: R })
  | (OutcomeBase<T> & {
      readonly kind: typeof OutcomeKind.Retrying;
      readonly error: ErrorInfo;
      readonly retryAt: number;
    })
  | (OutcomeBase<T> & {
      readonly kind: typeof OutcomeKind.Dead;
      readonly reason: string;
      readonly error?: ErrorInfo;
    })
  | (OutcomeBase<T> & { readonly kind: typeof OutcomeKind.Cancelled; readonly reason: string })
  | (OutcomeBase<T> & { readonly kind: typeof OutcomeKind.Snoozed; readonly until: number });

export interface OutcomeBase<T> {
  /** The pipeline that ran the job. */
  readonly pipeline: string;
  readonly job: ReservedJob<T>;
  /** Handler time in ms (worker clock); 0 for jobs that never reached the handler. */
  readonly durationMs: number;
  /** Store time the outcome was recorded. */
  readonly at: number;
}

/** Units of a rate limit granted at store time `at` that no work used (see `Settlement`). */
export interface UnusedUnits {
  readonly at: number;
  readonly units: number;
}

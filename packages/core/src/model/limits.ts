import type { ErrorInfo } from './errors';
import type { Retention } from './job';

/**
 * Defaults, limits and texts every store applies the same way. `MemoryStore` reads them here;
 * `RedisStore` passes them to its Lua scripts as arguments (each script's header lists them), so the
 * two stores cannot drift apart and no script holds a copy.
 */

/** Attempts a job gets when it does not say. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * Default retention of finished (completed and cancelled) jobs: the newest 1,000 per queue. Set
 * `QueueConfig.retention` (`Queue.setRetention`, `sluice retention`) to change it.
 */
export const DEFAULT_RETENTION: Retention = { keep: 'count', count: 1000 };

/** Default retention of dead jobs: every one, until retried, removed or purged. */
export const DEFAULT_DEAD_RETENTION: Retention = { keep: 'all' };

/**
 * Attempt errors kept on a job record: the first, and the latest `MAX_ATTEMPT_ERRORS - 1`, so a job
 * that fails forever keeps a bounded record.
 */
export const MAX_ATTEMPT_ERRORS = 20;

/** Log lines kept per job (`ctx.log`): the newest ones. */
export const MAX_JOB_LOG_LINES = 100;

/** Characters kept of one log line; a longer line is cut, ending in `…`. */
export const MAX_LOG_LINE_CHARS = 2000;

/** Largest progress value (`ctx.progress`) as JSON, in bytes. */
export const MAX_PROGRESS_BYTES = 4096;

/** Minutes of per-minute completed/failed counters a store keeps for `history` (a day). */
export const DEFAULT_HISTORY_MINUTES = 1440;

/**
 * Reasons and error messages a store writes on its own (not given by a pipeline). Templates name
 * their numbers `{attempt}` and `{maxAttempts}`; {@link fillTemplate} fills them in.
 */
export const StoreText = {
  /** Reason of a job cancelled while it waited (ready or scheduled). */
  CancelledBeforeRun: 'cancelled before it ran',
  /** Reason of a job whose lease expired on its last attempt. */
  LeaseExpired: 'lease expired on attempt {attempt} of {maxAttempts}',
  /** Name of the error recorded for an attempt whose lease expired. */
  LeaseExpiredErrorName: 'LeaseExpiredError',
  /** Message of the error recorded for an attempt whose lease expired. */
  LeaseExpiredErrorMessage: 'lease expired on attempt {attempt}: the worker crashed or stalled',
} as const;

/** Numbers a {@link StoreText} template may name. */
export interface TemplateValues {
  readonly attempt?: number;
  readonly maxAttempts?: number;
}

/** Replaces `{attempt}` and `{maxAttempts}` in a template (other text is kept as it is). */
export function fillTemplate(template: string, values: TemplateValues): string {
  return template.replace(/\{(attempt|maxAttempts)\}/g, (whole, name: keyof TemplateValues) => {
    const value = values[name];
    return value === undefined ? whole : String(value);
  });
}

/** The error recorded for an attempt whose lease expired (the worker crashed or stalled). */
export function leaseExpiredError(attempt: number): ErrorInfo {
  return {
    name: StoreText.LeaseExpiredErrorName,
    message: fillTemplate(StoreText.LeaseExpiredErrorMessage, { attempt }),
  };
}

/** Keeps an attempt-error list within {@link MAX_ATTEMPT_ERRORS}: the first and the latest ones. */
export function boundAttemptErrors(errors: unknown[]): void {
  if (errors.length > MAX_ATTEMPT_ERRORS) errors.splice(1, errors.length - MAX_ATTEMPT_ERRORS);
}

import type { ErrorInfo } from './errors';

/** Where a job is in its life. */
export const JobState = {
  /** Waiting in the ready set, ordered by priority then FIFO. */
  Ready: 'ready',
  /** Waiting for its run-at time: delayed jobs, retries in backoff, snoozed jobs. */
  Scheduled: 'scheduled',
  /** Leased to a worker. */
  Running: 'running',
  Completed: 'completed',
  /** In the dead-letter queue. */
  Dead: 'dead',
  Cancelled: 'cancelled',
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];
export const JOB_STATES: readonly JobState[] = Object.values(JobState);

/**
 * How long jobs in a terminal state are kept for inspection: the queue's finished (completed and
 * cancelled) jobs, which share one budget (`QueueConfig.retention`), or its dead jobs
 * (`QueueConfig.deadRetention`). Records past the retention are deleted as jobs settle and during
 * workers' lease-recovery rounds, oldest first, each costing only the records it deletes.
 */
export type Retention =
  /** Delete the record as soon as the job finishes. */
  | { readonly keep: 'none' }
  /**
   * Keep the newest `count` jobs of the queue; with `ageMs`, also none that finished longer ago than
   * that (whichever bound is reached first deletes).
   */
  | { readonly keep: 'count'; readonly count: number; readonly ageMs?: number }
  /** Keep jobs for `ageMs` after they finish. */
  | { readonly keep: 'age'; readonly ageMs: number }
  /** Keep every job until it is removed or purged (the default for dead jobs). */
  | { readonly keep: 'all' };

/** A unique-job lock: while it lives, adding a job with the same key returns the existing job's id. */
export interface UniqueOptions {
  readonly key: string;
  /** How long the lock lives after the first add. */
  readonly ttlMs: number;
}

/**
 * A W3C Trace Context (https://www.w3.org/TR/trace-context/) carried from the producer to the job,
 * so the job's processing can continue the producer's trace (see the `start` telemetry event).
 */
export interface TraceContext {
  /** `<version>-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`, e.g. `00-4bf9…-00f0…-01`. */
  readonly traceparent: string;
  /** Vendor entries, `key=value` separated by commas (at most 32 entries, 512 characters). */
  readonly tracestate?: string;
}

/** Options a producer may give when adding a job. Every field is optional. */
export interface JobOptions {
  /** Caller-chosen id; adding an id that exists returns the existing job (`duplicate: true`). */
  readonly id?: string;
  /** A name for the kind of work, shown in the dashboard. Default: the queue name. */
  readonly name?: string;
  /** Lower runs first; integers from 0 to 1,000,000. Default `0`. */
  readonly priority?: number;
  /** Run no earlier than this many ms after the add (measured on the store's clock). */
  readonly delayMs?: number;
  /** Run no earlier than this epoch time in ms (store clock). Wins over `delayMs`. */
  readonly runAt?: number;
  /** Attempts before the job is dead-lettered. Default `5` (`DEFAULT_MAX_ATTEMPTS`). */
  readonly maxAttempts?: number;
  /** Abort the handler after this long; overrides the pipeline's `timeoutMs`. */
  readonly timeoutMs?: number;
  readonly unique?: UniqueOptions;
  /**
   * Units of a per-job rate limit this job spends (an API that charges by weight: tokens, items,
   * points), all at one slot; an integer from 1 to 1,000,000. A job costing more than a limit's
   * `allowed` spends `allowed` (a whole window). Limits that count calls (`per: 'call'`) ignore it.
   * Default `1`.
   */
  readonly cost?: number;
  /**
   * The group (tenant, customer, entity) the job belongs to, if any: a non-empty string of at most
   * `MAX_GROUP_LENGTH` (256) characters. Groups with ready jobs are served round-robin, and a
   * pipeline's `groups` rules (see `GroupRules`) bound how many jobs of one group run at once across
   * every worker. Default: none (the job is served as today; see `GroupRules` for mixed queues).
   */
  readonly group?: string;
  /**
   * `{ keep: 'none' }` deletes this job's record as soon as it completes or is cancelled, whatever the
   * queue keeps; other values leave it to the queue's retention.
   */
  readonly retention?: Retention;
  /**
   * The producer's trace context (W3C `traceparent` / `tracestate`, as an OpenTelemetry propagator
   * writes them), kept with the job and handed to its handler (`job.trace`) and to telemetry; a
   * malformed one rejects the add with `InvalidArgumentError`.
   */
  readonly trace?: TraceContext;
}

export const MAX_PRIORITY = 1_000_000;

/** What a store's `enqueue` takes: a validated, JSON-serialisable job with its options. */
export interface NewJob<T = unknown> extends JobOptions {
  readonly queue: string;
  readonly data: T;
  /**
   * `data` already encoded as JSON (`Queue` encodes once to check its size and schema): stores keep
   * it verbatim instead of encoding `data` again.
   */
  readonly json?: string;
}

/** One attempt that ended in an error, as recorded on the job. */
export interface AttemptError extends ErrorInfo {
  readonly attempt: number;
  /** Store time of the failure, epoch ms. */
  readonly at: number;
}

/** A job as a pipeline sees it. */
export interface Job<T = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly data: T;
  /** The attempt now running, starting at 1. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly timeoutMs?: number;
  readonly uniqueKey?: string;
  /** Units of a per-job rate limit the job spends (see `JobOptions.cost`); absent means 1. */
  readonly cost?: number;
  /** The group the job belongs to (`JobOptions.group`); absent when it has none. */
  readonly group?: string;
  /** When the job was first added (store clock, epoch ms). */
  readonly createdAt: number;
  /** When the job became due (its run-at time, or its add time). */
  readonly runAt: number;
  /** The trace context its producer gave (`JobOptions.trace`). */
  readonly trace?: TraceContext;
}

/** The lease a worker holds on a running job. The token makes a late settle from a lost lease harmless. */
export interface Lease {
  readonly token: string;
  /** Store time after which the lease may be recovered, epoch ms. */
  readonly expiresAt: number;
  /** Store time the lease was granted: the job's recorded start. */
  readonly startedAt: number;
  /** The worker holding it (`ReserveOptions.workerId`), when the reserve named one. */
  readonly workerId?: string;
}

/** A job reserved for one worker, with its lease. */
export interface ReservedJob<T = unknown> extends Job<T> {
  readonly lease: Lease;
}

/** Everything the store knows about a job, for inspection (dashboard, CLI). */
export interface JobRecord<T = unknown> extends Job<T> {
  readonly state: JobState;
  readonly errors: readonly AttemptError[];
  readonly result?: unknown;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** Why the job is dead or cancelled. */
  readonly reason?: string;
  readonly lease?: Lease;
  /** The latest progress its handler reported (`ctx.progress`): a number or a small JSON value. */
  readonly progress?: unknown;
  /** The newest log lines its handler wrote (`ctx.log`), oldest first, at most `MAX_JOB_LOG_LINES`. */
  readonly logs?: readonly string[];
}

/** What a running job's handler reports about it (`ctx.progress`, `ctx.log`). */
export interface JobUpdate {
  /** Replaces the job's progress: a finite number, or a JSON object or array of at most `MAX_PROGRESS_BYTES`. */
  readonly progress?: unknown;
  /** Appended to the job's log; the log keeps the newest `MAX_JOB_LOG_LINES` lines. */
  readonly log?: readonly string[];
}

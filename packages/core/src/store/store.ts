import type { Observable } from 'rxjs';
import type {
  JobOptions,
  JobRecord,
  JobState,
  JobUpdate,
  NewJob,
  ReservedJob,
  Retention,
} from '../model/job';
import type { OutcomeKind, SettleResult, Settlement } from '../model/outcome';
import type { ErrorInfo } from '../model/errors';

/**
 * A rate limit checked by the store in the same atomic step as the reserve, so it holds across every
 * process sharing the store. The guarantee is strict: never more than `allowed` starts in any window
 * of `periodMs`, measured on the store's clock.
 */
export interface RateLimitSpec {
  /** Pipelines (or queues) with the same key share one limit. Default: the queue name. */
  readonly key?: string;
  readonly allowed: number;
  readonly periodMs: number;
  /**
   * What one unit of the limit counts. `'job'` (default): every job started. `'call'`: every handler
   * call, where one call takes up to `jobsPerCall` jobs (10 requests/s of 100 items each).
   */
  readonly per?: 'job' | 'call';
  /** Jobs per handler call when `per` is `'call'`. Default `1`. */
  readonly jobsPerCall?: number;
  /**
   * The part of `periodMs` that is a safety margin (see `timeStarts`): a store-wide override of the
   * limit's numbers keeps it, and the store widens every caller's window to the widest margin any
   * caller of the key asked for in the last `MARGIN_HOLD_MS` (10 s) plus the limit's window (a unit
   * may start as late after its slot as its caller's margin). Default `0`.
   */
  readonly marginMs?: number;
  /**
   * Further limits checked with this one in the same atomic step (400 per second and 50,000 per
   * day): a unit is placed only where every one has room, at the same slot, and moves act on all
   * of them (a pause of this limit holds them all: nothing is placed while it lasts). Each needs its own `key`; they count what this one counts (`per`,
   * `jobsPerCall` are this one's).
   */
  readonly also?: readonly RateLimitSpec[];
  /**
   * The log of this group of the queue (a group rate limit, {@link GroupRules.rateLimit}) instead of
   * a log shared by `key`: set on the further limits of a move (`rebaseLimit`) whose work was
   * counted in its group's log too.
   */
  readonly group?: string;
}

/**
 * A rate limit per group ({@link GroupRules.rateLimit}): each group of the queue has its own exact
 * sliding-window log, checked with the pipeline's limits at one slot.
 */
export interface GroupRateLimit {
  /** Jobs (units: a job's `cost`) started per window, in each group. */
  readonly allowed: number;
  /**
   * The window. At a pipeline, as the user counts it; in `ReserveOptions.groups`, the window the
   * store counts (it includes `marginMs`, as `RateLimitSpec.periodMs` does).
   */
  readonly periodMs: number;
  /**
   * At a pipeline with no pipeline-wide limit: the smallest margin for how late a start may run
   * after its slot (see `PipelineRateLimit.marginMs`). Default: 1.5% of `periodMs`, between 4 and
   * 30 ms (15 ms for a 1 s window): wider than a pipeline limit's 1%, because every group's window
   * frees at the same instants, the starts of many groups fall due together and run later. With a
   * pipeline limit its margin serves both. In `ReserveOptions.groups`: the part of `periodMs` that
   * is a margin (see `RateLimitSpec.marginMs`).
   */
  readonly marginMs?: number;
}

/** One group of a queue as `Store.listGroups` reports it. */
export interface GroupInfo {
  readonly group: string;
  /** Ready jobs of the group: its turn (if one is out) and the jobs waiting behind it. */
  readonly ready: number;
  /** Slots the group holds: jobs running, and retries keeping their slot through their backoff. */
  readonly active: number;
  /** Paused with `Store.pauseGroup`: none of its jobs is leased until it is resumed. */
  readonly paused: boolean;
  /**
   * Held back by its rate limit (`GroupRules.rateLimit`): the store time its log has room again;
   * it takes no turn until then. Absent when the group is not held back.
   */
  readonly limitedUntil?: number;
  /** The weight set for it (`Store.setGroupWeight`), when one is: turns it takes in a row each round. */
  readonly weight?: number;
}

/** Options of `Store.listGroups`. */
export interface ListGroupsOptions {
  /** Groups to skip. Default 0. */
  readonly offset?: number;
  /** Default 50. */
  readonly limit?: number;
}

/** A limit's numbers as set store-wide at runtime (see `Store.setRateLimit`). */
export interface RateLimitNumbers {
  readonly allowed: number;
  readonly periodMs: number;
}

/**
 * Reserve only full batches until the first ready job has waited `waitMs`: while it has not, reserve
 * nothing if fewer than `count` jobs are ready, and otherwise a whole multiple of `count`. Once it has,
 * reserve what there is. `bufferTime` semantics, applied in the store so no reserved job waits on a
 * timer and no rate-limited call is spent on a partial batch.
 */
export interface FillSpec {
  readonly count: number;
  readonly waitMs: number;
}

/** The answer of `Store.rebaseLimit`: the units now count at store time `at`; `now` is the call's store time. */
export interface RebaseResult {
  readonly at: number;
  readonly now: number;
}

/** The answer of `Store.pauseLimit`: no unit is placed before store time `until`; `now` is the call's. */
export interface LimitPause {
  readonly until: number;
  readonly now: number;
}

/** The answer of `Store.acquirePermits`. */
export interface PermitGrant {
  /** The permits taken (none when the cap is reached). */
  readonly ids: readonly string[];
  /** The store's now at the call. */
  readonly now: number;
}

/** Placement of units granted without jobs (see `Store.grantLimit`). */
export interface GrantLimitOptions {
  /** As `ReserveOptions.limitLeadMs`. */
  readonly leadMs?: number;
  /** As `ReserveOptions.limitAheadMs`. */
  readonly aheadMs?: number;
  /** As `ReserveOptions.limitSpread`. */
  readonly spread?: boolean;
  /** Units granted earlier that no job took, removed before the new ones are placed. */
  readonly refunds?: readonly GrantedUnits[];
}

/** Units of a limit recorded at one store time. */
export interface GrantedUnits {
  readonly at: number;
  readonly units: number;
}

/** The answer of `Store.grantLimit`. */
export interface LimitGrantAnswer {
  /** The store's now at the call. */
  readonly now: number;
  /** The units granted, in time order. */
  readonly slots: readonly GrantedUnits[];
  /** Set when fewer units than asked were granted: ms from now until the limit frees one. */
  readonly retryAfterMs?: number;
}

/** Jobs of a reserve whose rate-limit units are recorded at one store time. */
export interface LimitSlot {
  readonly at: number;
  readonly jobs: number;
}

/**
 * What a pipeline asks of the groups its jobs belong to (`JobOptions.group`), checked by the store in
 * the same atomic step as the reserve.
 *
 * Intuition: every group with ready jobs takes turns. The store keeps one turn per group in the
 * queue's ready order (its head job, "released"); a reserve takes turns from the front, and a group
 * whose turn is taken queues its next job at the back. So a group with a million ready jobs delays
 * another group's job by at most one round (one job of each group ahead of it), whatever its
 * backlog; a group that is full (its `concurrency` is reached) leaves the round until one of its
 * jobs settles, and an idle group costs nothing.
 *
 * - Priorities apply within a group (its lowest-priority job takes its next turn) and to the turns
 *   themselves (a turn carries its job's priority).
 * - Jobs without a group keep today's order and each take a turn of their own: in a mixed queue an
 *   ungrouped job is served like a group of one, in the order it became ready. Give bulk ungrouped
 *   work a group of its own to have it share fairly with the groups.
 * - A job's slot counts from its reserve to its settle (with the leases, so a crashed worker's slots
 *   come back when its leases are recovered or the job is cancelled or removed). A job retried after
 *   a failure keeps its slot while it waits out its backoff and takes the head of its group when
 *   due, so with `concurrency: 1` the jobs of a group start in the order they were added, retries
 *   included (a snoozed job gives its slot back and queues at the back of its group).
 *
 * ## Example
 * ```ts
 * const webhooks = definePipeline<Hook>(
 *   { queue: 'webhooks', concurrency: 20, groups: { concurrency: 1 } }, // one call per customer at a time
 *   (job) => post(job.data),
 * );
 * await queue.add(hook, { group: `customer-${hook.customerId}` });
 * ```
 */
export interface GroupRules {
  /**
   * Jobs of one group leased at once, at most, across every worker and process (1: one at a time
   * per group, in add order). Default: no cap (groups only take turns).
   */
  readonly concurrency?: number;
  /**
   * An exact rate limit in every group (a log per group, on the store's clock), checked in the same
   * atomic step as the reserve and together with the pipeline's own limits: a job is placed only
   * at a slot where its group's log and every pipeline limit have room. It holds by store record
   * and, with the start gate, by handler start. A group whose log is full is held back (it takes no
   * turn) until its log has room, so it costs the reserve nothing meanwhile and does not delay the
   * other groups; its job keeps its place at the head of the group. Numbers set for one group at
   * runtime (`Store.setGroupLimit`) take precedence from the next reserve. Counts jobs (or their
   * `cost`); not combined with batches. Jobs of no group are not counted in any group log.
   */
  readonly rateLimit?: GroupRateLimit;
}

export interface ReserveOptions {
  /** How long the lease lasts before the job may be recovered by another worker. */
  readonly leaseMs: number;
  readonly limit?: RateLimitSpec;
  /**
   * Under a limit: the earliest store time a unit may be recorded at, as ms after the store's now
   * (the time the answer needs to reach a worker that starts work at its slot). Default `0`.
   */
  readonly limitLeadMs?: number;
  /**
   * Under a limit: the latest store time a unit may be recorded at, as ms after the store's now, so
   * that capacity freeing soon is granted before it frees; or as far ahead as any caller of the
   * limit asked in the last 10 s (`MARGIN_HOLD_MS`), if further: a caller whose answers come
   * quickly is not left only what callers looking further ahead did not take first. Default:
   * `limitLeadMs`.
   */
  readonly limitAheadMs?: number;
  /**
   * Under a limit: place at most the limit's rate per millisecond (rounded up: one for any limit up
   * to 1,000 a second) of this reserve's units at one millisecond, the next a millisecond or more
   * later, instead of every unit at the first time with room. For a worker that starts each unit at
   * its slot (`timeStarts`): units all due at one instant start one after the other, the last ones
   * late, and are moved. At full rate the log is spread like that anyway; an idle limit's burst
   * takes `allowed` ms of slots (400 ms for 400 a second) instead of one. Default `false`.
   */
  readonly limitSpread?: boolean;
  readonly fill?: FillSpec;
  /**
   * At most this many jobs of the queue leased at once, across every worker and process (counted in
   * the store with the leases, so a crashed worker's share comes back when its leases are
   * recovered): a reserve takes only what is left, and when nothing is it answers with
   * `nextCheckInMs` ({@link ACTIVE_CAP_CHECK_MS}). Default: no cap.
   */
  readonly maxActive?: number;
  /**
   * Rules for the groups of the jobs reserved (see {@link GroupRules}). Jobs of a group always take
   * turns; without rules a group's only bound is the reserve's `n`.
   */
  readonly groups?: GroupRules;
  /** Recorded on each lease as `Lease.workerId`, so inspection can tell who holds a running job. */
  readonly workerId?: string;
  /**
   * Park what the reserve leaves of `n` (a store with {@link Store.openHandoffs} only; a caller with
   * no `limit`, `fill`, `maxActive` or `groups`). See {@link ParkSpec}.
   */
  readonly park?: ParkSpec;
}

/**
 * A caller's wish to wait in the store instead of polling. When a reserve leases fewer than `n`
 * jobs and the queue is not paused, the rest of `n` is parked under `id` until `ttlMs` from the
 * store's now: the next add that finds nothing ready before it leases its new (due, ungrouped) jobs
 * to the park and sends them over the park's channel ({@link Store.openHandoffs}) — one hop from
 * the add to the handler instead of a wake-up and a reserve. Each handoff takes its jobs off the
 * park's size; a park at 0 is gone.
 *
 * A caller holds at most one park: each reserve first removes the park of sequence `cancelSeq`
 * (when given) and reserves for what was left of it too ({@link ReserveResult.park}). Jobs handed to
 * a park whose owner is gone come back with lease recovery, like any lease.
 */
export interface ParkSpec {
  /** The caller's park id, the same for each of its reserves (its channel's name). */
  readonly id: string;
  /** This park's sequence number, new for each reserve. */
  readonly seq: number;
  readonly ttlMs: number;
  /**
   * The sequence of the caller's earlier park, removed before anything else; what was left of it is
   * added to `n` (which may then be 0: a park renewed).
   */
  readonly cancelSeq?: number;
}

/** A park's lease, handed over by an add (see {@link ParkSpec}). */
export interface Handoff<T = unknown> {
  /** The park's sequence. */
  readonly seq: number;
  /** The park's size before this handoff (the jobs, rejected ones included, are taken off it). */
  readonly parked: number;
  readonly jobs: readonly ReservedJob<T>[];
  /** Malformed records among them: dead-lettered, not in `jobs`. */
  readonly rejected: readonly RejectedJob[];
}

/** The channel a caller's parks are handed over on. */
export interface HandoffChannel<T = unknown> {
  /** Resolves once handoffs can arrive: park only after it (one sent before is not received). */
  readonly ready: Promise<void>;
  readonly handoffs: Observable<Handoff<T>>;
  /** Removes the park of sequence `seq`: what was left of it (0: all handed over, or gone). */
  unpark(seq: number): Promise<number>;
  close(): void;
}

/** How soon a reserve held back by `maxActive` suggests looking again, in ms. */
export const ACTIVE_CAP_CHECK_MS = 20;

/** A job the store found malformed while reserving; it went to the dead-letter queue instead. */
export interface RejectedJob {
  readonly id: string;
  readonly reason: string;
}

export interface ReserveResult<T = unknown> {
  /** At most `n` jobs, leased, in priority-then-FIFO order. */
  readonly jobs: readonly ReservedJob<T>[];
  /**
   * Set when the rate limit stopped the reserve short: ms from now until the limit frees a unit. The
   * caller must not reserve again before then (a wake-up does not change it).
   */
  readonly retryAfterMs?: number;
  /**
   * Set when the answer was short for a reason time will fix: a fill wait, or the next scheduled job
   * becoming due. The caller may sleep this long (a wake-up signal may cut the sleep short).
   */
  readonly nextCheckInMs?: number;
  /**
   * Under a limit (or a group limit): the store times the jobs' units were recorded at, in time order; the first
   * `jobs` jobs belong to the first slot, and so on. Work of a slot should start at its time, not
   * before (see `timeStarts`). With limits counting calls, a slot's jobs fill whole calls.
   */
  readonly slots?: readonly LimitSlot[];
  /**
   * The store time `slots` relate to, when it is not the jobs' `lease.startedAt` (a partitioned
   * queue's units are granted on the limit's slot, its jobs leased on their partition's).
   */
  readonly storeNow?: number;
  /** The queue is paused; nothing was reserved. */
  readonly paused: boolean;
  readonly rejected: readonly RejectedJob[];
  /**
   * With `ReserveOptions.park`: what was left of the earlier park (`cancelSeq`), now removed and
   * added to `n` (0 if all of it was handed over or its time ran out), and how much of `n` is
   * parked now.
   */
  readonly park?: { readonly reclaimed: number; readonly parked: number };
}

export interface EnqueueResult {
  readonly id: string;
  /** The add matched an existing job (same `id` or a live unique key); nothing new was stored. */
  readonly duplicate: boolean;
}

export interface LeaseRef {
  readonly id: string;
  readonly token: string;
}

export interface ExtendResult {
  /** Lease deadlines moved to now + `leaseMs`. */
  readonly extended: readonly string[];
  /** Ids whose lease no longer matches: their handlers should stop, their settle would be refused. */
  readonly lost: readonly string[];
}

export interface RecoverResult {
  /** Jobs whose lease expired, put back in the queue. */
  readonly recovered: readonly string[];
  /** Jobs whose lease expired on their last attempt, dead-lettered. */
  readonly dead: readonly string[];
}

/** Settings every worker of a queue obeys, whichever process changed them. */
export interface QueueSettings {
  readonly paused: boolean;
  /** Overrides the concurrency of every pipeline on this queue; `undefined` means each pipeline's own. */
  readonly concurrency?: number;
}

export type JobCounts = Readonly<Record<JobState, number>>;

export interface QueueStats {
  readonly queue: string;
  /**
   * Jobs in each state now. For `completed`, `cancelled` and `dead` that is the records the queue's
   * retention still keeps (also in `retained`), not how many ever got there (`totals`).
   */
  readonly counts: JobCounts;
  /** Records kept of jobs in terminal states (the same numbers as `counts`; see `QueueConfig.retention`). */
  readonly retained: {
    readonly completed: number;
    readonly cancelled: number;
    readonly dead: number;
  };
  readonly paused: boolean;
  /** Monotonic counters since the queue was created, whatever the retention deleted since. */
  readonly totals: {
    /** Jobs added. */
    readonly enqueued: number;
    /** Jobs completed. */
    readonly completed: number;
    /**
     * Failed attempts of every kind: `handlerFailures + leaseExpiries` (kept for readers of earlier
     * versions; the two parts say what failed).
     */
    readonly failed: number;
    /** Attempts whose handler failed (threw, timed out), whether the job was retried or dead-lettered. */
    readonly handlerFailures: number;
    /** Attempts whose lease expired (the worker crashed or stalled) and were recovered by the store. */
    readonly leaseExpiries: number;
    /** Jobs dead-lettered. */
    readonly dead: number;
    /** Jobs cancelled (before or while they ran). */
    readonly cancelled: number;
  };
}

/** Per-minute counters, for throughput and failure-rate charts. */
export interface MinuteBucket {
  /** Start of the minute, epoch ms (store clock). */
  readonly minute: number;
  readonly completed: number;
  readonly failed: number;
}

/** An event on a queue's cross-process event stream; `kind` is the outcome's name ({@link OutcomeKind}). */
export interface JobEvent {
  readonly queue: string;
  readonly id: string;
  readonly kind: OutcomeKind;
  readonly at: number;
  readonly result?: unknown;
  readonly error?: ErrorInfo;
  readonly reason?: string;
}

/** A running job's progress or log lines, as its handler reported them, from any process. */
export interface JobProgressEvent {
  readonly queue: string;
  readonly id: string;
  /** Store time of the report. */
  readonly at: number;
  /** The new progress, when the report set it. */
  readonly progress?: unknown;
  /** The lines the report appended. */
  readonly log?: readonly string[];
}

export interface ListOptions {
  /** Matching jobs to skip. Default 0. */
  readonly offset?: number;
  /** Default 50. */
  readonly limit?: number;
  /** Only jobs of this name (a job added without one has the queue's name). */
  readonly name?: string;
  /**
   * Only jobs whose time is at or after this (epoch ms, store clock). The time is the one that
   * orders the state: the run-at of ready and scheduled jobs, the lease start of running ones, the
   * finish time of completed, cancelled and dead ones.
   */
  readonly from?: number;
  /** Only jobs whose time (see {@link from}) is at or before this. */
  readonly to?: number;
}

/** Options of `Store.obliterate`. */
export interface ObliterateOptions {
  /**
   * Obliterate even while jobs of the queue run: their records go too, their workers are told to
   * abort them (as by `cancel`), and whatever those workers send later (a settle, a lease
   * extension, a progress report) is refused and writes nothing. Default `false`: refuse with
   * `QueueBusyError`, deleting nothing.
   */
  readonly force?: boolean;
}

/** What `Store.obliterate` deleted. */
export interface ObliterateResult {
  /** Job records deleted, in every state. */
  readonly jobs: number;
  /** Of those, jobs that were running (only with `force`; their workers were told to abort them). */
  readonly running: number;
}

/** What `cancel` did. */
export type CancelResult =
  /** The job was waiting; it is now `cancelled` and will not run. */
  | 'cancelled'
  /** The job is running; its worker was told to abort it and will settle it as cancelled. */
  | 'signalled'
  /** The job already finished. */
  | 'finished'
  | 'not-found';

/** A pipeline as a worker reports it (dashboard's "live workers"). */
export interface WorkerPipelineInfo {
  readonly name: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly paused: boolean;
  readonly inFlight: number;
  readonly rateLimit?: RateLimitSpec;
}

/** What a running worker reports about itself, refreshed every few seconds. */
export interface WorkerInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** Store time of the last report; set by the store. */
  readonly lastSeenAt: number;
  readonly pipelines: readonly WorkerPipelineInfo[];
}

/** A recurring job: every tick of `cron` (UTC) adds one job with `data`, exactly once across all workers. */
export interface ScheduleSpec {
  /** 5 fields (`m h dom mon dow`) or 6 with leading seconds; see `parseCron`. */
  readonly cron: string;
  readonly data?: unknown;
  readonly options?: JobOptions;
}

/** Per-queue configuration kept in the store, readable by every process (CLI, dashboard). */
export interface QueueConfig {
  /** JSON schema every payload must match; checked at add and again at reserve. */
  readonly schema?: object;
  /** How long completed and cancelled jobs are kept. Default `DEFAULT_RETENTION` (the newest 1,000). */
  readonly retention?: Retention;
  /** How long dead jobs are kept. Default: all of them (`{ keep: 'all' }`). */
  readonly deadRetention?: Retention;
  /** Recurring jobs by name; workers of the queue add each tick's job. */
  readonly schedules?: Readonly<Record<string, ScheduleSpec>>;
}

/**
 * A change of some fields of a queue's configuration (`Store.updateQueueConfig`): a field given
 * replaces the stored one and `null` removes it; schedules are patched one name at a time (`null`
 * removes that schedule). Fields not given are left as they are, whoever changed them.
 */
export interface QueueConfigPatch {
  readonly schema?: object | null;
  readonly retention?: Retention | null;
  readonly deadRetention?: Retention | null;
  readonly schedules?: Readonly<Record<string, ScheduleSpec | null>>;
}

/** What `Store.updateQueueConfig` did: the configuration before and after the patch. */
export interface QueueConfigChange {
  readonly previous: QueueConfig;
  readonly config: QueueConfig;
}

/**
 * The storage contract, named after job transitions. Pipeline-facing methods return Observables so
 * a pipeline over an in-memory store can run in RxJS virtual time; administrative methods return
 * Promises. Every implementation must pass `defineStoreContract` from `@sluice/testing`.
 *
 * Times the store reports (`at`, `runAt`, lease deadlines) are on the store's clock. Workers never
 * send absolute times: retry and snooze delays are relative, so skewed worker clocks cannot matter.
 */
export interface Store {
  /** A short name for logs: `"memory"`, `"redis"`. */
  readonly kind: string;

  // ---- producers
  /** Adds jobs atomically per queue; returns one result per job, in order. */
  enqueue(jobs: readonly NewJob[]): Observable<readonly EnqueueResult[]>;

  // ---- pipelines
  /**
   * Promotes due scheduled jobs, checks the rate limit, then leases up to `n` ready jobs (priority,
   * then FIFO) — one atomic step.
   */
  reserve<T = unknown>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>>;
  /** Applies outcomes; each one only if its lease token still matches. */
  settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]>;
  /**
   * True when a settle is applied before any call made after it (made, not answered) for the same
   * queue: it sends its work when subscribed, and the store applies calls in the order they were
   * sent (`RedisStore`: one connection to the queue's server, commands in order). The settle stage
   * then gives the demand of settled jobs back as soon as the settle is sent, so the next reserve
   * travels right behind it instead of a round trip later, and the jobs reserved and not settled in
   * the store still never exceed the budget when that reserve is applied. Default: the demand comes
   * back when the settle is answered.
   */
  readonly settlesInOrder?: boolean;
  /**
   * Moves the deadline of each lease that still holds its job to `leaseMs` after the store's now; the
   * jobs whose lease is lost are answered in `lost`. A store may hold the jobs of one reserve call
   * under one lease (`RedisStore` does, so a batch costs one lease): extending it for one of them
   * then extends it for every job of that call still held, and they expire together.
   */
  extendLeases(queue: string, leases: readonly LeaseRef[], leaseMs: number): Observable<ExtendResult>;
  /** Returns jobs with expired leases to the queue (counting the attempt). Idempotent; any node may run it. */
  recoverExpired(queue: string): Observable<RecoverResult>;
  /** Emits when jobs are added to the queue, so an idle pipeline can reserve at once. Best effort. */
  wakeups(queue: string): Observable<void>;
  /**
   * Optional: the channel of the park `parkId` of `queue` (see {@link ParkSpec}). A store without it
   * is polled and woken up instead.
   */
  openHandoffs?<T = unknown>(queue: string, parkId: string): HandoffChannel<T>;
  /** Emits the ids of running jobs of the queue that someone cancelled. */
  cancellations(queue: string): Observable<string>;
  /** Emits the queue's settings now and whenever they change. */
  settings(queue: string): Observable<QueueSettings>;
  /** Outcomes of the queue's jobs, from every process. Hot; starts with events after subscription. */
  events(queue: string): Observable<JobEvent>;
  /**
   * The queue's stored configuration now, then whenever it changes (a change made by another process
   * may take up to about a second to show). Workers validate payloads and run schedules from it.
   */
  queueConfig(queue: string): Observable<QueueConfig>;

  // ---- administration
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  /** Sets (or with `undefined` clears) the concurrency every worker of the queue uses. */
  setConcurrency(queue: string, concurrency: number | undefined): Promise<void>;
  cancel(queue: string, id: string): Promise<CancelResult>;
  getJob<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | undefined>;
  listJobs(queue: string, state: JobState, options?: ListOptions): Promise<readonly JobRecord[]>;
  /** Moves dead (or cancelled) jobs back to ready with a fresh set of attempts. Returns how many moved. */
  retryJobs(queue: string, ids: readonly string[] | 'all-dead'): Promise<number>;
  /** Makes a scheduled job due now. Returns false if the job is not scheduled. */
  promoteJob(queue: string, id: string): Promise<boolean>;
  /** Deletes a job that is not running. Returns false if it does not exist or is running. */
  removeJob(queue: string, id: string): Promise<boolean>;
  /** Deletes every job in a terminal state. Returns how many were deleted. */
  purge(queue: string, state: 'dead' | 'completed' | 'cancelled'): Promise<number>;
  stats(queue: string): Promise<QueueStats>;
  /** Per-minute completed/failed counters for the last `minutes` minutes, oldest first. */
  history(queue: string, minutes: number): Promise<readonly MinuteBucket[]>;
  /** Every queue the store has seen, sorted. */
  queues(): Promise<readonly string[]>;
  getQueueConfig(queue: string): Promise<QueueConfig>;
  /** Replaces the whole configuration (prefer {@link updateQueueConfig}, which loses no concurrent change). */
  setQueueConfig(queue: string, config: QueueConfig): Promise<void>;
  /**
   * Applies `patch` to the stored configuration atomically: two processes patching different
   * fields (or different schedules) at the same time both keep their change. An invalid patch
   * rejects with `InvalidArgumentError` and changes nothing. (Optional for custom stores; both
   * stores of this repository have it, and `Queue` falls back to read-modify-write without it.)
   */
  updateQueueConfig?(queue: string, patch: QueueConfigPatch): Promise<QueueConfigChange>;
  /**
   * Records a running job's progress and appends log lines to it (what `ctx.progress` / `ctx.log`
   * call), only while `lease` still holds the job: resolves `false` (nothing written) otherwise. Kept
   * with the job (`getJob`: `progress`, the newest `MAX_JOB_LOG_LINES` of `logs`) and published on
   * {@link jobUpdates}. Bad input (see `encodeJobUpdate`) rejects with `InvalidArgumentError`.
   * (Optional for custom stores; both stores of this repository have it.)
   */
  updateJob?(queue: string, lease: LeaseRef, update: JobUpdate): Promise<boolean>;
  /** Progress and log reports of the queue's running jobs, from every process. Hot. */
  jobUpdates?(queue: string): Observable<JobProgressEvent>;
  /**
   * Deletes every waiting job of the queue — ready and scheduled (delayed, retrying, snoozed) — and
   * releases the unique-key locks they hold; running and finished jobs stay. Resolves with how many
   * were deleted. No events are published for them. Jobs added while a drain runs may or may not be
   * deleted (a Redis drain is several atomic steps; it deletes at most as many jobs as were waiting
   * when it began, so it ends even under a steady stream of adds). (Optional for custom stores; both
   * stores of this repository have it.)
   */
  drain?(queue: string): Promise<number>;
  /**
   * Deletes the queue: every job record, its counters, settings, configuration, schedules, history,
   * event stream and unique-key locks, and its name from {@link queues}. While jobs run it rejects
   * with `QueueBusyError` and deletes nothing, unless `force` (see {@link ObliterateOptions}). The
   * queue is paused while it is being deleted, so no worker leases its jobs meanwhile; jobs added
   * during an obliterate may or may not survive it. Using the queue again afterwards starts a new,
   * empty queue. Rate-limit logs are shared by key, not owned by a queue, and stay. (Optional for
   * custom stores; both stores of this repository have it.)
   */
  obliterate?(queue: string, options?: ObliterateOptions): Promise<ObliterateResult>;
  /**
   * Pauses one group of the queue (optional capability; both stores of this repository have it):
   * none of its jobs is leased until {@link resumeGroup}, across every worker; its running jobs go
   * on and settle as usual, and the other groups are not affected. Idempotent. An invalid group
   * name rejects with `InvalidArgumentError`.
   */
  pauseGroup?(queue: string, group: string): Promise<void>;
  /** Resumes a group paused with {@link pauseGroup}, waking idle workers. Idempotent. */
  resumeGroup?(queue: string, group: string): Promise<void>;
  /**
   * The queue's groups that hold anything (a ready job, a running job, a retry keeping its slot) or
   * are paused, sorted by name (code points), one page at a time (optional capability; both stores
   * of this repository have it). A group that holds nothing and is not paused has no state at all.
   */
  listGroups?(queue: string, options?: ListGroupsOptions): Promise<readonly GroupInfo[]>;
  /** Records a worker's presence for `ttlMs` (optional capability, used by dashboards). */
  reportWorker?(info: Omit<WorkerInfo, 'lastSeenAt'>, ttlMs: number): Promise<void>;
  /** Workers whose last report has not expired. */
  workers?(): Promise<readonly WorkerInfo[]>;
  /** Units of the rate limit `key` (of `queue`) granted in the window of `periodMs` ending now. */
  rateLimitUsage?(queue: string, key: string, periodMs: number): Promise<number>;
  /**
   * Removes up to `units` of `limit` (and its further limits) recorded at exactly store time `at`:
   * units no work used (a unit handed back at its slot, never started). Units not found there
   * (moved, or gone from the log) are left alone (optional capability). Always safe: removing
   * units no work used only lowers every window's count.
   */
  refundLimit?(queue: string, limit: RateLimitSpec, at: number, units: number): Observable<void>;
  /**
   * Takes up to `count` permits of a cap of `max` held at once for `queue` (a semaphore kept with
   * the leases: a permit expires `leaseMs` after the store's now unless extended, so a crashed
   * worker's permits come back when its leases would). For work leased by other calls: a
   * partitioned queue's global concurrency (see `PartitionedStore`). Optional capability; both
   * stores of this repository have it.
   */
  acquirePermits?(queue: string, max: number, count: number, leaseMs: number): Observable<PermitGrant>;
  /** Gives permits back (unknown or expired ones are ignored). */
  releasePermits?(queue: string, ids: readonly string[]): Observable<void>;
  /** Moves the expiry of held permits to `leaseMs` after the store's now; answers the ids still held. */
  extendPermits?(queue: string, ids: readonly string[], leaseMs: number): Observable<readonly string[]>;
  /**
   * Records up to `units` of `limit` (and its further limits) with no jobs attached, placed as a
   * reserve places them (`options` as `ReserveOptions.limitLeadMs`, `limitAheadMs`,
   * `limitSpread`), after first removing the `refunds` (units granted earlier that no job took).
   * For work leased by other calls: a partitioned queue's partitions live in other slots than the
   * limit's log, so its reserve takes units here, then jobs from the partitions (see
   * `PartitionedStore`). Optional capability; both stores of this repository have it.
   */
  grantLimit?(
    queue: string,
    limit: RateLimitSpec,
    units: number,
    options?: GrantLimitOptions,
  ): Observable<LimitGrantAnswer>;
  /**
   * Moves `units` of `limit` recorded at store time `from` (work that could not start within the
   * limit's margin after it: a stalled worker, a slot it learnt of too late) to a store time `leadMs`
   * or more after now, all of them together (optional capability): exactly `leadMs` after now,
   * among slots already granted to later units, where the log holds them at `from` and no more than
   * `allowed` minus them after it (then every window stays within the limit:
   * `SlidingWindowLimiter.moveInPlace`); else the first time after the newest slot where the window
   * has room. Always safe: the units leave a time no work started at, and their new time keeps
   * every window within the limit.
   */
  rebaseLimit?(
    queue: string,
    limit: RateLimitSpec,
    from: number,
    units: number,
    leadMs?: number,
  ): Observable<RebaseResult>;
  /**
   * Pauses `limit` for `ms` from the store's now (optional capability): no reserve or move places a
   * unit before then, across every process, and every process listening with `limitPauses` hears of
   * it. For a provider that refused a call (`{ retryAfter }`). A pause never shortens one in force.
   */
  pauseLimit?(queue: string, limit: RateLimitSpec, ms: number): Observable<LimitPause>;
  /**
   * Sets the numbers of rate-limit `key` (of `queue`) store-wide, for every worker and process from
   * their next reserve, whatever their own configuration says; `null` goes back to each worker's
   * own numbers (optional capability). Without an override, each reserve checks the numbers its
   * worker asks with, so a rolling deploy that ships new numbers never stalls: during the overlap
   * each grant keeps the numbers of the worker that asked.
   */
  setRateLimit?(queue: string, key: string, numbers: RateLimitNumbers | null): Promise<void>;
  /**
   * Sets the numbers of one group's rate limit (`GroupRules.rateLimit`) for every worker and
   * process, from their next reserve (a premium customer gets 10×); `null` goes back to the numbers
   * each pipeline declares (optional capability). The group's log keeps its entries, so a change
   * never lets a window hold more than the numbers checked when each unit was placed. Applies to
   * pipelines that declare `groups.rateLimit`. Bad numbers or group names reject with
   * `InvalidArgumentError`.
   */
  setGroupLimit?(queue: string, group: string, numbers: RateLimitNumbers | null): Promise<void>;
  /** The numbers set for one group with {@link setGroupLimit}, if any. */
  getGroupLimit?(queue: string, group: string): Promise<RateLimitNumbers | null>;
  /**
   * Gives one group a weight (an integer from 1 to `MAX_GROUP_WEIGHT`): it takes that many turns
   * in a row each round, so it is served `weight` times as often as a group of weight 1 while both
   * have ready jobs (its concurrency and rate limit still apply). From the next reserve of every
   * worker; `null` (or 1) goes back to 1. Kept in the store until cleared, also while the group
   * holds nothing (optional capability). Bad weights or group names reject with
   * `InvalidArgumentError`.
   */
  setGroupWeight?(queue: string, group: string, weight: number | null): Promise<void>;
  /** The weight set for one group with {@link setGroupWeight}, if any. */
  getGroupWeight?(queue: string, group: string): Promise<number | null>;
  /** The store-wide numbers of `key`, if set. */
  getRateLimit?(queue: string, key: string): Promise<RateLimitNumbers | null>;
  /** The store time until which `limit` is paused, each time any process pauses it. */
  limitPauses?(queue: string, limit: RateLimitSpec): Observable<number>;
  /**
   * The store's clock (ms), as it stamps `queue`'s grants and leases (optional capability; a worker
   * reads it a few times before its first reserve under a rate limit, to map grant times onto its
   * own clock).
   */
  storeTime?(queue: string): Observable<number>;
  close(): Promise<void>;
}

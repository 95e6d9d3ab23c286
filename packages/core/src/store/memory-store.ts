import {
  asyncScheduler,
  BehaviorSubject,
  defer,
  filter,
  map,
  type Observable,
  of,
  Subject,
  type SchedulerLike,
} from 'rxjs';
import {
  InvalidArgumentError,
  QueueBusyError,
  StoreClosedError,
  StoreError,
  type ErrorInfo,
} from '../model/errors';
import {
  JobState,
  type AttemptError,
  type JobRecord,
  type Lease,
  type NewJob,
  type ReservedJob,
  type JobUpdate,
  type Retention,
  type TraceContext,
} from '../model/job';
import {
  boundAttemptErrors,
  DEFAULT_HISTORY_MINUTES,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_DEAD_RETENTION,
  DEFAULT_RETENTION,
  fillTemplate,
  leaseExpiredError,
  MAX_JOB_LOG_LINES,
  StoreText,
} from '../model/limits';
import { LimiterRegistry, SlidingWindowLimiter, spreadPerMs, type ItemPlan } from '../runtime/limiter';
import type { SettleResult, Settlement } from '../model/outcome';
import { ACTIVE_CAP_CHECK_MS } from './store';
import type {
  CancelResult,
  EnqueueResult,
  ExtendResult,
  JobEvent,
  JobProgressEvent,
  LeaseRef,
  ListOptions,
  MinuteBucket,
  ObliterateOptions,
  ObliterateResult,
  QueueConfig,
  QueueConfigChange,
  QueueConfigPatch,
  QueueSettings,
  QueueStats,
  GroupInfo,
  GroupRateLimit,
  LimitPause,
  LimitSlot,
  GrantLimitOptions,
  LimitGrantAnswer,
  PermitGrant,
  ListGroupsOptions,
  RateLimitNumbers,
  RateLimitSpec,
  RebaseResult,
  RecoverResult,
  ReserveOptions,
  ReserveResult,
  Store,
  WorkerInfo,
} from './store';
import {
  assertGroupName,
  assertGroupWeight,
  assertListOptions,
  assertGrantUnits,
  assertPermitArgs,
  assertQueueName,
  assertRetention,
  encodeJobUpdate,
  validateNewJob,
} from '../model/validation';
import { applyConfigPatch, assertConfigPatch } from './queue-config';
import { Heap } from './heap';

export interface MemoryStoreConfig {
  /**
   * The store's clock and nothing else: every time it records comes from `scheduler.now()`, so a
   * pipeline over a `MemoryStore` runs in RxJS virtual time inside `TestScheduler.run`.
   * Default `asyncScheduler` (which `TestScheduler.run` virtualises too).
   */
  readonly scheduler?: SchedulerLike;
  /** Minutes of per-minute counters kept for `history`. Default 1,440 (a day). */
  readonly historyMinutes?: number;
}

interface Rec {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly json: string;
  readonly createdAt: number;
  readonly timeoutMs: number | undefined;
  readonly uniqueKey: string | undefined;
  readonly retention: Retention | undefined;
  /** Units of a per-job rate limit (absent: 1). */
  readonly cost: number | undefined;
  readonly trace: TraceContext | undefined;
  /** The job's group (`JobOptions.group`), if any. */
  readonly group: string | undefined;
  /** A retried job of a group keeps its group slot while it waits out its backoff. */
  holdsSlot: boolean;
  maxAttempts: number;
  priority: number;
  attempt: number;
  runAt: number;
  /** When the job last became ready (for fill waits). */
  readyAt: number;
  state: JobState;
  /** Bumped whenever the record enters the ready or scheduled heap; stale heap entries are skipped. */
  seq: number;
  errors: AttemptError[];
  result: unknown;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  reason: string | undefined;
  lease: Lease | undefined;
  progressJson: string | undefined;
  logs: string[];
}

interface HeapEntry {
  readonly rec: Rec;
  readonly seq: number;
  readonly key: number;
}

/**
 * One group's state, as `lua/includes/groups.lua` keeps it in Redis: at most one turn out (a job in
 * the queue's `ready` heap), the rest waiting here; dropped when it holds nothing.
 */
interface GroupData {
  /** Jobs waiting in the group, not released: by priority, then sequence (negative: put in front). */
  readonly waiting: Heap<HeapEntry>;
  /** Slots held: jobs leased, and retries waiting out their backoff. */
  slots: number;
  /** The job whose turn is out (in the queue's `ready` heap), if any. */
  turn: Rec | undefined;
  /** Held back by its rate limit until this store time: no turn until a reserve promotes it. */
  heldUntil: number | undefined;
  /** Turns taken in a row this round (a weighted group takes its weight's worth). */
  streak: number;
}

interface QueueData {
  readonly name: string;
  /** Groups holding anything (a slot, a turn, a waiting job). */
  readonly groups: Map<string, GroupData>;
  /** Groups paused with `pauseGroup`: they get no turn. */
  readonly pausedGroups: Set<string>;
  /** Each group's rate-limit log (`GroupRules.rateLimit`), created at the group's first placement. */
  readonly groupLimiters: Map<string, SlidingWindowLimiter>;
  /** Numbers set for one group with `setGroupLimit`. */
  readonly groupNumbers: Map<string, RateLimitNumbers>;
  /** Weights set for groups with `setGroupWeight` (2 or more). */
  readonly groupWeights: Map<string, number>;
  /** Groups held back by their rate limit, with the store time they may take turns again. */
  readonly heldGroups: Map<string, number>;
  readonly jobs: Map<string, Rec>;
  readonly ready: Heap<HeapEntry>;
  readonly scheduled: Heap<HeapEntry>;
  readonly running: Map<string, Rec>;
  /** Finished jobs (completed, cancelled) in finish order, for retention. */
  readonly finished: Map<string, Rec>;
  readonly dead: Map<string, Rec>;
  readonly counts: Record<JobState, number>;
  readonly totals: {
    enqueued: number;
    completed: number;
    failed: number;
    leaseExpiries: number;
    dead: number;
    cancelled: number;
  };
  readonly history: Map<number, { completed: number; failed: number }>;
  readonly settings: BehaviorSubject<QueueSettings>;
  readonly wakeups: Subject<void>;
  readonly cancellations: Subject<string>;
  readonly events: Subject<JobEvent>;
  readonly updates: Subject<JobProgressEvent>;
  readonly config: BehaviorSubject<QueueConfig>;
}

const MINUTE = 60_000;

/**
 * A complete store held in process memory: the embedded default and the marble-test backend.
 *
 * It keeps the same semantics as the Redis store — priority then FIFO, delayed jobs, leases with
 * tokens, recovery of expired leases, the sliding-window rate limit checked inside `reserve`, unique
 * keys, retention, dead-letter queue — so a pipeline tested against it behaves the same in production.
 * Payloads are stored as JSON, exactly as Redis stores them, so a producer mutating an object after
 * `add` cannot change the job. Every pipeline-facing call is synchronous under the hood and returns a
 * cold Observable; time comes only from the scheduler.
 *
 * Nothing survives the process: use `RedisStore` when jobs must outlive a restart.
 *
 * ## Example
 * ```ts
 * const store = new MemoryStore();
 * const queue = new Queue(store, 'emails');
 * await queue.add({ to: 'a@example.com' });
 * const worker = new Worker({ store, pipelines: [emails] });
 * worker.start();
 * ```
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly scheduler: SchedulerLike;
  private readonly historyMinutes: number;
  private readonly queuesByName = new Map<string, QueueData>();
  /**
   * Obliterated queues: empty data keeping the subjects their subscribers (workers) still listen
   * to, taken back if the queue is used again.
   */
  private readonly dormant = new Map<string, QueueData>();
  private readonly uniqueLocks = new Map<string, { id: string; expiresAt: number }>();
  private readonly limiters = new LimiterRegistry();
  /** Permits of queue-wide caps (`acquirePermits`): queue → permit id → expiry (store time). */
  private readonly permits = new Map<string, Map<string, number>>();
  private permitSeq = 0;
  /** Store-wide numbers of rate-limit keys (`setRateLimit`). */
  private readonly limitNumbers = new Map<string, RateLimitNumbers>();
  /** Limit pauses, for every worker on this store. */
  private readonly pauses = new Subject<{ key: string; until: number }>();
  private readonly workerReports = new Map<string, { info: WorkerInfo; expiresAt: number }>();
  private nextId = 0;
  private nextSeq = 0;
  /** Sequences of jobs put in front of their group count down from here. */
  private frontSeq = 0;
  private nextToken = 0;
  private closed = false;

  constructor(config: MemoryStoreConfig = {}) {
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.historyMinutes = config.historyMinutes ?? DEFAULT_HISTORY_MINUTES;
  }

  /** The store's clock, epoch ms (or virtual frames under a TestScheduler). */
  now(): number {
    return this.scheduler.now();
  }

  // ------------------------------------------------------------------ producers

  enqueue(jobs: readonly NewJob[]): Observable<readonly EnqueueResult[]> {
    return defer(() => {
      this.assertOpen();
      const now = this.now();
      // Validate everything before storing anything: a bad job in a bulk add stores nothing.
      for (const job of jobs) validateNewJob(job);
      const results = jobs.map((job) => this.enqueueOne(job, now));
      const woken = new Set<string>();
      results.forEach((r, i) => {
        const queue = jobs[i]?.queue;
        if (!r.duplicate && queue !== undefined) woken.add(queue);
      });
      for (const queue of woken) this.queue(queue).wakeups.next();
      return of(results);
    });
  }

  private enqueueOne(job: NewJob, now: number): EnqueueResult {
    const q = this.queue(job.queue);
    if (job.id !== undefined && q.jobs.has(job.id)) return { id: job.id, duplicate: true };
    if (job.unique) {
      const lockKey = `${job.queue}\u0000${job.unique.key}`;
      const lock = this.uniqueLocks.get(lockKey);
      if (lock && lock.expiresAt > now) return { id: lock.id, duplicate: true };
    }
    let id = job.id;
    // Generated ids skip any a caller chose, so an add never overwrites another job.
    while (id === undefined || (job.id === undefined && q.jobs.has(id))) id = String(++this.nextId);
    const runAt = job.runAt ?? now + (job.delayMs ?? 0);
    const rec: Rec = {
      id,
      queue: job.queue,
      name: job.name ?? job.queue,
      json: job.json ?? JSON.stringify(job.data),
      createdAt: now,
      timeoutMs: job.timeoutMs,
      uniqueKey: job.unique?.key,
      retention: job.retention,
      cost: job.cost === 1 ? undefined : job.cost,
      trace: job.trace && {
        traceparent: job.trace.traceparent,
        ...(job.trace.tracestate === undefined ? {} : { tracestate: job.trace.tracestate }),
      },
      group: job.group,
      holdsSlot: false,
      maxAttempts: job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      priority: job.priority ?? 0,
      attempt: 0,
      runAt,
      readyAt: now,
      state: JobState.Ready,
      seq: 0,
      errors: [],
      result: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      reason: undefined,
      lease: undefined,
      progressJson: undefined,
      logs: [],
    };
    q.jobs.set(id, rec);
    q.totals.enqueued++;
    q.counts.ready++; // moved to scheduled below when due later
    if (runAt > now) this.toScheduled(q, rec, runAt);
    else this.pushReady(q, rec, now);
    if (job.unique) {
      this.uniqueLocks.set(`${job.queue}\u0000${job.unique.key}`, { id, expiresAt: now + job.unique.ttlMs });
    }
    return { id, duplicate: false };
  }

  // ------------------------------------------------------------------ pipelines

  reserve<T = unknown>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> {
    return defer(() => {
      this.assertOpen();
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`reserve needs n ≥ 1, got ${n}`);
      const q = this.queue(queue);
      const now = this.now();
      if (q.settings.value.paused) return of({ jobs: [], paused: true, rejected: [] });
      this.promoteDue(q, now);
      this.promoteHeldGroups(q, now);

      const head = this.peekReady(q);
      const fill = options.fill;
      if (fill && head && q.counts.ready < fill.count && now - head.readyAt < fill.waitMs) {
        return of({
          jobs: [],
          paused: false,
          rejected: [],
          nextCheckInMs: fill.waitMs - (now - head.readyAt),
        });
      }

      let max = Math.min(n, q.counts.ready);
      let capped = false;
      if (options.maxActive !== undefined && max > 0) {
        const room = Math.max(0, Math.floor(options.maxActive) - q.running.size);
        if (room < max) {
          max = room;
          capped = true;
        }
      }
      // Until the head job has waited `waitMs`, only whole batches of `fill.count` go.
      if (fill && head && now - head.readyAt < fill.waitMs) {
        max = Math.min(max, Math.floor(q.counts.ready / fill.count) * fill.count);
      }
      const limit = options.limit;
      const limiters = limit ? this.limitersOf(queue, limit) : undefined;
      const perCall = limit?.per === 'call' ? Math.max(1, limit.jobsPerCall ?? 1) : 1;
      let plan: ItemPlan | undefined;
      const window = placementWindow(
        limiters,
        now,
        options.limitLeadMs,
        options.limitAheadMs,
        options.limitSpread,
      );
      if (limiters && max > 0) {
        // At one unit a job (or call) at most this many can go: pop no more than that.
        plan = planUnits(limiters, Math.ceil(max / perCall), undefined, now, window);
        max = Math.min(max, plan.granted * perCall);
      }

      let popped: Rec[] = [];
      const groupCap = options.groups?.concurrency;
      const groupLimit = options.groups?.rateLimit;
      // Under a group limit each job is placed as it is popped (see `placeJob`).
      let placed: number[] = [];
      let limitedRetry: number | undefined;
      while (popped.length < max) {
        const rec = this.popReady(q);
        if (!rec) break;
        // A turn of a full group goes back to the front of its group, and counts for nothing.
        if (rec.group !== undefined && !this.groupTake(q, rec, rec.group, groupCap)) continue;
        if (groupLimit) {
          const place = this.placeJob(q, rec, limiters, groupLimit, now, window.earliest, window.latest);
          if (place.at !== undefined) {
            popped.push(rec);
            placed.push(place.at);
          } else if (place.short === 'group' && rec.group !== undefined) {
            // The group's log is full: the group waits, out of the turns, until it has room.
            this.groupHoldBack(q, rec, rec.group, now + place.retryMs);
          } else {
            // The queue's limits are full: the job goes back to the head, and the reserve stops.
            if (rec.group === undefined) q.ready.push({ rec, seq: rec.seq, key: rec.priority });
            else {
              this.groupPush(q, rec, rec.group, true);
              this.groupFree(q, rec.group);
            }
            limitedRetry = place.retryMs;
            break;
          }
        } else popped.push(rec);
      }
      if (groupLimit && popped.length > 1) {
        // In time order: jobs sorted by slot, stably (a group's jobs keep their order).
        const order = popped
          .map((_, i) => i)
          .sort((a, b) => (placed[a] as number) - (placed[b] as number) || a - b);
        popped = order.map((i) => popped[i] as Rec);
        placed = order.map((i) => placed[i] as number);
      }
      let sizes: number[] | undefined;
      if (!groupLimit && limiters && perCall === 1 && popped.some((r) => (r.cost ?? 1) > 1)) {
        // Per-job limits: a job spends its cost, at most the smallest allowed, all at one slot.
        const cap = Math.min(...limiters.map((l) => l.allowed));
        sizes = popped.map((r) => Math.min(r.cost ?? 1, cap));
        plan = planUnits(limiters, popped.length, sizes, now, window);
        // What the limits do not grant goes back, in order (same heap position; a job of a group to
        // the front of its group, giving its slot back).
        for (const rec of popped.splice(plan.granted).reverse()) {
          if (rec.group === undefined) q.ready.push({ rec, seq: rec.seq, key: rec.priority });
          else {
            this.groupPush(q, rec, rec.group, true);
            this.groupFree(q, rec.group);
          }
        }
      }
      const jobs = popped.map((rec) => this.lease<T>(q, rec, now, options.leaseMs, options.workerId));
      const result: {
        jobs: ReservedJob<T>[];
        paused: false;
        rejected: [];
        slots?: readonly LimitSlot[];
        retryAfterMs?: number;
        nextCheckInMs?: number;
      } = {
        jobs,
        paused: false,
        rejected: [],
      };
      let limited = false;
      if (groupLimit) {
        const slots: LimitSlot[] = [];
        for (const at of placed) {
          const last = slots[slots.length - 1];
          if (last && last.at === at) slots[slots.length - 1] = { at, jobs: last.jobs + 1 };
          else slots.push({ at, jobs: 1 });
        }
        if (slots.length > 0) result.slots = slots;
        // Limited if the queue's limits cut the answer short: one could not be placed, or they
        // granted no more than were taken while ready jobs remain.
        const retry =
          limitedRetry ??
          (plan?.retryAfterMs !== undefined && jobs.length === max && this.peekReady(q) !== undefined
            ? plan.retryAfterMs
            : undefined);
        if (retry !== undefined) {
          limited = true;
          plan = { slots: [], granted: 0, retryAfterMs: retry };
        }
      } else if (limiters && plan) {
        const recorded = SlidingWindowLimiter.commitAll(
          limiters,
          plan,
          Math.ceil(jobs.length / perCall),
          sizes,
        );
        if (jobs.length > 0) result.slots = slotsOfJobs(recorded, jobs.length, perCall);
        // Limited only if the limit, not the queue, cut the answer short.
        // (Ready jobs left only in full groups do not count: no reserve could take them now.)
        limited =
          plan.retryAfterMs !== undefined &&
          (jobs.length === max || sizes !== undefined) &&
          this.peekReady(q) !== undefined;
      }
      if (limited && plan) result.retryAfterMs = plan.retryAfterMs ?? 1;
      else if (capped && jobs.length < n) result.nextCheckInMs = ACTIVE_CAP_CHECK_MS;
      else if (jobs.length < n) {
        let next = this.nextDue(q);
        for (const until of q.heldGroups.values()) if (next === undefined || until < next) next = until;
        if (next !== undefined) result.nextCheckInMs = Math.max(1, next - now);
      }
      return of(result);
    });
  }

  settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    return defer(() => {
      this.assertOpen();
      const now = this.now();
      return of(settlements.map((s) => this.settleOne(s, now)));
    });
  }

  private settleOne(s: Settlement, now: number): SettleResult {
    const q = this.queuesByName.get(s.queue);
    const rec = q?.jobs.get(s.id);
    if (!q || !rec) return { id: s.id, applied: false, reason: 'not-found' };
    if (rec.state !== JobState.Running || rec.lease?.token !== s.token) {
      return { id: s.id, applied: false, reason: 'lease-lost' };
    }
    q.running.delete(rec.id);
    rec.lease = undefined;
    const group = rec.group;
    // Every outcome gives the group slot back, except a retry with a delay (kept through the backoff).
    if (group !== undefined && !(s.kind === 'retrying' && s.delayMs > 0)) this.groupFree(q, group);
    switch (s.kind) {
      case 'completed':
        rec.result = encodableResult(s.result);
        this.finish(q, rec, JobState.Completed, now);
        q.totals.completed++;
        this.bump(q, now, 'completed');
        q.events.next({ queue: q.name, id: rec.id, kind: 'completed', at: now, result: rec.result });
        return { id: s.id, applied: true, at: now };
      case 'retrying': {
        this.recordError(rec, s.error, now);
        q.totals.failed++;
        this.bump(q, now, 'failed');
        const runAt = now + Math.max(0, s.delayMs);
        this.move(q, rec, JobState.Running, JobState.Ready);
        if (runAt > now) {
          this.toScheduled(q, rec, runAt);
          rec.holdsSlot = group !== undefined;
        } else this.pushReady(q, rec, now, true);
        q.events.next({ queue: q.name, id: rec.id, kind: 'retrying', at: now, error: s.error });
        return { id: s.id, applied: true, at: now, runAt };
      }
      case 'dead':
        if (s.error) {
          this.recordError(rec, s.error, now);
          q.totals.failed++;
          this.bump(q, now, 'failed');
        }
        this.toDead(q, rec, s.reason, now);
        q.events.next({
          queue: q.name,
          id: rec.id,
          kind: 'dead',
          at: now,
          reason: s.reason,
          ...(s.error ? { error: s.error } : {}),
        });
        return { id: s.id, applied: true, at: now };
      case 'snoozed': {
        rec.attempt = Math.max(0, rec.attempt - 1);
        // Handed back: units its group's log recorded for it and no work used go back.
        if (s.front === true && s.unused && group !== undefined) {
          q.groupLimiters.get(group)?.refund(s.unused.units, s.unused.at);
          const g = q.groups.get(group);
          if (g) g.heldUntil = undefined; // its log has room again: it takes turns again
          q.heldGroups.delete(group);
        }
        const runAt = now + Math.max(0, s.delayMs);
        this.move(q, rec, JobState.Running, JobState.Ready);
        if (runAt > now) this.toScheduled(q, rec, runAt);
        else if (s.front === true && rec.group === undefined) {
          // Handed back: the head of its priority, as if never reserved.
          rec.state = JobState.Ready;
          rec.readyAt = now;
          rec.seq = -++this.frontSeq;
          q.ready.push({ rec, seq: rec.seq, key: rec.priority });
        } else this.pushReady(q, rec, now, s.front === true);
        q.events.next({ queue: q.name, id: rec.id, kind: 'snoozed', at: now });
        return { id: s.id, applied: true, at: now, runAt };
      }
      case 'cancelled':
        rec.reason = s.reason;
        this.finish(q, rec, JobState.Cancelled, now);
        q.events.next({ queue: q.name, id: rec.id, kind: 'cancelled', at: now, reason: s.reason });
        return { id: s.id, applied: true, at: now };
    }
  }

  extendLeases(queue: string, leases: readonly LeaseRef[], leaseMs: number): Observable<ExtendResult> {
    return defer(() => {
      this.assertOpen();
      // A lease of a queue that is gone (obliterated) is lost; looking does not create the queue.
      const q = this.queuesByName.get(queue);
      const now = this.now();
      const extended: string[] = [];
      const lost: string[] = [];
      for (const ref of leases) {
        const rec = q?.running.get(ref.id);
        if (rec?.lease?.token === ref.token) {
          rec.lease = { ...rec.lease, expiresAt: now + leaseMs };
          extended.push(ref.id);
        } else lost.push(ref.id);
      }
      return of({ extended, lost });
    });
  }

  recoverExpired(queue: string): Observable<RecoverResult> {
    return defer(() => {
      this.assertOpen();
      const q = this.queuesByName.get(queue);
      if (!q) return of({ recovered: [], dead: [] });
      const now = this.now();
      const recovered: string[] = [];
      const dead: string[] = [];
      for (const rec of [...q.running.values()]) {
        if (!rec.lease || rec.lease.expiresAt > now) continue;
        q.running.delete(rec.id);
        rec.lease = undefined;
        const error = leaseExpiredError(rec.attempt);
        this.recordError(rec, error, now);
        q.totals.failed++;
        q.totals.leaseExpiries++;
        this.bump(q, now, 'failed');
        if (rec.attempt >= rec.maxAttempts) {
          const reason = fillTemplate(StoreText.LeaseExpired, {
            attempt: rec.attempt,
            maxAttempts: rec.maxAttempts,
          });
          this.toDead(q, rec, reason, now);
          q.events.next({ queue: q.name, id: rec.id, kind: 'dead', at: now, reason, error });
          dead.push(rec.id);
        } else {
          this.move(q, rec, JobState.Running, JobState.Ready);
          this.pushReady(q, rec, now, true);
          q.events.next({ queue: q.name, id: rec.id, kind: 'retrying', at: now, error });
          recovered.push(rec.id);
        }
        if (rec.group !== undefined) this.groupFree(q, rec.group);
      }
      if (recovered.length > 0) q.wakeups.next();
      // Workers run this every few seconds: age-based retention needs no settle to advance.
      this.applyRetention(q, now);
      return of({ recovered, dead });
    });
  }

  wakeups(queue: string): Observable<void> {
    return defer(() => this.queue(queue).wakeups);
  }

  cancellations(queue: string): Observable<string> {
    return defer(() => this.queue(queue).cancellations);
  }

  settings(queue: string): Observable<QueueSettings> {
    return defer(() => this.queue(queue).settings);
  }

  events(queue: string): Observable<JobEvent> {
    return defer(() => this.queue(queue).events);
  }

  jobUpdates(queue: string): Observable<JobProgressEvent> {
    return defer(() => this.queue(queue).updates);
  }

  updateJob(queue: string, lease: LeaseRef, update: JobUpdate): Promise<boolean> {
    return this.run(() => {
      const { progressJson, lines } = encodeJobUpdate(update);
      const q = this.queuesByName.get(queue);
      const rec = q?.running.get(lease.id);
      if (!q || rec?.lease?.token !== lease.token) return false;
      if (progressJson !== undefined) rec.progressJson = progressJson;
      if (lines.length > 0) {
        rec.logs.push(...lines);
        if (rec.logs.length > MAX_JOB_LOG_LINES) rec.logs.splice(0, rec.logs.length - MAX_JOB_LOG_LINES);
      }
      q.updates.next({
        queue,
        id: rec.id,
        at: this.now(),
        ...(progressJson === undefined ? {} : { progress: JSON.parse(progressJson) as unknown }),
        ...(lines.length > 0 ? { log: lines } : {}),
      });
      return true;
    });
  }

  queueConfig(queue: string): Observable<QueueConfig> {
    return defer(() => this.queue(queue).config);
  }

  // ------------------------------------------------------------------ administration

  pause(queue: string): Promise<void> {
    return this.run(() => {
      const s = this.queue(queue).settings;
      if (!s.value.paused) s.next({ ...s.value, paused: true });
    });
  }

  resume(queue: string): Promise<void> {
    return this.run(() => {
      const q = this.queue(queue);
      if (q.settings.value.paused) q.settings.next({ ...q.settings.value, paused: false });
      q.wakeups.next();
    });
  }

  pauseGroup(queue: string, group: string): Promise<void> {
    return this.run(() => {
      assertGroupName(group);
      const q = this.queue(queue);
      q.pausedGroups.add(group);
      const g = q.groups.get(group);
      if (g) this.groupRetract(g);
    });
  }

  resumeGroup(queue: string, group: string): Promise<void> {
    return this.run(() => {
      assertGroupName(group);
      const q = this.queue(queue);
      if (!q.pausedGroups.delete(group)) return;
      const g = q.groups.get(group);
      this.groupRelease(q, group);
      if (g?.turn) q.wakeups.next();
    });
  }

  listGroups(queue: string, options: ListGroupsOptions = {}): Promise<readonly GroupInfo[]> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      if (!q) return [];
      const offset = Math.max(0, Math.floor(options.offset ?? 0));
      const limit = Math.max(0, Math.floor(options.limit ?? 50));
      const names = [...new Set([...q.groups.keys(), ...q.pausedGroups])].sort(byCodePoint);
      return names.slice(offset, offset + limit).map((group): GroupInfo => {
        const g = q.groups.get(group);
        const waiting = g ? liveEntries(g.waiting, JobState.Ready).length : 0;
        const weight = q.groupWeights.get(group);
        return {
          group,
          ready: waiting + (g?.turn ? 1 : 0),
          active: g?.slots ?? 0,
          paused: q.pausedGroups.has(group),
          ...(g?.heldUntil === undefined ? {} : { limitedUntil: g.heldUntil }),
          ...(weight === undefined ? {} : { weight }),
        };
      });
    });
  }

  setConcurrency(queue: string, concurrency: number | undefined): Promise<void> {
    return this.run(() => {
      if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
        throw new InvalidArgumentError(`concurrency must be an integer ≥ 1, got ${concurrency}`);
      }
      const s = this.queue(queue).settings;
      const { concurrency: _old, ...rest } = s.value;
      s.next(concurrency === undefined ? rest : { ...rest, concurrency });
    });
  }

  cancel(queue: string, id: string): Promise<CancelResult> {
    return this.run((): CancelResult => {
      const q = this.queuesByName.get(queue);
      const rec = q?.jobs.get(id);
      if (!q || !rec) return 'not-found';
      switch (rec.state) {
        case JobState.Ready:
        case JobState.Scheduled: {
          const now = this.now();
          rec.reason = StoreText.CancelledBeforeRun;
          const from = rec.state;
          this.finish(q, rec, JobState.Cancelled, now);
          this.groupLeave(q, rec, from);
          q.events.next({ queue, id, kind: 'cancelled', at: now, reason: rec.reason });
          return 'cancelled';
        }
        case JobState.Running:
          q.cancellations.next(id);
          return 'signalled';
        case JobState.Completed:
        case JobState.Dead:
        case JobState.Cancelled:
          return 'finished';
      }
    });
  }

  getJob<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | undefined> {
    return this.run(() => {
      const rec = this.queuesByName.get(queue)?.jobs.get(id);
      return rec ? toRecord<T>(rec) : undefined;
    });
  }

  listJobs(queue: string, state: JobState, options: ListOptions = {}): Promise<readonly JobRecord[]> {
    return this.run(() => {
      assertListOptions(options);
      const q = this.queuesByName.get(queue);
      if (!q) return [];
      const offset = Math.max(0, options.offset ?? 0);
      const limit = Math.max(0, options.limit ?? 50);
      this.promoteDue(q, this.now());
      let recs: Rec[];
      switch (state) {
        case JobState.Ready:
          // The turns (one per group with ready jobs), then the jobs waiting in their groups.
          recs = liveEntries(q.ready, JobState.Ready)
            .sort(byKeyThenSeq)
            .map((e) => e.rec);
          for (const name of [...q.groups.keys()].sort(byCodePoint)) {
            const waiting = q.groups.get(name)?.waiting;
            if (waiting)
              recs.push(
                ...liveEntries(waiting, JobState.Ready)
                  .sort(byKeyThenSeq)
                  .map((e) => e.rec),
              );
          }
          break;
        case JobState.Scheduled:
          recs = liveEntries(q.scheduled, JobState.Scheduled)
            .sort(byKeyThenSeq)
            .map((e) => e.rec);
          break;
        case JobState.Running:
          recs = [...q.running.values()].sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
          break;
        case JobState.Completed:
        case JobState.Cancelled:
          recs = [...q.finished.values()].filter((r) => r.state === state).reverse();
          break;
        case JobState.Dead:
          recs = [...q.dead.values()].reverse();
          break;
      }
      const { name, from, to } = options;
      if (name !== undefined || from !== undefined || to !== undefined) {
        recs = recs.filter((r) => {
          if (name !== undefined && r.name !== name) return false;
          const at = timeInState(r);
          return (from === undefined || at >= from) && (to === undefined || at <= to);
        });
      }
      return recs.slice(offset, offset + limit).map((r) => toRecord(r));
    });
  }

  retryJobs(queue: string, ids: readonly string[] | 'all-dead'): Promise<number> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      if (!q) return 0;
      const now = this.now();
      const recs =
        ids === 'all-dead'
          ? [...q.dead.values()]
          : ids.map((id) => q.jobs.get(id)).filter((r) => r !== undefined);
      let moved = 0;
      for (const rec of recs) {
        if (rec.state !== JobState.Dead && rec.state !== JobState.Cancelled) continue;
        q.dead.delete(rec.id);
        q.finished.delete(rec.id);
        this.move(q, rec, rec.state, JobState.Ready);
        rec.attempt = 0;
        rec.reason = undefined;
        rec.finishedAt = undefined;
        this.pushReady(q, rec, now);
        moved++;
      }
      if (moved > 0) q.wakeups.next();
      return moved;
    });
  }

  promoteJob(queue: string, id: string): Promise<boolean> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      const rec = q?.jobs.get(id);
      if (!q || rec?.state !== JobState.Scheduled) return false;
      const now = this.now();
      this.move(q, rec, JobState.Scheduled, JobState.Ready);
      rec.runAt = now;
      this.becomeDue(q, rec, now);
      q.wakeups.next();
      return true;
    });
  }

  removeJob(queue: string, id: string): Promise<boolean> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      const rec = q?.jobs.get(id);
      if (!q || !rec || rec.state === JobState.Running) return false;
      const from = rec.state;
      this.delete(q, rec);
      this.groupLeave(q, rec, from);
      return true;
    });
  }

  purge(queue: string, state: 'dead' | 'completed' | 'cancelled'): Promise<number> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      if (!q) return 0;
      const recs =
        state === 'dead' ? [...q.dead.values()] : [...q.finished.values()].filter((r) => r.state === state);
      for (const rec of recs) this.delete(q, rec);
      return recs.length;
    });
  }

  drain(queue: string): Promise<number> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      if (!q) return 0;
      let deleted = 0;
      for (const rec of [...q.jobs.values()]) {
        if (rec.state !== JobState.Ready && rec.state !== JobState.Scheduled) continue;
        this.releaseUnique(rec);
        this.delete(q, rec);
        const g = rec.group === undefined ? undefined : q.groups.get(rec.group);
        if (g && rec.holdsSlot) g.slots--;
        deleted++;
      }
      // Every entry left in them is stale now; groups keep only the slots of running jobs.
      q.ready.clear();
      q.scheduled.clear();
      for (const [name, g] of q.groups) {
        g.turn = undefined;
        g.waiting.clear();
        this.groupTidy(q, name);
      }
      return deleted;
    });
  }

  obliterate(queue: string, options: ObliterateOptions = {}): Promise<ObliterateResult> {
    return this.run((): ObliterateResult => {
      const q = this.queuesByName.get(queue);
      if (!q) return { jobs: 0, running: 0 };
      const running = [...q.running.keys()];
      if (running.length > 0 && options.force !== true) throw new QueueBusyError(queue, running.length);
      const jobs = q.jobs.size;
      for (const rec of q.jobs.values()) this.releaseUnique(rec);
      this.queuesByName.delete(queue);
      // Subscribers keep their subjects; everything else starts empty.
      const fresh = newQueueData(queue, q);
      this.dormant.set(queue, fresh);
      if (q.settings.value.paused || q.settings.value.concurrency !== undefined) {
        q.settings.next({ paused: false });
      }
      if (Object.keys(q.config.value).length > 0) q.config.next({});
      // Their workers stop them; whatever they send later finds no job.
      for (const id of running) q.cancellations.next(id);
      return { jobs, running: running.length };
    });
  }

  /** Deletes the unique-key lock `rec` holds, if it still holds it. */
  private releaseUnique(rec: Rec): void {
    if (rec.uniqueKey === undefined) return;
    const key = `${rec.queue}\u0000${rec.uniqueKey}`;
    if (this.uniqueLocks.get(key)?.id === rec.id) this.uniqueLocks.delete(key);
  }

  stats(queue: string): Promise<QueueStats> {
    return this.run(() => {
      const q = this.queue(queue);
      this.promoteDue(q, this.now());
      this.applyRetention(q, this.now());
      const { enqueued, completed, failed, leaseExpiries, dead, cancelled } = q.totals;
      return {
        queue,
        counts: { ...q.counts },
        retained: { completed: q.counts.completed, cancelled: q.counts.cancelled, dead: q.counts.dead },
        paused: q.settings.value.paused,
        totals: {
          enqueued,
          completed,
          failed,
          handlerFailures: failed - leaseExpiries,
          leaseExpiries,
          dead,
          cancelled,
        },
      };
    });
  }

  history(queue: string, minutes: number): Promise<readonly MinuteBucket[]> {
    return this.run(() => {
      const q = this.queuesByName.get(queue);
      const current = Math.floor(this.now() / MINUTE) * MINUTE;
      const out: MinuteBucket[] = [];
      for (let i = Math.max(1, Math.floor(minutes)) - 1; i >= 0; i--) {
        const minute = current - i * MINUTE;
        const b = q?.history.get(minute);
        out.push({ minute, completed: b?.completed ?? 0, failed: b?.failed ?? 0 });
      }
      return out;
    });
  }

  queues(): Promise<readonly string[]> {
    return this.run(() => [...this.queuesByName.keys()].sort());
  }

  getQueueConfig(queue: string): Promise<QueueConfig> {
    return this.run(() => this.queuesByName.get(queue)?.config.value ?? {});
  }

  setQueueConfig(queue: string, config: QueueConfig): Promise<void> {
    return this.run(() => {
      if (config.retention !== undefined) assertRetention(config.retention, 'retention');
      if (config.deadRetention !== undefined) assertRetention(config.deadRetention, 'deadRetention');
      const q = this.queue(queue);
      q.config.next(JSON.parse(JSON.stringify(config)) as QueueConfig);
      this.applyRetention(q, this.now());
    });
  }

  updateQueueConfig(queue: string, patch: QueueConfigPatch): Promise<QueueConfigChange> {
    return this.run(() => {
      assertConfigPatch(patch);
      const q = this.queue(queue);
      const previous = q.config.value;
      const config = applyConfigPatch(previous, patch);
      q.config.next(config);
      this.applyRetention(q, this.now());
      return { previous, config };
    });
  }

  reportWorker(info: Omit<WorkerInfo, 'lastSeenAt'>, ttlMs: number): Promise<void> {
    return this.run(() => {
      const now = this.now();
      this.workerReports.set(info.id, { info: { ...info, lastSeenAt: now }, expiresAt: now + ttlMs });
    });
  }

  workers(): Promise<readonly WorkerInfo[]> {
    return this.run(() => {
      const now = this.now();
      const live: WorkerInfo[] = [];
      for (const [id, r] of this.workerReports) {
        if (r.expiresAt <= now) this.workerReports.delete(id);
        else live.push(r.info);
      }
      return live.sort((a, b) => a.id.localeCompare(b.id));
    });
  }

  storeTime(_queue: string): Observable<number> {
    return defer(() => {
      this.assertOpen();
      return of(this.now());
    });
  }

  rebaseLimit(
    queue: string,
    limit: RateLimitSpec,
    from: number,
    units: number,
    leadMs = 0,
  ): Observable<RebaseResult> {
    return defer(() => {
      this.assertOpen();
      const limiters = this.limitersOf(queue, limit);
      const now = this.now();
      const n = Math.min(Math.max(1, Math.ceil(units)), ...limiters.map((l) => l.allowed));
      // In place where the logs allow it (see moveInPlace), else after the newest slot with room.
      const at = Math.max(now + Math.max(0, leadMs), ...limiters.map((l) => l.pausedUntil));
      if (SlidingWindowLimiter.moveInPlace(limiters, n, from, at, now)) return of<RebaseResult>({ at, now });
      for (const l of limiters) l.refund(n, from);
      const plan = SlidingWindowLimiter.planAll(
        limiters,
        1,
        [n],
        now,
        now + Math.max(0, leadMs),
        Infinity,
        true,
      );
      SlidingWindowLimiter.commitAll(limiters, plan, 1, [n]);
      return of<RebaseResult>({ at: plan.slots[0]?.at ?? now + Math.max(0, leadMs), now });
    });
  }

  acquirePermits(queue: string, max: number, count: number, leaseMs: number): Observable<PermitGrant> {
    return defer(() => {
      this.assertOpen();
      assertPermitArgs(max, count, leaseMs);
      const now = this.now();
      let held = this.permits.get(queue);
      if (!held) this.permits.set(queue, (held = new Map<string, number>()));
      for (const [id, expires] of held) if (expires <= now) held.delete(id);
      const ids: string[] = [];
      for (let i = Math.min(count, max - held.size); i > 0; i--) {
        const id = String(++this.permitSeq);
        held.set(id, now + leaseMs);
        ids.push(id);
      }
      return of<PermitGrant>({ ids, now });
    });
  }

  releasePermits(queue: string, ids: readonly string[]): Observable<void> {
    return defer(() => {
      this.assertOpen();
      const held = this.permits.get(queue);
      for (const id of ids) held?.delete(id);
      return of(undefined);
    });
  }

  extendPermits(queue: string, ids: readonly string[], leaseMs: number): Observable<readonly string[]> {
    return defer(() => {
      this.assertOpen();
      assertPermitArgs(1, 0, leaseMs);
      const now = this.now();
      const held = this.permits.get(queue);
      const kept: string[] = [];
      for (const id of ids) {
        const expires = held?.get(id);
        if (held && expires !== undefined && expires > now) {
          held.set(id, now + leaseMs);
          kept.push(id);
        }
      }
      return of<readonly string[]>(kept);
    });
  }

  grantLimit(
    queue: string,
    limit: RateLimitSpec,
    units: number,
    options: GrantLimitOptions = {},
  ): Observable<LimitGrantAnswer> {
    return defer(() => {
      this.assertOpen();
      assertGrantUnits(units);
      const limiters = this.limitersOf(queue, limit);
      const now = this.now();
      for (const r of options.refunds ?? []) {
        const n = Math.max(1, Math.ceil(r.units));
        for (const l of limiters) l.refund(Math.min(n, l.allowed), r.at);
      }
      if (units === 0) return of<LimitGrantAnswer>({ now, slots: [] });
      const window = placementWindow(limiters, now, options.leadMs, options.aheadMs, options.spread);
      const plan = planUnits(limiters, units, undefined, now, window);
      const recorded = SlidingWindowLimiter.commitAll(limiters, plan, plan.granted);
      return of<LimitGrantAnswer>({
        now,
        slots: recorded.map((r) => ({ at: r.at, units: r.items })),
        ...(plan.granted < units ? { retryAfterMs: plan.retryAfterMs ?? 1 } : {}),
      });
    });
  }

  refundLimit(queue: string, limit: RateLimitSpec, at: number, units: number): Observable<void> {
    return defer(() => {
      this.assertOpen();
      const n = Math.max(1, Math.ceil(units));
      for (const l of this.limitersOf(queue, limit)) l.refund(Math.min(n, l.allowed), at);
      return of(undefined);
    });
  }

  pauseLimit(queue: string, limit: RateLimitSpec, ms: number): Observable<LimitPause> {
    return defer(() => {
      this.assertOpen();
      const key = limit.key ?? queue;
      const limiter = this.limiterOf(queue, limit);
      const now = this.now();
      limiter.pausedUntil = Math.max(limiter.pausedUntil, now + Math.max(0, ms));
      this.pauses.next({ key, until: limiter.pausedUntil });
      return of<LimitPause>({ until: limiter.pausedUntil, now });
    });
  }

  limitPauses(queue: string, limit: RateLimitSpec): Observable<number> {
    const key = limit.key ?? queue;
    return this.pauses.pipe(
      filter((p) => p.key === key),
      map((p) => p.until),
    );
  }

  setRateLimit(_queue: string, key: string, numbers: RateLimitNumbers | null): Promise<void> {
    return this.run(() => {
      if (numbers === null) this.limitNumbers.delete(key);
      else {
        new SlidingWindowLimiter(numbers); // validates
        this.limitNumbers.set(key, { allowed: numbers.allowed, periodMs: numbers.periodMs });
      }
    });
  }

  getRateLimit(_queue: string, key: string): Promise<RateLimitNumbers | null> {
    return this.run(() => this.limitNumbers.get(key) ?? null);
  }

  setGroupLimit(queue: string, group: string, numbers: RateLimitNumbers | null): Promise<void> {
    return this.run(() => {
      assertGroupName(group);
      const q = this.queue(queue);
      if (numbers === null) q.groupNumbers.delete(group);
      else {
        if (!Number.isInteger(numbers.allowed) || !Number.isInteger(numbers.periodMs)) {
          throw new InvalidArgumentError(
            `allowed and periodMs must be integers ≥ 1, got ${String(numbers.allowed)} / ${String(numbers.periodMs)}`,
          );
        }
        new SlidingWindowLimiter(numbers); // validates
        q.groupNumbers.set(group, { allowed: numbers.allowed, periodMs: numbers.periodMs });
      }
    });
  }

  setGroupWeight(queue: string, group: string, weight: number | null): Promise<void> {
    return this.run(() => {
      assertGroupName(group);
      if (weight !== null) assertGroupWeight(weight);
      const q = this.queue(queue);
      if (weight === null || weight === 1) q.groupWeights.delete(group);
      else q.groupWeights.set(group, weight);
    });
  }

  getGroupWeight(queue: string, group: string): Promise<number | null> {
    return this.run(() => {
      assertGroupName(group);
      return this.queuesByName.get(queue)?.groupWeights.get(group) ?? null;
    });
  }

  getGroupLimit(queue: string, group: string): Promise<RateLimitNumbers | null> {
    return this.run(() => {
      assertGroupName(group);
      return this.queuesByName.get(queue)?.groupNumbers.get(group) ?? null;
    });
  }

  /** The limiters of a limit and its further limits (`also`), in order. */
  private limitersOf(queue: string, limit: RateLimitSpec): SlidingWindowLimiter[] {
    return [this.limiterOf(queue, limit), ...(limit.also ?? []).map((l) => this.limiterOf(queue, l))];
  }

  /**
   * The limiter of a limit key, with the store-wide numbers if set, else the caller's, its window
   * widened to the widest margin asked for lately (see `MARGIN_HOLD_MS`).
   */
  private limiterOf(queue: string, limit: RateLimitSpec): SlidingWindowLimiter {
    if (limit.group !== undefined) return this.groupLimiterOf(this.queue(queue), limit.group, limit);
    const key = limit.key ?? queue;
    const set = this.limitNumbers.get(key);
    const own = limit.marginMs ?? 0;
    const base = set ? set.periodMs : limit.periodMs - own;
    const allowed = set ? set.allowed : limit.allowed;
    const limiter = this.limiters.use(key, { allowed, periodMs: base + own });
    const margin = limiter.holdMargin(own, this.now(), base);
    if (margin !== own) limiter.reconfigure({ allowed, periodMs: base + margin });
    return limiter;
  }

  /** In memory a key has one limiter; its own window is used whatever `periodMs` says. */
  rateLimitUsage(_queue: string, key: string, _periodMs: number): Promise<number> {
    return this.run(() => this.limiters.find(key)?.used(this.now()) ?? 0);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const q of [...this.queuesByName.values(), ...this.dormant.values()]) {
        q.wakeups.complete();
        q.cancellations.complete();
        q.events.complete();
        q.updates.complete();
        q.settings.complete();
        q.config.complete();
      }
    }
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ internals

  private run<R>(fn: () => R): Promise<R> {
    try {
      this.assertOpen();
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(
        err instanceof Error ? err : new StoreError(`MemoryStore: ${String(err)}`, { cause: err }),
      );
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('MemoryStore');
  }

  private queue(name: string): QueueData {
    let q = this.queuesByName.get(name);
    if (!q) {
      assertQueueName(name);
      q = this.dormant.get(name) ?? newQueueData(name);
      this.dormant.delete(name);
      this.queuesByName.set(name, q);
    }
    return q;
  }

  private move(q: QueueData, rec: Rec, from: JobState, to: JobState): void {
    q.counts[from]--;
    q.counts[to]++;
    rec.state = to;
  }

  /**
   * Makes `rec` ready: in the ready heap, or a job of a group in its group (at the back, or with
   * `front` before every job of its priority).
   */
  private pushReady(q: QueueData, rec: Rec, now: number, front = false): void {
    rec.state = JobState.Ready;
    rec.readyAt = now;
    if (rec.group !== undefined) {
      this.groupPush(q, rec, rec.group, front);
      return;
    }
    rec.seq = ++this.nextSeq;
    q.ready.push({ rec, seq: rec.seq, key: rec.priority });
  }

  /** A scheduled job (already counted as ready) becomes due: a retry holding its group slot goes first. */
  private becomeDue(q: QueueData, rec: Rec, readyAt: number): void {
    if (rec.holdsSlot && rec.group !== undefined) {
      rec.holdsSlot = false;
      this.pushReady(q, rec, readyAt, true);
      this.groupFree(q, rec.group);
    } else this.pushReady(q, rec, readyAt);
  }

  // ---- groups: the same turns and slots as `lua/includes/groups.lua` (see `GroupRules`)

  private groupPush(q: QueueData, rec: Rec, name: string, front: boolean): void {
    let g = q.groups.get(name);
    if (!g) {
      g = {
        waiting: new Heap<HeapEntry>(byKeyThenSeqLess),
        slots: 0,
        turn: undefined,
        heldUntil: undefined,
        streak: 0,
      };
      q.groups.set(name, g);
    }
    if (front) this.groupRetract(g);
    rec.seq = front ? -++this.frontSeq : ++this.nextSeq;
    g.waiting.push({ rec, seq: rec.seq, key: rec.priority });
    this.groupRelease(q, name);
  }

  /** Takes the group's turn back to the front of its group (its ready-heap entry goes stale). */
  private groupRetract(g: GroupData): void {
    const rec = g.turn;
    if (!rec) return;
    g.turn = undefined;
    rec.seq = -++this.frontSeq;
    g.waiting.push({ rec, seq: rec.seq, key: rec.priority });
  }

  /**
   * Gives the group a turn if it has none out and is not paused: its first waiting job goes to the
   * back of `ready` (to the front with `front`: a weighted group's next turn in a row).
   */
  private groupRelease(q: QueueData, name: string, front = false): void {
    const g = q.groups.get(name);
    if (!g || g.turn || g.heldUntil !== undefined || q.pausedGroups.has(name)) return;
    for (;;) {
      const top = g.waiting.pop();
      if (!top) {
        this.groupTidy(q, name);
        return;
      }
      if (!isLive(top, JobState.Ready)) continue;
      top.rec.seq = front ? -++this.frontSeq : ++this.nextSeq;
      q.ready.push({ rec: top.rec, seq: top.rec.seq, key: top.rec.priority });
      g.turn = top.rec;
      return;
    }
  }

  /**
   * A reserve popped `rec`, its group's turn: it takes a slot (true), or, the group being full, goes
   * back to the front of its group (false).
   */
  private groupTake(q: QueueData, rec: Rec, name: string, concurrency: number | undefined): boolean {
    const g = q.groups.get(name);
    if (!g) return true;
    if (g.turn === rec) g.turn = undefined;
    if (concurrency !== undefined && g.slots >= concurrency) {
      rec.seq = -++this.frontSeq;
      g.waiting.push({ rec, seq: rec.seq, key: rec.priority });
      return false;
    }
    g.slots++;
    if (concurrency === undefined || g.slots < concurrency)
      this.groupRelease(q, name, this.groupStreak(q, g, name));
    return true;
  }

  /** A weighted group takes `weight` turns in a row, then its next turn goes to the back. */
  private groupStreak(q: QueueData, g: GroupData, name: string): boolean {
    const weight = q.groupWeights.get(name);
    if (weight === undefined || weight < 2) return false;
    g.streak++;
    if (g.streak < weight) return true;
    g.streak = 0;
    return false;
  }

  /**
   * Places a popped job in the queue's limits and its group's log at one slot (each where every log
   * it counts in has room): the slot, or who is short and how much later there is room.
   */
  private placeJob(
    q: QueueData,
    rec: Rec,
    limiters: readonly SlidingWindowLimiter[] | undefined,
    groupLimit: GroupRateLimit,
    now: number,
    earliest: number,
    latest: number,
  ): { at: number; short?: undefined } | { at?: undefined; short: 'group' | 'queue'; retryMs: number } {
    const logs = [...(limiters ?? [])];
    const own = rec.group === undefined ? undefined : this.groupLimiterOf(q, rec.group, groupLimit);
    if (own) logs.push(own);
    if (logs.length === 0) return { at: now };
    const cost = [Math.max(1, Math.min(rec.cost ?? 1, ...logs.map((l) => l.allowed)))];
    const plan = SlidingWindowLimiter.planAll(logs, 1, cost, now, earliest, latest);
    const slot = plan.slots[0];
    if (plan.granted === 1 && slot) {
      SlidingWindowLimiter.commitAll(logs, plan, 1, cost);
      return { at: slot.at };
    }
    if (own && limiters) {
      const alone = SlidingWindowLimiter.planAll([own], 1, cost, now, earliest, latest);
      if (alone.granted === 1) return { short: 'queue', retryMs: plan.retryAfterMs ?? 1 };
      return { short: 'group', retryMs: alone.retryAfterMs ?? 1 };
    }
    return { short: own ? 'group' : 'queue', retryMs: plan.retryAfterMs ?? 1 };
  }

  /**
   * A group's rate-limit log, with the numbers set for it (`setGroupLimit`) if any, else the
   * pipeline's; its window widened to the widest margin asked for lately (as `limiterOf`).
   */
  private groupLimiterOf(q: QueueData, name: string, limit: GroupRateLimit): SlidingWindowLimiter {
    const set = q.groupNumbers.get(name);
    const own = limit.marginMs ?? 0;
    const base = set ? set.periodMs : limit.periodMs - own;
    const allowed = set ? set.allowed : limit.allowed;
    let limiter = q.groupLimiters.get(name);
    if (limiter) limiter.reconfigure({ allowed, periodMs: base + own });
    else {
      limiter = new SlidingWindowLimiter({ allowed, periodMs: base + own });
      q.groupLimiters.set(name, limiter);
    }
    const margin = limiter.holdMargin(own, this.now(), base);
    if (margin !== own) limiter.reconfigure({ allowed, periodMs: base + margin });
    return limiter;
  }

  /**
   * The group's log has no room for `rec` (its turn, just taken) before `until`: the job goes back
   * to the front of its group, its slot is given back, and the group takes no turn until then.
   */
  private groupHoldBack(q: QueueData, rec: Rec, name: string, until: number): void {
    const g = q.groups.get(name);
    if (g) g.heldUntil = until;
    q.heldGroups.set(name, until);
    this.groupPush(q, rec, name, true);
    const held = q.groups.get(name);
    if (held) {
      held.heldUntil = until;
      held.slots = Math.max(0, held.slots - 1);
    }
  }

  /** Groups held back by their rate limit whose time has come take turns again. */
  private promoteHeldGroups(q: QueueData, now: number): void {
    for (const [name, until] of q.heldGroups) {
      if (until > now) continue;
      q.heldGroups.delete(name);
      const g = q.groups.get(name);
      if (g?.heldUntil === undefined) continue;
      g.heldUntil = undefined;
      this.groupRelease(q, name);
    }
  }

  private groupFree(q: QueueData, name: string): void {
    const g = q.groups.get(name);
    if (!g) return;
    g.slots = Math.max(0, g.slots - 1);
    const turn = g.turn;
    this.groupRelease(q, name);
    // A turn released by a freed slot: workers that found nothing to reserve are woken.
    if (!turn && g.turn) q.wakeups.next();
    this.groupTidy(q, name);
  }

  /** `rec` (which was `from`) left the queue's waiting jobs (cancelled, removed). */
  private groupLeave(q: QueueData, rec: Rec, from: JobState): void {
    if (rec.group === undefined) return;
    const g = q.groups.get(rec.group);
    if (!g) return;
    if (from === JobState.Ready && g.turn === rec) {
      g.turn = undefined;
      this.groupRelease(q, rec.group);
    }
    if (from === JobState.Scheduled && rec.holdsSlot) {
      rec.holdsSlot = false;
      this.groupFree(q, rec.group);
    }
    this.groupTidy(q, rec.group);
  }

  /** Drops the group's state when it holds nothing. */
  private groupTidy(q: QueueData, name: string): void {
    const g = q.groups.get(name);
    if (!g || g.slots > 0 || g.turn) return;
    for (;;) {
      const top = g.waiting.peek();
      if (!top) break;
      if (isLive(top, JobState.Ready)) return;
      g.waiting.pop();
    }
    q.groups.delete(name);
  }

  /** Moves a record currently counted as ready into the scheduled set. */
  private toScheduled(q: QueueData, rec: Rec, runAt: number): void {
    this.move(q, rec, JobState.Ready, JobState.Scheduled);
    rec.runAt = runAt;
    rec.seq = ++this.nextSeq;
    q.scheduled.push({ rec, seq: rec.seq, key: runAt });
  }

  private promoteDue(q: QueueData, now: number): void {
    for (;;) {
      const top = q.scheduled.peek();
      if (!top) return;
      if (!isLive(top, JobState.Scheduled)) {
        q.scheduled.pop();
        continue;
      }
      if (top.key > now) return;
      q.scheduled.pop();
      this.move(q, top.rec, JobState.Scheduled, JobState.Ready);
      this.becomeDue(q, top.rec, top.key);
    }
  }

  private nextDue(q: QueueData): number | undefined {
    for (;;) {
      const top = q.scheduled.peek();
      if (!top) return undefined;
      if (isLive(top, JobState.Scheduled)) return top.key;
      q.scheduled.pop();
    }
  }

  private peekReady(q: QueueData): Rec | undefined {
    for (;;) {
      const top = q.ready.peek();
      if (!top) return undefined;
      if (isLive(top, JobState.Ready)) return top.rec;
      q.ready.pop();
    }
  }

  private popReady(q: QueueData): Rec | undefined {
    const rec = this.peekReady(q);
    if (rec) q.ready.pop();
    return rec;
  }

  private lease<T>(
    q: QueueData,
    rec: Rec,
    now: number,
    leaseMs: number,
    workerId: string | undefined,
  ): ReservedJob<T> {
    this.move(q, rec, JobState.Ready, JobState.Running);
    rec.attempt++;
    rec.startedAt = now;
    rec.lease = {
      token: `${rec.id}.${rec.attempt}.${(++this.nextToken).toString(36)}`,
      expiresAt: now + leaseMs,
      startedAt: now,
      ...(workerId === undefined ? {} : { workerId }),
    };
    q.running.set(rec.id, rec);
    return {
      id: rec.id,
      queue: rec.queue,
      name: rec.name,
      data: JSON.parse(rec.json) as T,
      attempt: rec.attempt,
      maxAttempts: rec.maxAttempts,
      priority: rec.priority,
      createdAt: rec.createdAt,
      runAt: rec.runAt,
      lease: rec.lease,
      ...(rec.timeoutMs === undefined ? {} : { timeoutMs: rec.timeoutMs }),
      ...(rec.uniqueKey === undefined ? {} : { uniqueKey: rec.uniqueKey }),
      ...(rec.cost === undefined ? {} : { cost: rec.cost }),
      ...(rec.group === undefined ? {} : { group: rec.group }),
      ...(rec.trace === undefined ? {} : { trace: rec.trace }),
    };
  }

  private recordError(rec: Rec, error: ErrorInfo, now: number): void {
    rec.errors.push({ ...error, attempt: rec.attempt, at: now });
    // Keep the record bounded: the first error and the latest ones (MAX_ATTEMPT_ERRORS in all).
    boundAttemptErrors(rec.errors);
  }

  private finish(q: QueueData, rec: Rec, state: 'completed' | 'cancelled', now: number): void {
    this.move(q, rec, rec.state, state);
    if (state === JobState.Cancelled) q.totals.cancelled++;
    rec.finishedAt = now;
    const retention = rec.retention ?? q.config.value.retention ?? DEFAULT_RETENTION;
    if (retention.keep === 'none') {
      this.delete(q, rec);
      return;
    }
    q.finished.set(rec.id, rec);
    this.applyRetention(q, now);
  }

  private toDead(q: QueueData, rec: Rec, reason: string, now: number): void {
    this.move(q, rec, rec.state, JobState.Dead);
    rec.reason = reason;
    rec.finishedAt = now;
    q.dead.set(rec.id, rec);
    q.totals.dead++;
    this.trim(q, q.dead, q.config.value.deadRetention ?? DEFAULT_DEAD_RETENTION, now);
  }

  /** Trims finished and dead jobs to the queue's retentions: oldest first, O(deleted). */
  private applyRetention(q: QueueData, now: number): void {
    this.trim(q, q.finished, q.config.value.retention ?? DEFAULT_RETENTION, now);
    this.trim(q, q.dead, q.config.value.deadRetention ?? DEFAULT_DEAD_RETENTION, now);
  }

  /** Deletes the oldest records of `list` (in finish order) beyond `retention`'s count or age. */
  private trim(q: QueueData, list: Map<string, Rec>, retention: Retention, now: number): void {
    const count = retention.keep === 'none' ? 0 : retention.keep === 'count' ? retention.count : undefined;
    const ageMs = retention.keep === 'count' || retention.keep === 'age' ? retention.ageMs : undefined;
    if (count !== undefined) {
      let excess = list.size - count;
      for (const rec of list.values()) {
        if (excess-- <= 0) break;
        this.delete(q, rec);
      }
    }
    if (ageMs !== undefined) {
      for (const rec of list.values()) {
        if ((rec.finishedAt ?? now) > now - ageMs) break;
        this.delete(q, rec);
      }
    }
  }

  private delete(q: QueueData, rec: Rec): void {
    q.jobs.delete(rec.id);
    q.finished.delete(rec.id);
    q.dead.delete(rec.id);
    q.counts[rec.state]--;
    // Heap entries go stale on their own: the state check in isLive fails for a deleted record.
    rec.state = JobState.Cancelled;
    rec.seq = -1;
  }

  private bump(q: QueueData, now: number, field: 'completed' | 'failed'): void {
    const minute = Math.floor(now / MINUTE) * MINUTE;
    let b = q.history.get(minute);
    if (!b) {
      b = { completed: 0, failed: 0 };
      q.history.set(minute, b);
      const oldest = minute - this.historyMinutes * MINUTE;
      for (const key of q.history.keys()) if (key <= oldest) q.history.delete(key);
    }
    b[field]++;
  }
}

/** An empty queue; with `reuse`, keeping that queue's subjects (an obliterated queue's listeners). */
function newQueueData(name: string, reuse?: QueueData): QueueData {
  return {
    name,
    jobs: new Map(),
    groups: new Map(),
    pausedGroups: new Set(),
    groupLimiters: new Map(),
    groupNumbers: new Map(),
    groupWeights: new Map(),
    heldGroups: new Map(),
    ready: new Heap<HeapEntry>(byKeyThenSeqLess),
    scheduled: new Heap<HeapEntry>(byKeyThenSeqLess),
    running: new Map(),
    finished: new Map(),
    dead: new Map(),
    counts: { ready: 0, scheduled: 0, running: 0, completed: 0, dead: 0, cancelled: 0 },
    totals: { enqueued: 0, completed: 0, failed: 0, leaseExpiries: 0, dead: 0, cancelled: 0 },
    history: new Map(),
    settings: reuse?.settings ?? new BehaviorSubject<QueueSettings>({ paused: false }),
    wakeups: reuse?.wakeups ?? new Subject(),
    cancellations: reuse?.cancellations ?? new Subject(),
    events: reuse?.events ?? new Subject(),
    updates: reuse?.updates ?? new Subject(),
    config: reuse?.config ?? new BehaviorSubject<QueueConfig>({}),
  };
}

/**
 * A result as JSON would keep it (what Redis stores). One JSON cannot encode (a cycle, a BigInt) is
 * dropped: the job still completes, since the work is done and retrying would redo it.
 */
function encodableResult(result: unknown): unknown {
  if (result === undefined) return undefined;
  try {
    const json = (JSON.stringify as (value: unknown) => string | undefined)(result);
    return json === undefined ? undefined : (JSON.parse(json) as unknown);
  } catch {
    return undefined;
  }
}

/** The time that orders a job's state (see `ListOptions.from`). */
function timeInState(rec: Rec): number {
  switch (rec.state) {
    case JobState.Ready:
    case JobState.Scheduled:
      return rec.runAt;
    case JobState.Running:
      return rec.startedAt ?? rec.runAt;
    case JobState.Completed:
    case JobState.Cancelled:
    case JobState.Dead:
      return rec.finishedAt ?? rec.createdAt;
  }
}

function isLive(e: HeapEntry, state: JobState): boolean {
  return e.rec.state === state && e.rec.seq === e.seq;
}

function liveEntries(heap: Heap<HeapEntry>, state: JobState): HeapEntry[] {
  return heap.values().filter((e) => isLive(e, state));
}

function byKeyThenSeqLess(a: HeapEntry, b: HeapEntry): boolean {
  return a.key < b.key || (a.key === b.key && a.seq < b.seq);
}

function byKeyThenSeq(a: HeapEntry, b: HeapEntry): number {
  return a.key - b.key || a.seq - b.seq;
}

/** Strings by code point (Redis orders zset members of equal score by bytes: the same for UTF-8). */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toRecord<T>(rec: Rec): JobRecord<T> {
  return {
    id: rec.id,
    queue: rec.queue,
    name: rec.name,
    data: JSON.parse(rec.json) as T,
    attempt: rec.attempt,
    maxAttempts: rec.maxAttempts,
    priority: rec.priority,
    createdAt: rec.createdAt,
    runAt: rec.runAt,
    state: rec.state,
    errors: [...rec.errors],
    ...(rec.timeoutMs === undefined ? {} : { timeoutMs: rec.timeoutMs }),
    ...(rec.uniqueKey === undefined ? {} : { uniqueKey: rec.uniqueKey }),
    ...(rec.cost === undefined ? {} : { cost: rec.cost }),
    ...(rec.group === undefined ? {} : { group: rec.group }),
    ...(rec.trace === undefined ? {} : { trace: rec.trace }),
    ...(rec.result === undefined ? {} : { result: rec.result }),
    ...(rec.startedAt === undefined ? {} : { startedAt: rec.startedAt }),
    ...(rec.finishedAt === undefined ? {} : { finishedAt: rec.finishedAt }),
    ...(rec.reason === undefined ? {} : { reason: rec.reason }),
    ...(rec.lease === undefined ? {} : { lease: rec.lease }),
    ...(rec.progressJson === undefined ? {} : { progress: JSON.parse(rec.progressJson) as unknown }),
    ...(rec.logs.length === 0 ? {} : { logs: [...rec.logs] }),
  };
}

/** Where a reserve or a grant may place units: from `earliest` to `latest`, `perMs` at most a ms. */
interface PlacementWindow {
  readonly earliest: number;
  readonly latest: number;
  readonly perMs: number | undefined;
}

/**
 * The placement window of a call under `limiters` (none: no limit): `leadMs` after now at the
 * earliest, `aheadMs` at the latest or as far ahead as any caller of the limit looked lately (see
 * `holdAhead`), spread when asked (see `ReserveOptions`).
 */
function placementWindow(
  limiters: readonly SlidingWindowLimiter[] | undefined,
  now: number,
  leadMs = 0,
  aheadMs?: number,
  spread?: boolean,
): PlacementWindow {
  const lead = Math.max(0, leadMs);
  const own = Math.max(lead, aheadMs ?? lead);
  const first = limiters?.[0];
  return {
    earliest: now + lead,
    latest: now + (first ? first.holdAhead(own, now) : own),
    perMs: limiters && spread ? spreadPerMs(limiters) : undefined,
  };
}

/** Plans `count` items (of `sizes`) in `window`, one slot each item, not recorded. */
function planUnits(
  limiters: readonly SlidingWindowLimiter[],
  count: number,
  sizes: readonly number[] | undefined,
  now: number,
  window: PlacementWindow,
): ItemPlan {
  return SlidingWindowLimiter.planAll(
    limiters,
    count,
    sizes,
    now,
    window.earliest,
    window.latest,
    false,
    window.perMs,
  );
}

/** Which of `count` jobs (in order) each slot holds, `perCall` jobs to a unit. */
function slotsOfJobs(
  slots: readonly { at: number; items: number }[],
  count: number,
  perCall: number,
): LimitSlot[] {
  const out: LimitSlot[] = [];
  let left = count;
  for (const slot of slots) {
    if (left <= 0) break;
    const jobs = Math.min(left, slot.items * perCall);
    out.push({ at: slot.at, jobs });
    left -= jobs;
  }
  return out;
}

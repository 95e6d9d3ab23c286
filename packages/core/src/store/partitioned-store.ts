import {
  catchError,
  combineLatest,
  concatMap,
  defer,
  forkJoin,
  last,
  map,
  merge,
  of,
  throwError,
  type Observable,
} from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { JobRecord, JobState, JobUpdate, NewJob, ReservedJob } from '../model/job';
import type { SettleResult, Settlement } from '../model/outcome';
import { assertQueueName, MAX_PARTITIONS, partitionName, parsePartitionName } from '../model/validation';
import { ACTIVE_CAP_CHECK_MS } from './store';
import type {
  CancelResult,
  EnqueueResult,
  ExtendResult,
  GrantedUnits,
  GrantLimitOptions,
  GroupInfo,
  JobEvent,
  JobProgressEvent,
  LeaseRef,
  LimitGrantAnswer,
  LimitPause,
  LimitSlot,
  ListGroupsOptions,
  ListOptions,
  MinuteBucket,
  ObliterateOptions,
  ObliterateResult,
  QueueConfig,
  QueueConfigChange,
  QueueConfigPatch,
  QueueSettings,
  QueueStats,
  RateLimitNumbers,
  RateLimitSpec,
  RebaseResult,
  RecoverResult,
  RejectedJob,
  ReserveOptions,
  ReserveResult,
  Store,
  WorkerInfo,
} from './store';

/** Options of {@link PartitionedStore}. */
export interface PartitionedStoreOptions {
  /**
   * The partitioned queues and how many partitions each has (1…1024). Every process using a queue
   * must give it the same count: the count is part of the partitions' names, so processes with
   * another count use other partitions (see the README's procedure for changing it).
   */
  readonly partitions: Readonly<Record<string, number>>;
}

/** Separates a lease token's partition from the partition's own token. */
const TOKEN_SEPARATOR = '~';

/**
 * One logical queue spread over several queues of the store underneath (its partitions), so that a
 * queue's work can be spread over the masters of a Redis Cluster (each partition has a hash tag of
 * its own; see `partitionTag` in `@sluice/redis`). Every other queue goes straight through.
 *
 * - **Adding:** a job goes to the partition of its `group`, else of its `unique.key`, else of its
 *   `id` (a hash of the string), so jobs that rules tie together (a group's concurrency, order and
 *   limits, a unique key, an id's deduplication) share one partition; other jobs go round-robin.
 *   A job added without an id gets one here (`<partition>.<process token><sequence>`), unique across
 *   partitions and processes; the stores' sequential ids would repeat in every partition.
 * - **Reserving:** each reserve starts at the next partition in turn and takes from the following
 *   ones while it has demand left, so no partition starves and demand stays exact.
 * - **Rate limits** stay exact across partitions: the pipeline's limit lives on the queue's own slot
 *   (`Store.grantLimit`): a reserve first takes units there, then at most as many jobs (or calls) from
 *   the partitions, and gives units no job took back in the same step as its next grant. The price is
 *   a second call per reserve, and a third when the partitions were short.
 * - **Global concurrency** (`maxActive`) stays exact across partitions the same way: permits on the
 *   queue's own slot (`Store.acquirePermits`), expiring with the leases unless extended, so a crashed
 *   worker's share comes back when its leases would; a reserve takes permits first, then at most as
 *   many jobs, and a settle gives its jobs' permits back.
 * - **Leases** carry their partition (and permit) in the token, so settles, extensions and progress
 *   reach it.
 * - **Administration** spans the partitions: pause, resume, settings and configuration apply to all;
 *   stats, history and listings add them up; a lookup by id asks the partition the id names, then
 *   the others. Jobs, events and records name the logical queue.
 *
 * Its pipeline-facing calls are Observables all the way down (no promises), so over a `MemoryStore`
 * a partitioned queue runs in RxJS virtual time like any other (`pipelineHarness({ store })`).
 *
 * Not supported on a partitioned queue (refused with an error naming it): a pipeline limit together
 * with group rate limits, and jobs with a `cost`.
 *
 * ## Example
 * ```ts
 * const store = new PartitionedStore(new MemoryStore(), { partitions: { emails: 4 } });
 * await store.enqueue([{ queue: 'emails', data: { to: 'a@example.com' } }]).toPromise();
 * ```
 */
export class PartitionedStore implements Store {
  readonly kind: string;
  private readonly counts = new Map<string, number>();
  private readonly turn = new Map<string, number>();
  /** Prefix of the ids this process gives: random, so processes never give the same id. */
  private readonly idToken = Math.floor(Math.random() * 36 ** 8)
    .toString(36)
    .padStart(8, '0');
  private idSeq = 0;

  constructor(
    readonly inner: Store,
    options: PartitionedStoreOptions,
  ) {
    this.kind = inner.kind;
    for (const [queue, count] of Object.entries(options.partitions)) {
      assertQueueName(queue);
      if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) {
        throw new InvalidArgumentError(
          `partitions of "${queue}" must be a whole number from 1 to ${MAX_PARTITIONS}, got ${count}`,
        );
      }
      this.counts.set(queue, count);
    }
  }

  /** The partition count of `queue`, or `undefined` when it is not partitioned. */
  partitionsOf(queue: string): number | undefined {
    return this.counts.get(queue);
  }

  /** The names of `queue`'s partitions in the store underneath (just `queue` when not partitioned). */
  partitionNames(queue: string): readonly string[] {
    const count = this.counts.get(queue);
    if (count === undefined) return [queue];
    return Array.from({ length: count }, (_, i) => partitionName(queue, i, count));
  }

  // ---- producers

  enqueue(jobs: readonly NewJob[]): Observable<readonly EnqueueResult[]> {
    return defer(() => {
      const placed = jobs.map((job) => {
        const count = this.counts.get(job.queue);
        if (count === undefined) return job;
        if (job.cost !== undefined && job.cost !== 1) {
          throw new InvalidArgumentError(
            `queue "${job.queue}" is partitioned: jobs with a cost are not supported on it`,
          );
        }
        const key = job.group ?? job.unique?.key ?? job.id;
        const index = key === undefined ? this.nextTurn(job.queue, count) : hashOf(key) % count;
        const id = job.id ?? `${index}.${this.idToken}${(this.idSeq++).toString(36)}`;
        return { ...job, queue: partitionName(job.queue, index, count), id };
      });
      return this.inner.enqueue(placed);
    });
  }

  // ---- pipelines

  reserve<T = unknown>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> {
    const count = this.counts.get(queue);
    if (count === undefined) return this.inner.reserve<T>(queue, n, options);
    return defer(() => {
      const { maxActive, ...rest } = options;
      if (options.limit && options.groups?.rateLimit) {
        throw new InvalidArgumentError(
          `queue "${queue}" is partitioned: a pipeline rate limit together with group rate limits is not supported on it`,
        );
      }
      if (maxActive === undefined) return this.reserveLimited<T>(queue, count, n, rest, []);
      // Global concurrency: permits on the queue's own slot first, then at most as many jobs.
      const acquire = this.need('acquirePermits').bind(this.inner);
      const leaseMs = Math.max(1, Math.ceil(options.leaseMs));
      return acquire(queue, Math.max(0, Math.floor(maxActive)), n, leaseMs).pipe(
        last(),
        concatMap(({ ids: permits }): Observable<ReserveResult<T>> => {
          if (permits.length === 0) {
            return of({ jobs: [], paused: false, rejected: [], nextCheckInMs: ACTIVE_CAP_CHECK_MS });
          }
          return this.reserveLimited<T>(queue, count, permits.length, rest, permits).pipe(
            catchError((error: unknown) =>
              this.releasePermitsOf(queue, permits).pipe(concatMap(() => throwError(() => error))),
            ),
            concatMap((result) =>
              this.releasePermitsOf(queue, permits.slice(result.jobs.length)).pipe(
                map(() => {
                  // Held back by the cap: look again soon (unless the limit said when).
                  const capped = permits.length < n && result.jobs.length === permits.length;
                  return capped && result.retryAfterMs === undefined
                    ? {
                        ...result,
                        nextCheckInMs: Math.min(result.nextCheckInMs ?? Infinity, ACTIVE_CAP_CHECK_MS),
                      }
                    : result;
                }),
              ),
            ),
          );
        }),
      );
    });
  }

  settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    const permits = new Map<string, string[]>();
    const mapped = settlements.map((s) => {
      const at = this.leaseOf(s.queue, s.token);
      if (!at) return s;
      if (at.permit) {
        const ids = permits.get(s.queue);
        if (ids) ids.push(at.permit);
        else permits.set(s.queue, [at.permit]);
      }
      return { ...s, queue: at.partition, token: at.token };
    });
    if (permits.size === 0) return this.inner.settle(mapped);
    // The permits go back with the settle (the jobs' handlers have ended either way).
    return forkJoin([
      this.inner.settle(mapped).pipe(last()),
      ...[...permits].map(([queue, ids]) => this.releasePermitsOf(queue, ids)),
    ]).pipe(map(([results]) => results));
  }

  /** Reserves up to `n` jobs, under the pipeline's rate limit if any (units granted on the queue's slot). */
  private reserveLimited<T>(
    queue: string,
    count: number,
    n: number,
    options: Omit<ReserveOptions, 'maxActive'>,
    permits: readonly string[],
  ): Observable<ReserveResult<T>> {
    const { limit, ...unlimited } = options;
    if (!limit) return this.reserveFrom<T>(queue, count, n, unlimited, permits);
    const grantLimit = this.need('grantLimit').bind(this.inner);
    const perCall = limit.per === 'call' ? Math.max(1, Math.floor(limit.jobsPerCall ?? 1)) : 1;
    const placement = {
      ...(options.limitLeadMs !== undefined ? { leadMs: options.limitLeadMs } : {}),
      ...(options.limitAheadMs !== undefined ? { aheadMs: options.limitAheadMs } : {}),
      ...(options.limitSpread !== undefined ? { spread: options.limitSpread } : {}),
    };
    return grantLimit(queue, limit, Math.ceil(n / perCall), placement).pipe(
      last(),
      concatMap((grant): Observable<ReserveResult<T>> => {
        let units = 0;
        for (const s of grant.slots) units += s.units;
        if (units === 0) {
          return of({ jobs: [], paused: false, rejected: [], retryAfterMs: grant.retryAfterMs ?? 1 });
        }
        const want = Math.min(n, units * perCall);
        return this.reserveFrom<T>(queue, count, want, unlimited, permits).pipe(
          concatMap((result) => {
            // The first slots' units go to the jobs (whole calls of perCall jobs), the rest back to the log.
            const slots: LimitSlot[] = [];
            const unused: GrantedUnits[] = [];
            let left = result.jobs.length;
            for (const s of grant.slots) {
              const jobs = Math.min(left, s.units * perCall);
              left -= jobs;
              if (jobs > 0) slots.push({ at: s.at, jobs });
              const spare = s.units - Math.ceil(jobs / perCall);
              if (spare > 0) unused.push({ at: s.at, units: spare });
            }
            // Limited only if the limit, not the partitions, cut the answer short.
            const limited = grant.retryAfterMs !== undefined && result.jobs.length === want;
            const { retryAfterMs: _, nextCheckInMs, ...rest } = result;
            const answer: ReserveResult<T> = {
              ...rest,
              ...(slots.length > 0 ? { slots, storeNow: grant.now } : {}),
              ...(limited
                ? { retryAfterMs: grant.retryAfterMs }
                : nextCheckInMs !== undefined
                  ? { nextCheckInMs }
                  : {}),
            };
            if (unused.length === 0) return of(answer);
            return grantLimit(queue, limit, 0, { refunds: unused }).pipe(
              last(),
              map(() => answer),
            );
          }),
        );
      }),
    );
  }

  /** Gives permits back: one call, or none for none (emits once either way). */
  private releasePermitsOf(queue: string, ids: readonly string[]): Observable<void> {
    if (ids.length === 0) return of(undefined);
    return this.need('releasePermits').call(this.inner, queue, ids).pipe(last(null, undefined));
  }

  extendLeases(queue: string, leases: readonly LeaseRef[], leaseMs: number): Observable<ExtendResult> {
    if (!this.counts.has(queue)) return this.inner.extendLeases(queue, leases, leaseMs);
    return defer(() => {
      const byPartition = new Map<string, LeaseRef[]>();
      const lost: string[] = [];
      const permitOf = new Map<string, string>();
      for (const lease of leases) {
        const at = this.leaseOf(queue, lease.token);
        if (!at) {
          lost.push(lease.id);
          continue;
        }
        let list = byPartition.get(at.partition);
        if (!list) byPartition.set(at.partition, (list = []));
        list.push({ id: lease.id, token: at.token });
        if (at.permit) permitOf.set(lease.id, at.permit);
      }
      // A job whose permit expired counts as lost: another job may hold its place under the cap.
      const extendPermits = this.inner.extendPermits?.bind(this.inner);
      const kept$: Observable<readonly string[]> =
        permitOf.size === 0 || !extendPermits
          ? of([])
          : extendPermits(queue, [...permitOf.values()], leaseMs).pipe(last());
      const answers$ = allOf(
        [...byPartition].map(([partition, refs]) => this.inner.extendLeases(partition, refs, leaseMs)),
      );
      return forkJoin([answers$, kept$]).pipe(
        map(([answers, kept]): ExtendResult => {
          const held = new Set(kept);
          const extended: string[] = [];
          for (const a of answers) {
            for (const id of a.extended) {
              const permit = permitOf.get(id);
              (permit === undefined || held.has(permit) ? extended : lost).push(id);
            }
            lost.push(...a.lost);
          }
          return { extended, lost };
        }),
      );
    });
  }

  recoverExpired(queue: string): Observable<RecoverResult> {
    if (!this.counts.has(queue)) return this.inner.recoverExpired(queue);
    return allOf(this.partitionNames(queue).map((p) => this.inner.recoverExpired(p))).pipe(
      map((answers) => ({
        recovered: answers.flatMap((a) => a.recovered),
        dead: answers.flatMap((a) => a.dead),
      })),
    );
  }

  wakeups(queue: string): Observable<void> {
    return merge(...this.partitionNames(queue).map((p) => this.inner.wakeups(p)));
  }

  cancellations(queue: string): Observable<string> {
    return merge(...this.partitionNames(queue).map((p) => this.inner.cancellations(p)));
  }

  settings(queue: string): Observable<QueueSettings> {
    if (!this.counts.has(queue)) return this.inner.settings(queue);
    return combineLatest(this.partitionNames(queue).map((p) => this.inner.settings(p))).pipe(
      map((all): QueueSettings => {
        const concurrency = all.find((s) => s.concurrency !== undefined)?.concurrency;
        return {
          paused: all.every((s) => s.paused),
          ...(concurrency !== undefined ? { concurrency } : {}),
        };
      }),
    );
  }

  events(queue: string): Observable<JobEvent> {
    if (!this.counts.has(queue)) return this.inner.events(queue);
    return merge(...this.partitionNames(queue).map((p) => this.inner.events(p))).pipe(
      map((e) => ({ ...e, queue })),
    );
  }

  queueConfig(queue: string): Observable<QueueConfig> {
    return this.inner.queueConfig(this.firstPartition(queue));
  }

  // ---- administration

  async pause(queue: string): Promise<void> {
    await Promise.all(this.partitionNames(queue).map((p) => this.inner.pause(p)));
  }

  async resume(queue: string): Promise<void> {
    await Promise.all(this.partitionNames(queue).map((p) => this.inner.resume(p)));
  }

  async setConcurrency(queue: string, concurrency: number | undefined): Promise<void> {
    await Promise.all(this.partitionNames(queue).map((p) => this.inner.setConcurrency(p, concurrency)));
  }

  async cancel(queue: string, id: string): Promise<CancelResult> {
    for (const p of this.lookupOrder(queue, id)) {
      const result = await this.inner.cancel(p, id);
      if (result !== 'not-found') return result;
    }
    return 'not-found';
  }

  async getJob<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | undefined> {
    for (const p of this.lookupOrder(queue, id)) {
      const record = await this.inner.getJob<T>(p, id);
      if (record) return p === queue ? record : { ...record, queue };
    }
    return undefined;
  }

  async listJobs(queue: string, state: JobState, options: ListOptions = {}): Promise<readonly JobRecord[]> {
    if (!this.counts.has(queue)) return this.inner.listJobs(queue, state, options);
    const offset = options.offset ?? 0;
    const limit = options.limit ?? 50;
    // Each partition's first offset + limit, merged in the state's order, then the page.
    const pages = await Promise.all(
      this.partitionNames(queue).map((p) =>
        this.inner.listJobs(p, state, { ...options, offset: 0, limit: offset + limit }),
      ),
    );
    const newestFirst = state === 'completed' || state === 'cancelled' || state === 'dead';
    const timeOf = (r: JobRecord): number =>
      state === 'running' ? (r.lease?.startedAt ?? r.runAt) : newestFirst ? (r.finishedAt ?? 0) : r.runAt;
    return pages
      .flat()
      .sort((a, b) =>
        newestFirst
          ? timeOf(b) - timeOf(a)
          : (state === 'ready' ? a.priority - b.priority : 0) || timeOf(a) - timeOf(b),
      )
      .slice(offset, offset + limit)
      .map((r) => ({ ...r, queue }));
  }

  async retryJobs(queue: string, ids: readonly string[] | 'all-dead'): Promise<number> {
    return sum(await Promise.all(this.partitionNames(queue).map((p) => this.inner.retryJobs(p, ids))));
  }

  async promoteJob(queue: string, id: string): Promise<boolean> {
    for (const p of this.lookupOrder(queue, id)) if (await this.inner.promoteJob(p, id)) return true;
    return false;
  }

  async removeJob(queue: string, id: string): Promise<boolean> {
    for (const p of this.lookupOrder(queue, id)) if (await this.inner.removeJob(p, id)) return true;
    return false;
  }

  async purge(queue: string, state: 'dead' | 'completed' | 'cancelled'): Promise<number> {
    return sum(await Promise.all(this.partitionNames(queue).map((p) => this.inner.purge(p, state))));
  }

  async stats(queue: string): Promise<QueueStats> {
    if (!this.counts.has(queue)) return this.inner.stats(queue);
    const all = await Promise.all(this.partitionNames(queue).map((p) => this.inner.stats(p)));
    const first = all[0] as QueueStats;
    const add = <K extends string>(
      pick: (s: QueueStats) => Readonly<Record<K, number>>,
    ): Record<K, number> => {
      const out = { ...pick(first) } as Record<K, number>;
      for (const s of all.slice(1)) {
        const part = pick(s);
        for (const k of Object.keys(out) as K[]) out[k] += part[k];
      }
      return out;
    };
    return {
      queue,
      counts: add((s) => s.counts),
      retained: add((s) => s.retained),
      paused: all.every((s) => s.paused),
      totals: add((s) => s.totals),
    };
  }

  async history(queue: string, minutes: number): Promise<readonly MinuteBucket[]> {
    if (!this.counts.has(queue)) return this.inner.history(queue, minutes);
    const all = await Promise.all(this.partitionNames(queue).map((p) => this.inner.history(p, minutes)));
    const byMinute = new Map<number, { completed: number; failed: number }>();
    for (const bucket of all.flat()) {
      const b = byMinute.get(bucket.minute) ?? { completed: 0, failed: 0 };
      b.completed += bucket.completed;
      b.failed += bucket.failed;
      byMinute.set(bucket.minute, b);
    }
    return [...byMinute]
      .sort(([a], [b]) => a - b)
      .map(([minute, b]) => ({ minute, completed: b.completed, failed: b.failed }));
  }

  /** Queue names of the store underneath, each partition named by its queue (once). */
  async queues(): Promise<readonly string[]> {
    const names = await this.inner.queues();
    const out = new Set<string>();
    for (const name of names) out.add(parsePartitionName(name)?.queue ?? name);
    return [...out];
  }

  getQueueConfig(queue: string): Promise<QueueConfig> {
    return this.inner.getQueueConfig(this.firstPartition(queue));
  }

  async setQueueConfig(queue: string, config: QueueConfig): Promise<void> {
    await Promise.all(this.partitionNames(queue).map((p) => this.inner.setQueueConfig(p, config)));
  }

  async updateQueueConfig(queue: string, patch: QueueConfigPatch): Promise<QueueConfigChange> {
    const update = this.need('updateQueueConfig');
    const [first, ...rest] = this.partitionNames(queue) as [string, ...string[]];
    const change = await update.call(this.inner, first, patch);
    await Promise.all(rest.map((p) => this.inner.setQueueConfig(p, change.config)));
    return change;
  }

  async updateJob(queue: string, lease: LeaseRef, update: JobUpdate): Promise<boolean> {
    const updateJob = this.need('updateJob');
    const at = this.leaseOf(queue, lease.token);
    if (!at) return updateJob.call(this.inner, queue, lease, update);
    return updateJob.call(this.inner, at.partition, { id: lease.id, token: at.token }, update);
  }

  jobUpdates(queue: string): Observable<JobProgressEvent> {
    const jobUpdates = this.need('jobUpdates');
    if (!this.counts.has(queue)) return jobUpdates.call(this.inner, queue);
    return merge(...this.partitionNames(queue).map((p) => jobUpdates.call(this.inner, p))).pipe(
      map((e) => ({ ...e, queue })),
    );
  }

  async drain(queue: string): Promise<number> {
    const drain = this.need('drain');
    return sum(await Promise.all(this.partitionNames(queue).map((p) => drain.call(this.inner, p))));
  }

  async obliterate(queue: string, options?: ObliterateOptions): Promise<ObliterateResult> {
    const obliterate = this.need('obliterate');
    const all = await Promise.all(
      this.partitionNames(queue).map((p) => obliterate.call(this.inner, p, options)),
    );
    return { jobs: sum(all.map((a) => a.jobs)), running: sum(all.map((a) => a.running)) };
  }

  pauseGroup(queue: string, group: string): Promise<void> {
    return this.need('pauseGroup').call(this.inner, this.groupPartition(queue, group), group);
  }

  resumeGroup(queue: string, group: string): Promise<void> {
    return this.need('resumeGroup').call(this.inner, this.groupPartition(queue, group), group);
  }

  async listGroups(queue: string, options: ListGroupsOptions = {}): Promise<readonly GroupInfo[]> {
    const listGroups = this.need('listGroups');
    if (!this.counts.has(queue)) return listGroups.call(this.inner, queue, options);
    const offset = options.offset ?? 0;
    const limit = options.limit ?? 50;
    const pages = await Promise.all(
      this.partitionNames(queue).map((p) =>
        listGroups.call(this.inner, p, { offset: 0, limit: offset + limit }),
      ),
    );
    // Code-point order, as each store sorts them.
    return pages
      .flat()
      .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0))
      .slice(offset, offset + limit);
  }

  reportWorker(info: Omit<WorkerInfo, 'lastSeenAt'>, ttlMs: number): Promise<void> {
    return this.need('reportWorker').call(this.inner, info, ttlMs);
  }

  workers(): Promise<readonly WorkerInfo[]> {
    return this.need('workers').call(this.inner);
  }

  // A pipeline's limits live on the queue's own name (its slot), whatever its partitions.

  rateLimitUsage(queue: string, key: string, periodMs: number): Promise<number> {
    return this.need('rateLimitUsage').call(this.inner, queue, key, periodMs);
  }

  grantLimit(
    queue: string,
    limit: RateLimitSpec,
    units: number,
    options?: GrantLimitOptions,
  ): Observable<LimitGrantAnswer> {
    return this.need('grantLimit').call(this.inner, queue, limit, units, options);
  }

  refundLimit(queue: string, limit: RateLimitSpec, at: number, units: number): Observable<void> {
    return this.need('refundLimit').call(this.inner, queue, limit, at, units);
  }

  rebaseLimit(
    queue: string,
    limit: RateLimitSpec,
    from: number,
    units: number,
    leadMs?: number,
  ): Observable<RebaseResult> {
    return this.need('rebaseLimit').call(this.inner, queue, limit, from, units, leadMs);
  }

  pauseLimit(queue: string, limit: RateLimitSpec, ms: number): Observable<LimitPause> {
    return this.need('pauseLimit').call(this.inner, queue, limit, ms);
  }

  setRateLimit(queue: string, key: string, numbers: RateLimitNumbers | null): Promise<void> {
    return this.need('setRateLimit').call(this.inner, queue, key, numbers);
  }

  getRateLimit(queue: string, key: string): Promise<RateLimitNumbers | null> {
    return this.need('getRateLimit').call(this.inner, queue, key);
  }

  limitPauses(queue: string, limit: RateLimitSpec): Observable<number> {
    return this.need('limitPauses').call(this.inner, queue, limit);
  }

  storeTime(queue: string): Observable<number> {
    return this.need('storeTime').call(this.inner, queue);
  }

  // A group's rules live in its partition.

  setGroupLimit(queue: string, group: string, numbers: RateLimitNumbers | null): Promise<void> {
    return this.need('setGroupLimit').call(this.inner, this.groupPartition(queue, group), group, numbers);
  }

  getGroupLimit(queue: string, group: string): Promise<RateLimitNumbers | null> {
    return this.need('getGroupLimit').call(this.inner, this.groupPartition(queue, group), group);
  }

  setGroupWeight(queue: string, group: string, weight: number | null): Promise<void> {
    return this.need('setGroupWeight').call(this.inner, this.groupPartition(queue, group), group, weight);
  }

  getGroupWeight(queue: string, group: string): Promise<number | null> {
    return this.need('getGroupWeight').call(this.inner, this.groupPartition(queue, group), group);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  // ---- helpers

  /** Reserves up to `n` jobs from the partitions, starting at the next one in turn. */
  private reserveFrom<T>(
    queue: string,
    count: number,
    n: number,
    options: ReserveOptions,
    permits: readonly string[],
  ): Observable<ReserveResult<T>> {
    return defer(() => {
      const start = this.nextTurn(queue, count);
      const jobs: ReservedJob<T>[] = [];
      const rejected: RejectedJob[] = [];
      let slots: readonly LimitSlot[] | undefined;
      let paused = true;
      let nextCheckInMs: number | undefined;
      let retryAfterMs: number | undefined;
      /** Partition `i` in turn, then the next while demand is left (one call at a time). */
      const from = (i: number): Observable<void> => {
        if (i >= count || jobs.length >= n || slots) return of(undefined);
        const index = (start + i) % count;
        return this.inner.reserve<T>(partitionName(queue, index, count), n - jobs.length, options).pipe(
          last(),
          concatMap((result) => {
            if (!result.paused) paused = false;
            for (const job of result.jobs) {
              // <partition>~<permit, or none>~<the partition's token>
              const token = `${index}${TOKEN_SEPARATOR}${permits[jobs.length] ?? ''}${TOKEN_SEPARATOR}${job.lease.token}`;
              jobs.push({ ...job, queue, lease: { ...job.lease, token } });
            }
            rejected.push(...result.rejected);
            if (result.nextCheckInMs !== undefined)
              nextCheckInMs = Math.min(nextCheckInMs ?? Infinity, result.nextCheckInMs);
            if (result.retryAfterMs !== undefined)
              retryAfterMs = Math.min(retryAfterMs ?? Infinity, result.retryAfterMs);
            // Slots (group rate limits) are on the partition's clock: one partition's jobs per answer.
            if (result.slots && result.jobs.length > 0) slots = result.slots;
            return from(i + 1);
          }),
        );
      };
      return from(0).pipe(
        map((): ReserveResult<T> => ({
          jobs,
          rejected,
          paused: paused && jobs.length === 0,
          ...(slots ? { slots } : {}),
          // A partition held back by its group limits may be retried after the soonest of them;
          // the others may have more, so that is a check, not a hold.
          ...(nextCheckInMs !== undefined || retryAfterMs !== undefined
            ? { nextCheckInMs: Math.min(nextCheckInMs ?? Infinity, retryAfterMs ?? Infinity) }
            : {}),
        })),
      );
    });
  }

  /**
   * The partition, permit (global concurrency; '' for none) and partition's own token of a lease of
   * `queue`; `undefined` if the queue is not partitioned or the token is not one of its leases'.
   */
  private leaseOf(
    queue: string,
    token: string,
  ): { partition: string; permit: string; token: string } | undefined {
    const count = this.counts.get(queue);
    if (count === undefined) return undefined;
    const cut = token.indexOf(TOKEN_SEPARATOR);
    const cut2 = token.indexOf(TOKEN_SEPARATOR, cut + 1);
    const index = cut > 0 && cut2 > cut ? Number(token.slice(0, cut)) : NaN;
    if (!Number.isInteger(index) || index < 0 || index >= count) return undefined;
    return {
      partition: partitionName(queue, index, count),
      permit: token.slice(cut + 1, cut2),
      token: token.slice(cut2 + 1),
    };
  }

  /** Partitions to look for job `id` in: the one its id names or its hash picks first, then the rest. */
  private lookupOrder(queue: string, id: string): readonly string[] {
    const count = this.counts.get(queue);
    if (count === undefined) return [queue];
    const named = /^(\d+)\./.exec(id);
    const first = named && Number(named[1]) < count ? Number(named[1]) : hashOf(id) % count;
    const order = [partitionName(queue, first, count)];
    for (let i = 0; i < count; i++) if (i !== first) order.push(partitionName(queue, i, count));
    return order;
  }

  private groupPartition(queue: string, group: string): string {
    const count = this.counts.get(queue);
    return count === undefined ? queue : partitionName(queue, hashOf(group) % count, count);
  }

  private firstPartition(queue: string): string {
    const count = this.counts.get(queue);
    return count === undefined ? queue : partitionName(queue, 0, count);
  }

  private nextTurn(queue: string, count: number): number {
    const turn = this.turn.get(queue) ?? Math.floor(Math.random() * count);
    this.turn.set(queue, (turn + 1) % count);
    return turn % count;
  }

  /** An optional method of the store underneath, or an error naming it. */
  private need<K extends keyof Store>(name: K): NonNullable<Store[K]> {
    const method = this.inner[name];
    if (typeof method !== 'function') {
      throw new InvalidArgumentError(`the store underneath (${this.inner.kind}) has no ${name}`);
    }
    return method;
  }
}

/** FNV-1a of a string's UTF-16 code units: a job's partition by its group, unique key or id. */
function hashOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** The one answer of each store call, in order; `[]` at once for none. */
function allOf<T>(calls: readonly Observable<T>[]): Observable<T[]> {
  return calls.length === 0 ? of([]) : forkJoin(calls.map((c) => c.pipe(last())));
}

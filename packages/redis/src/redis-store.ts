import { defer, EMPTY, Observable, Subject, takeUntil, type Subscriber } from 'rxjs';
import {
  ACTIVE_CAP_CHECK_MS,
  InvalidArgumentError,
  JobState,
  silentLogger,
  StoreClosedError,
  type CancelResult,
  type EnqueueResult,
  type ExtendResult,
  type GroupInfo,
  type Handoff,
  type HandoffChannel,
  type GroupRateLimit,
  type ListGroupsOptions,
  type JobCounts,
  type JobEvent,
  type JobProgressEvent,
  type JobRecord,
  type JobUpdate,
  type LeaseRef,
  type ListOptions,
  type ObliterateOptions,
  type ObliterateResult,
  type Logger,
  type MinuteBucket,
  type NewJob,
  type QueueConfig,
  type QueueConfigChange,
  type QueueConfigPatch,
  type QueueSettings,
  type QueueStats,
  type RateLimitSpec,
  type LimitPause,
  type LimitSlot,
  type GrantLimitOptions,
  type GrantedUnits,
  type LimitGrantAnswer,
  type PermitGrant,
  type RateLimitNumbers,
  type RebaseResult,
  type RecoverResult,
  type RejectedJob,
  type ReservedJob,
  type ReserveOptions,
  type ReserveResult,
  type SettleResult,
  type Settlement,
  type Store,
  type WorkerInfo,
  DEFAULT_HISTORY_MINUTES,
  MAX_JOB_LOG_LINES,
  OutcomeKind,
  QueueBusyError,
  StoreError,
} from '@sluice/core';
import {
  applyConfigPatch,
  assertConfigPatch,
  assertGroupName,
  assertGroupWeight,
  assertListOptions,
  assertGrantUnits,
  assertPermitArgs,
  assertQueueName,
  assertRetention,
  encodeJobUpdate,
  validateNewJob,
} from '@sluice/core/internal';
import {
  delayOf,
  encodeNewJobInto,
  encodeRetention,
  encodeSettlements,
  readEvents,
  readInt,
  readJobUpdates,
  readJobFields,
  jobFieldsOf,
  compactFieldsOf,
  readLeasedRecords,
  toCompactJob,
  settleHint,
  DEFAULT_HINT,
  readRecord,
  toReservedJob,
  readSettings,
  readSettingsMessage,
  Reply,
  SCRIPT_DEFAULTS,
  readSettleCodes,
  type JobFields,
  type VersionedSettings,
} from './codec';
import { Connections, type RedisConnection } from './connection';
import { escapeGlob } from './delete-prefix';
import { NotReplicatedError, RedisScriptError, toStoreError } from './errors';
import { compactBucketKey, KeyBuilder, leaseIdKeys, type QueueKeys } from './keys';
import { PubSub } from './pubsub';
import { SettleHints } from './settle-hints';
import {
  CLUSTER_RETRY_MS,
  execScript,
  queueKeyResolver,
  retryClusterRefusals,
  scriptKeys,
  scripts,
  type LoadedScript,
  type RedisClient,
  type ReplicaWait,
  type ScriptKeyName,
  type ScriptName,
} from './scripts';
import { compareStreamIds, StreamReader, type StreamEntry } from './stream-reader';

/** Options of a {@link RedisStore}. Every field is optional. */
export interface RedisStoreOptions {
  /** Where Redis is (see {@link RedisConnection}). Default: `url`, else `'redis://127.0.0.1:6379'`. */
  readonly connection?: RedisConnection;
  /** Shorthand for a `connection` given as a URL (`redis://user:password@host:port/db`, `rediss://` for TLS). */
  readonly url?: string;
  /**
   * How long {@link RedisStore.connect} waits for Redis to answer before it rejects (and closes what it
   * opened, leaving no reconnect loop). Default `10_000`.
   */
  readonly connectTimeoutMs?: number;
  /**
   * Prefix of every key: `<prefix>:{<queue>}:…`. A trailing `:` is ignored; braces are not allowed.
   * Default `'sluice'`.
   */
  readonly prefix?: string;
  /**
   * The hash tag of a queue's keys (default: the queue name), so each queue lives in one Redis Cluster
   * slot. In Cluster, queues that share a rate-limit key must share a hash tag too (return the same
   * tag for them); on a single node any queues can share a limit.
   */
  readonly hashTag?: (queue: string) => string;
  /**
   * Approximate cap of each queue's event stream in entries (`XADD … MAXLEN ~ n`); one entry holds the
   * outcomes of one script call (a settle of many jobs is one entry). `0` publishes no events (and
   * `Queue.waitForResult` then only sees jobs already finished). Default `10_000`.
   */
  readonly eventsMaxLen?: number;
  /** Minutes of per-minute history kept. Default `1440` (a day, `DEFAULT_HISTORY_MINUTES`). */
  readonly historyMinutes?: number;
  /**
   * Jobs per enqueue script call (fewer when their payloads pass 4 MiB); a larger bulk add is several
   * calls, each atomic, run in order (on one server sent back to back, so Redis runs one while the
   * next is encoded). Default `250`.
   */
  readonly enqueueChunkSize?: number;
  /** Settlements (or lease extensions) per script call. Default `1000`. */
  readonly settleChunkSize?: number;
  /** Most due scheduled jobs one reserve (or stats / list) call promotes. Default `1000`. */
  readonly maxPromotePerCall?: number;
  /** Most expired leases one recover call handles; `recoverExpired` repeats until done. Default `1000`. */
  readonly maxRecoverPerCall?: number;
  /**
   * Most jobs one `drain` or `obliterate` script call deletes (each call is atomic; the client repeats
   * them until done), which bounds how long one call holds Redis. Default `1000`.
   */
  readonly maxDrainPerCall?: number;
  /** Jobs one filtered `listJobs` script call looks at; the calls repeat until the page is full. Default `5000`. */
  readonly listScanPerCall?: number;
  /** How often `settings(queue)` polls besides listening to pub/sub. Default `1000`. */
  readonly settingsPollMs?: number;
  /**
   * How long a call a Redis Cluster refuses without running it (`TRYAGAIN` while its queue's slot
   * moves to another master, `CLUSTERDOWN`, redirections) is tried again before it fails. Default
   * `30_000`; `0` fails at once (after ioredis' own redirections).
   */
  readonly clusterRetryMs?: number;
  /**
   * Durable adds: an add resolves only once `replicas` replicas of its master acknowledged it
   * (`WAIT`, pipelined with the add script), so a failover that promotes one of them keeps it.
   * Fewer in `timeoutMs` (default `1000`) fail the add with a `NotReplicatedError` (the jobs are on
   * the master: adding them again with the same ids or unique keys is answered as a duplicate).
   * Default: adds resolve once the master has them (Redis replicates asynchronously).
   */
  readonly durableAdds?: { readonly replicas: number; readonly timeoutMs?: number };
  /** Connection warnings go here. Default: silent. */
  readonly logger?: Logger;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
/** Payload characters per enqueue call, so large payloads do not make one huge, slow script call. */
const ENQUEUE_CHUNK_BYTES = 4 * 1024 * 1024;
const MINUTE = 60_000;
const CANCEL_RESULT: Readonly<Record<number, CancelResult>> = {
  0: 'not-found',
  1: 'cancelled',
  2: 'signalled',
  3: 'finished',
};

/**
 * A durable, distributed {@link Store} on Redis (one node or a Cluster): many worker processes on many
 * machines share its queues, leases and rate limits.
 *
 * Intuition: every state change is one Lua script run atomically inside Redis, and every time it
 * records comes from Redis `TIME`, so workers' clocks never matter. A reserve is one round trip that
 * checks the pause flag, promotes due jobs, applies the fill wait and the rate limit, and leases up to
 * `n` jobs; a settle applies many outcomes in one call; a bulk add stores a chunk of jobs per call.
 * Each lease carries a token, so a late settle from a worker whose lease expired is refused.
 *
 * Keys of one queue share a hash tag (`sluice:{emails}:…`), so a queue lives in one Cluster slot.
 * Wake-ups, cancellations and settings changes travel over pub/sub (one shared subscriber
 * connection; on a Cluster, sharded pub/sub over one connection per master); outcomes are published
 * on a capped stream per queue, read with `XREAD BLOCK`.
 *
 * Calls that fail (Redis unreachable, a timeout) fail their Observable or Promise with a
 * `StoreError`; ioredis reconnects meanwhile. Nothing is lost: a reserve whose reply never arrived
 * leaves leased jobs that lease recovery returns to the queue.
 *
 * ## Example
 * ```ts
 * import { definePipeline, Queue, Worker } from '@sluice/core';
 * import { RedisStore } from '@sluice/redis';
 *
 * const store = await RedisStore.connect({ connection: process.env.REDIS_URL, prefix: 'shop' });
 * const emails = new Queue<{ to: string }>(store, 'emails');
 * await emails.add({ to: 'ada@example.com' }, { priority: 1 });
 *
 * const worker = new Worker({
 *   store,
 *   pipelines: [
 *     definePipeline<{ to: string }>({
 *       queue: 'emails',
 *       concurrency: 20,
 *       rateLimit: { allowed: 400, periodMs: 1000 }, // across every worker process
 *       handler: async (job, { signal }) => send(job.data, { signal }),
 *     }),
 *   ],
 * });
 * worker.start();
 * process.on('SIGTERM', async () => {
 *   await worker.close({ timeoutMs: 25_000 });
 *   await store.close();
 * });
 * ```
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  /**
   * A settle's calls are sent when it is subscribed, and a queue's calls go over one connection (on
   * a Cluster, the one to the node of the queue's slot), which Redis runs in the order sent.
   */
  readonly settlesInOrder = true;
  /** The key builder: every key name this store uses. */
  readonly keys: KeyBuilder;
  private readonly connections: Connections;
  /** The Lua scripts this store runs: on a Cluster, those that publish with `SPUBLISH`. */
  private readonly scripts: Record<ScriptName, LoadedScript>;
  private readonly pubsub: PubSub;
  private readonly logger: Logger;
  private readonly eventsMaxLen: number;
  private readonly historyTtlMs: number;
  private readonly enqueueChunkSize: number;
  private readonly settleChunkSize: number;
  private readonly settleHints = new SettleHints();
  private readonly maxPromote: number;
  private readonly maxRecover: number;
  private readonly maxAdminPerCall: number;
  private readonly listScanPerCall: number;
  private readonly settingsPollMs: number;
  private readonly clusterRetryMs: number;
  private readonly durableAdds: { readonly replicas: number; readonly timeoutMs: number } | undefined;
  private readonly readers = new Map<string, StreamReader>();
  private readonly registered = new Set<string>();
  private readonly limitTags = new Map<string, string>();
  /** Limit keys whose tag was checked against the store-wide registry (Cluster). */
  private readonly limitTagsChecked = new Set<string>();
  private readonly closed$ = new Subject<void>();
  private readonly connectTimeoutMs: number;
  private closing: Promise<void> | undefined;

  /**
   * Creates a store; connections are opened at once but not awaited (calls made before they are up
   * wait for them). Use {@link RedisStore.connect} to wait until Redis answers.
   */
  constructor(options: RedisStoreOptions | string = {}) {
    const opts: RedisStoreOptions = typeof options === 'string' ? { connection: options } : options;
    this.logger = opts.logger ?? silentLogger;
    this.eventsMaxLen = nonNegativeInt(opts.eventsMaxLen ?? 10_000, 'eventsMaxLen');
    this.historyTtlMs =
      (positiveInt(opts.historyMinutes ?? DEFAULT_HISTORY_MINUTES, 'historyMinutes') + 1) * MINUTE;
    this.enqueueChunkSize = positiveInt(opts.enqueueChunkSize ?? 250, 'enqueueChunkSize');
    this.settleChunkSize = positiveInt(opts.settleChunkSize ?? 1000, 'settleChunkSize');
    this.maxPromote = positiveInt(opts.maxPromotePerCall ?? 1000, 'maxPromotePerCall');
    this.maxRecover = positiveInt(opts.maxRecoverPerCall ?? 1000, 'maxRecoverPerCall');
    this.maxAdminPerCall = positiveInt(opts.maxDrainPerCall ?? 1000, 'maxDrainPerCall');
    this.listScanPerCall = positiveInt(opts.listScanPerCall ?? 5000, 'listScanPerCall');
    this.settingsPollMs = positiveInt(opts.settingsPollMs ?? 1000, 'settingsPollMs');
    this.clusterRetryMs = nonNegativeInt(opts.clusterRetryMs ?? CLUSTER_RETRY_MS, 'clusterRetryMs');
    this.durableAdds = opts.durableAdds && {
      replicas: positiveInt(opts.durableAdds.replicas, 'durableAdds.replicas'),
      timeoutMs: positiveInt(opts.durableAdds.timeoutMs ?? 1000, 'durableAdds.timeoutMs'),
    };
    this.connectTimeoutMs = positiveInt(opts.connectTimeoutMs ?? 10_000, 'connectTimeoutMs');
    this.connections = new Connections(opts.connection ?? opts.url ?? DEFAULT_URL, this.logger);
    // The Lua sources are read now: a missing file fails here, not on the first call.
    try {
      this.scripts = scripts(this.connections.cluster);
    } catch (error) {
      void this.connections.close();
      throw error;
    }
    try {
      this.keys = new KeyBuilder({
        prefix: opts.prefix ?? 'sluice',
        cluster: this.connections.cluster,
        ...(opts.hashTag ? { hashTag: opts.hashTag } : {}),
      });
    } catch (error) {
      void this.connections.close();
      throw error;
    }
    this.pubsub = new PubSub(this.connections.subscriber(), this.logger, this.connections.cluster);
    // An obliterated queue is registered again by the next add of any process.
    this.pubsub.listen(this.storeChannel, (message) => {
      if (message.startsWith(OBLITERATED)) this.registered.delete(message.slice(OBLITERATED.length));
    });
  }

  /** Publishes from here as the scripts do: `SPUBLISH` on a Cluster (see `includes/publish.lua`). */
  private publish(channel: string, message: string): Promise<unknown> {
    const main = this.connections.main;
    return this.connections.cluster ? main.spublish(channel, message) : main.publish(channel, message);
  }

  /** The store-wide pub/sub channel (queue obliterations). */
  private get storeChannel(): string {
    return `${this.keys.prefix}:store`;
  }

  /**
   * Creates a store and resolves once Redis answers on its main and pub/sub connections. Rejects
   * within `connectTimeoutMs` (closing what it opened) if Redis cannot be reached.
   */
  static async connect(options: RedisStoreOptions | string = {}): Promise<RedisStore> {
    const store = new RedisStore(options);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.ready(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(new StoreError(`redis: no answer within ${store.connectTimeoutMs} ms`));
          }, store.connectTimeoutMs);
          timer.unref();
        }),
      ]);
      return store;
    } catch (error) {
      // The call's own error ("max retries", a timeout) hides the cause; the connection saw it.
      const cause = store.connections.lastError;
      await store.close();
      if (cause && !(error instanceof Error && /WRONGPASS|NOAUTH|NOPERM/.test(error.message))) {
        throw new StoreError(`redis: could not connect to ${store.connections.address()}: ${cause.message}`, {
          cause,
        });
      }
      throw toStoreError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once Redis answers on the main connection and the pub/sub connection is subscribed; rejects
   * at once when the server is older than Redis 7.0.
   */
  async ready(): Promise<void> {
    this.assertOpen();
    await this.connections.checkServer();
    // Keeps the subscriber connected from the start, so the first wake-up subscription is immediate.
    await this.pubsub.listen(this.storeChannel, () => undefined).ready;
  }

  /** The main connection (for administration and tests: keys are listed by {@link keys}). */
  get client(): RedisClient {
    return this.connections.main;
  }

  // ------------------------------------------------------------------ producers

  /**
   * Adds jobs: one script call per queue and chunk (`enqueueChunkSize`), so a bulk add costs a
   * fraction of a round trip per job. Everything is validated and encoded first: one invalid job
   * stores nothing. Payloads are JSON-encoded once here and stored verbatim.
   */
  enqueue(jobs: readonly NewJob[]): Observable<readonly EnqueueResult[]> {
    return defer(() => this.enqueueNow(jobs));
  }

  private async enqueueNow(jobs: readonly NewJob[]): Promise<EnqueueResult[]> {
    this.assertOpen();
    // Validate and encode everything before storing anything: a bad job in a bulk add stores nothing.
    for (const job of jobs) validateNewJob(job);
    const results = new Array<EnqueueResult>(jobs.length);
    const only = jobs.length === 1 ? jobs[0] : undefined;
    if (only) {
      // One job (every `Queue.add`): one call, with none of the grouping below.
      const values: (string | number)[] = [];
      encodeNewJobInto(values, only);
      if (!this.registered.has(only.queue)) await this.register([only.queue]);
      const group = { indices: [0], values };
      await this.enqueueChunk(
        only.queue,
        this.keys.queue(only.queue),
        group,
        0,
        1,
        (j) => (j < 1 ? 0 : values.length),
        results,
      );
      return results;
    }
    // Per queue: the jobs' indices in `jobs`, their values one after another, and where each starts.
    const groups = new Map<string, { indices: number[]; values: (string | number)[]; starts: number[] }>();
    jobs.forEach((job, i) => {
      let group = groups.get(job.queue);
      if (!group) {
        group = { indices: [], values: [], starts: [] };
        groups.set(job.queue, group);
      }
      group.indices.push(i);
      group.starts.push(group.values.length);
      encodeNewJobInto(group.values, job);
    });
    if (groups.size === 0) return results;
    await this.register([...groups.keys()]);
    await Promise.all(
      [...groups].map(async ([queue, group]) => {
        const keys = this.keys.queue(queue);
        const count = group.indices.length;
        const startOf = (j: number): number => (j < count ? (group.starts[j] ?? 0) : group.values.length);
        // Chunks of one queue go in order, so FIFO order and id order follow the input: on one
        // server they are sent back to back on one connection (Redis runs one while the next is
        // encoded and sent), on a Cluster (where a refused call is retried) and with durable adds
        // (where a chunk not replicated stops the rest) one after another.
        const pipelined = !this.connections.cluster && !this.durableAdds;
        const sent: Promise<void>[] = [];
        let start = 0;
        while (start < count) {
          // A chunk ends at enqueueChunkSize jobs or ENQUEUE_CHUNK_BYTES of payload, whichever first.
          let end = start;
          let bytes = 0;
          while (end < count && end - start < this.enqueueChunkSize) {
            const payload = group.values[startOf(end) + 1];
            bytes += typeof payload === 'string' ? payload.length : 0;
            end++;
            if (bytes >= ENQUEUE_CHUNK_BYTES) break;
          }
          const call = this.enqueueChunk(queue, keys, group, start, end, startOf, results);
          if (pipelined) sent.push(call);
          else await call;
          start = end;
        }
        await Promise.all(sent);
      }),
    );
    return results;
  }

  /** One enqueue call: jobs `start` to `end` (exclusive) of one queue's encoded jobs. */
  private async enqueueChunk(
    queue: string,
    keys: QueueKeys,
    group: { readonly indices: readonly number[]; readonly values: readonly (string | number)[] },
    start: number,
    end: number,
    startOf: (job: number) => number,
    results: EnqueueResult[],
  ): Promise<void> {
    const args = enqueueArgs(keys, end - start);
    for (let v = startOf(start), last = startOf(end); v < last; v++) args.push(group.values[v] ?? '');
    const durable: ReplicaWait | undefined = this.durableAdds && { ...this.durableAdds };
    // An add may hand its jobs to a parked worker: the handoff is written before this call's reply.
    const raw = await this.exec('enqueue', keys, args, undefined, undefined, undefined, durable, true);
    const reply = Reply.of(raw, this.scripts.enqueue.versionedName, queue);
    reply.int(); // store time
    for (let i = start; i < end; i++) {
      const index = group.indices[i] ?? 0;
      results[index] = { id: reply.str(), duplicate: reply.int() === 1 };
    }
    if (durable && (durable.acknowledged ?? 0) < durable.replicas) {
      const ids = group.indices.slice(start, end).map((i) => results[i]?.id ?? '');
      throw new NotReplicatedError(
        queue,
        durable.acknowledged ?? 0,
        durable.replicas,
        durable.timeoutMs,
        ids,
      );
    }
  }

  // ------------------------------------------------------------------ pipelines

  /**
   * One round trip (`lua/reserve-6.lua`): pause check, promotion of due jobs, fill rule, rate limit on
   * Redis `TIME`, and up to `n` leases. A leased record that is not a job (no payload, payload not
   * JSON, a non-numeric option) is dead-lettered by a second call and reported in `rejected`; it
   * never reaches the caller.
   */
  reserve<T = unknown>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> {
    return defer(async () => {
      this.assertOpen();
      const reclaiming = options.park?.cancelSeq !== undefined;
      if (!Number.isInteger(n) || n < (reclaiming ? 0 : 1)) {
        throw new InvalidArgumentError(`reserve needs n ≥ ${reclaiming ? 0 : 1}, got ${n}`);
      }
      if (!(options.leaseMs > 0))
        throw new InvalidArgumentError(`leaseMs must be > 0, got ${options.leaseMs}`);
      const keys = this.keys.queue(queue);
      const limit = options.limit;
      const limitKey = limit ? await this.sharedLimiterKey(queue, limit) : undefined;
      const more = (limit && limit.also) ?? [];
      const moreKeys = await Promise.all(more.map((l) => this.sharedLimiterKey(queue, l)));
      await this.register([queue]);
      const perCall = limit?.per === 'call' ? Math.max(1, Math.floor(limit.jobsPerCall ?? 1)) : 1;
      const leaseMs = Math.ceil(options.leaseMs);
      const args = [
        keys.jobPrefix,
        keys.readyPrefix,
        n,
        leaseMs,
        this.maxPromote,
        options.fill ? Math.max(0, options.fill.count) : 0,
        options.fill ? Math.max(0, options.fill.waitMs) : 0,
        limit?.allowed ?? 0,
        limit?.periodMs ?? 0,
        perCall,
        Math.max(0, Math.ceil(options.limitLeadMs ?? 0)),
        Math.max(0, Math.ceil(options.limitAheadMs ?? options.limitLeadMs ?? 0)),
        options.maxActive === undefined ? -1 : Math.max(0, Math.floor(options.maxActive)),
        ACTIVE_CAP_CHECK_MS,
        Math.max(0, Math.ceil(limit?.marginMs ?? 0)),
        options.workerId ?? '',
        keys.groupPrefix,
        options.groups?.concurrency === undefined ? -1 : Math.max(1, Math.floor(options.groups.concurrency)),
        options.limitSpread ? 1 : 0,
        ...groupLimitArgs(options.groups?.rateLimit),
        options.park?.id ?? '',
        options.park?.seq ?? 0,
        Math.max(1, Math.ceil(options.park?.ttlMs ?? 1)),
        options.park?.cancelSeq ?? '',
        ...moreLimitArgs(more),
      ];
      const reply = await this.call(
        'reserve',
        keys,
        args,
        limitKey,
        limit && { ...limit, key: limit.key ?? queue },
        moreKeys,
      );
      const paused = reply.int() === 1;
      const now = reply.int();
      const retryAfterMs = reply.int();
      const nextCheckInMs = reply.int();
      const token = reply.str();
      const count = reply.int();
      const lease = leaseOf(token, now, leaseMs, options.workerId);
      const records = readLeasedRecords(reply, count);
      const rejected: RejectedJob[] = [];
      const missing = reply.int();
      for (let i = 0; i < missing; i++) {
        rejected.push({
          id: reply.str(),
          reason: 'job record missing: its id was dropped from the ready list',
        });
      }
      // Each slot's time and how many of the jobs, in reply order, it holds.
      const slotsRead: { at: number; size: number }[] = [];
      for (let i = reply.int(); i > 0; i--) slotsRead.push({ at: reply.int(), size: reply.int() });
      const reclaimed = reply.int();
      const parked = reply.int();
      const ids = records.ids ?? (await this.leaseIds(keys, token, count));
      const { jobs, malformed, wellFormed } =
        records.compact && records.ids
          ? decodeCompact<T>(queue, records.ids, records.compact, lease, this.settleHints)
          : decodeLeased<T>(
              queue,
              ids,
              await this.readAgain(keys, ids, records.fields),
              lease,
              this.settleHints,
            );
      // Each slot's jobs, in order (dead-lettered ones left out).
      const slots: LimitSlot[] = [];
      let position = 0;
      for (const { at, size } of slotsRead) {
        const end = Math.min(count, position + size);
        let kept = 0;
        for (; position < end; position++) if (wellFormed[position]) kept++;
        if (kept > 0) slots.push({ at, jobs: kept });
      }
      if (malformed.length > 0) {
        await this.rejectMalformed(keys, token, malformed);
        rejected.push(...malformed);
      }
      return {
        jobs,
        paused,
        rejected,
        ...(slots.length > 0 ? { slots } : {}),
        ...(retryAfterMs >= 0 ? { retryAfterMs } : {}),
        ...(nextCheckInMs >= 0 ? { nextCheckInMs } : {}),
        ...(options.park ? { park: { reclaimed, parked } } : {}),
      };
    });
  }

  /**
   * The ids of a lease just opened, in the order the reserve leased them, for a reserve whose answer
   * could not carry them joined (one of them, or of their records, holds a NUL byte).
   */
  private async leaseIds(keys: QueueKeys, token: string, count: number): Promise<string[]> {
    const { key, list } = leaseIdKeys(keys, token);
    const main = this.connections.main;
    const joined = await this.command(keys.queue, () => main.hget(key, 'j'));
    const ids: (string | null)[] =
      count === 1
        ? [joined]
        : joined === ''
          ? await this.command(keys.queue, () => main.lrange(list, 0, -1))
          : (joined?.split('\0') ?? []);
    if (ids.length !== count || ids.some((id) => id === null)) {
      throw new RedisScriptError(
        this.scripts.reserve.versionedName,
        `the lease ${token} holds ${ids.length} ids where the reserve leased ${count}`,
        { queue: keys.queue },
      );
    }
    return ids as string[];
  }

  /**
   * The fields of each leased record: reads again by itself (`HGETALL`, or for a compact record its
   * field of the compact hash, `lua/includes/compact.lua`) each one the reserve's answer could not
   * carry joined (all of a call's, when one holds a NUL byte, which Sluice does not write), in
   * place, the reads sent back to back.
   */
  private async readAgain(
    keys: QueueKeys,
    ids: readonly string[],
    fields: (JobFields | undefined)[],
  ): Promise<JobFields[]> {
    const reads: Promise<void>[] = [];
    for (let i = 0; i < fields.length; i++) {
      if (fields[i] !== undefined) continue;
      const id = ids[i] as string;
      const key = keys.jobPrefix + id;
      reads.push(
        this.command(keys.queue, () => this.connections.main.hgetall(key)).then(async (record) => {
          if (Object.keys(record).length > 0) {
            fields[i] = jobFieldsOf(record);
            return;
          }
          const bucket = compactBucketKey(keys, id);
          const value = await this.command(keys.queue, () => this.connections.main.hget(bucket, id));
          fields[i] = value === null ? {} : compactFieldsOf(value);
        }),
      );
    }
    if (reads.length > 0) await Promise.all(reads);
    return fields as JobFields[];
  }

  /**
   * The channel an add hands jobs over on to the park `parkId` (`lua/includes/parks.lua`): each
   * message is one lease, decoded as a reserve's answer is (malformed records dead-lettered).
   */
  openHandoffs<T = unknown>(queue: string, parkId: string): HandoffChannel<T> {
    assertQueueName(queue);
    const keys = this.keys.queue(queue);
    const handoffs = new Subject<Handoff<T>>();
    const unreadable = (error: unknown): void => {
      // Its jobs stay leased: lease recovery returns them.
      this.logger.warn('redis handoff unreadable', { queue, error: String(error) });
    };
    const listener = this.pubsub.listen(keys.handoffPrefix + parkId, (message) => {
      // Read and passed on in the same turn as the message (the handler's start waits on it); only a
      // handoff with malformed records waits for them to be dead-lettered first.
      let read: { handoff: Handoff<T>; token: string; malformed: readonly RejectedJob[] };
      try {
        read = this.readHandoff<T>(queue, message);
      } catch (error) {
        unreadable(error);
        return;
      }
      if (read.malformed.length === 0) {
        handoffs.next(read.handoff);
        return;
      }
      this.rejectMalformed(keys, read.token, read.malformed).then(() => {
        handoffs.next(read.handoff);
      }, unreadable);
    });
    const closed = this.closed$.subscribe(() => {
      handoffs.complete();
    });
    return {
      ready: listener.ready,
      handoffs: handoffs.asObservable(),
      unpark: async (seq) => {
        this.assertOpen();
        const reply = await this.exec('unpark', keys, [parkId, seq]);
        return typeof reply === 'number' && reply > 0 ? reply : 0;
      },
      close: () => {
        listener.close();
        closed.unsubscribe();
        handoffs.complete();
      },
    };
  }

  /** A handoff message decoded, and its malformed records (to dead-letter under `token`). */
  private readHandoff<T>(
    queue: string,
    message: string,
  ): { handoff: Handoff<T>; token: string; malformed: readonly RejectedJob[] } {
    const script = this.scripts.enqueue.versionedName;
    const reply = Reply.of(JSON.parse(message) as unknown, script, queue);
    const seq = reply.int();
    const parked = reply.int();
    const now = reply.int();
    const token = reply.str();
    const leaseMs = reply.int();
    const workerId = reply.str();
    const count = reply.int();
    const lease = leaseOf(token, now, leaseMs, workerId);
    const { ids, fields } = readHandoffRecords(reply, count);
    const { jobs, malformed } = decodeLeased<T>(queue, ids, fields, lease, this.settleHints);
    return { handoff: { seq, parked, jobs, rejected: malformed }, token, malformed };
  }

  /**
   * Applies outcomes in one script call per queue and chunk, each only if its lease token still
   * matches; counters, per-minute history and one event-stream entry are written in the same call.
   */
  settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    return eachCall(async () => {
      this.assertOpen();
      const results = new Array<SettleResult>(settlements.length);
      const groups = new Map<string, number[]>();
      // A settle's jobs are mostly of one queue: its name is checked and looked up once per run.
      let lastQueue: string | undefined;
      let lastGroup: number[] | undefined;
      settlements.forEach((s, i) => {
        if (s.queue === lastQueue && lastGroup) {
          lastGroup.push(i);
          return;
        }
        if (!isQueueName(s.queue)) {
          results[i] = { id: s.id, applied: false, reason: 'not-found' };
          return;
        }
        let group = groups.get(s.queue);
        if (group) group.push(i);
        else groups.set(s.queue, (group = [i]));
        lastQueue = s.queue;
        lastGroup = group;
      });
      // Every call is sent before the first answer is awaited (chunks of one queue back to back), so
      // all of a settle is sent when it is subscribed (`settlesInOrder`).
      const calls: Promise<void>[] = [];
      for (const [queue, indices] of groups) {
        const keys = this.keys.queue(queue);
        for (let start = 0; start < indices.length; start += this.settleChunkSize) {
          calls.push(
            this.settleChunk(keys, settlements, indices.slice(start, start + this.settleChunkSize), results),
          );
        }
      }
      await Promise.all(calls);
      return results;
    });
  }

  /** One settle call: the settlements at `chunk` (indices into `settlements`, of one queue). */
  private async settleChunk(
    keys: QueueKeys,
    settlements: readonly Settlement[],
    chunk: readonly number[],
    results: SettleResult[],
  ): Promise<void> {
    const args: (string | number)[] = [
      keys.jobPrefix,
      keys.readyPrefix,
      keys.historyPrefix,
      this.eventsMaxLen,
      this.historyTtlMs,
      SCRIPT_DEFAULTS.defaultRetention,
      SCRIPT_DEFAULTS.maxErrors,
      SCRIPT_DEFAULTS.defaultDeadRetention,
      keys.groupPrefix,
      keys.wakeChannel,
      chunk.length,
    ];
    encodeSettlements(
      chunk.map((i) => settlements[i] as Settlement),
      (s) => this.settleHints.take(s.token, s.id),
      args,
    );
    const reply = await this.call('settle', keys, args);
    const at = reply.int();
    const codes = readSettleCodes(reply, chunk.length);
    chunk.forEach((i, k) => {
      const s = settlements[i] as Settlement;
      const code = codes[k];
      if (code === '1') {
        results[i] =
          s.kind === OutcomeKind.Retrying || s.kind === OutcomeKind.Snoozed
            ? { id: s.id, applied: true, at, runAt: at + delayOf(s.delayMs) }
            : new Applied(s.id, at);
      } else {
        results[i] = { id: s.id, applied: false, reason: code === '0' ? 'not-found' : 'lease-lost' };
      }
    });
  }

  extendLeases(queue: string, leases: readonly LeaseRef[], leaseMs: number): Observable<ExtendResult> {
    return defer(async () => {
      this.assertOpen();
      const keys = this.keys.queue(queue);
      const extended: string[] = [];
      const lost: string[] = [];
      for (let start = 0; start < leases.length; start += this.settleChunkSize) {
        const chunk = leases.slice(start, start + this.settleChunkSize);
        const args: (string | number)[] = [keys.jobPrefix, Math.ceil(leaseMs), chunk.length];
        for (const l of chunk) args.push(l.id, l.token);
        const reply = await this.call('extend', keys, args);
        reply.int();
        for (const l of chunk) {
          if (reply.int() === 1) extended.push(l.id);
          else {
            lost.push(l.id);
            this.settleHints.take(l.token, l.id);
          }
        }
      }
      return { extended, lost };
    });
  }

  /**
   * Returns jobs whose lease deadline passed (store clock) to the queue, counting the attempt, or
   * dead-letters them on their last attempt. Idempotent: any node may run it at any time.
   */
  recoverExpired(queue: string): Observable<RecoverResult> {
    return defer(async () => {
      this.assertOpen();
      const keys = this.keys.queue(queue);
      const recovered: string[] = [];
      const dead: string[] = [];
      for (let round = 0; round < 100; round++) {
        const args = [
          keys.jobPrefix,
          keys.readyPrefix,
          keys.historyPrefix,
          keys.wakeChannel,
          this.eventsMaxLen,
          this.historyTtlMs,
          this.maxRecover,
          SCRIPT_DEFAULTS.defaultMaxAttempts,
          SCRIPT_DEFAULTS.maxErrors,
          SCRIPT_DEFAULTS.leaseExpiredReason,
          SCRIPT_DEFAULTS.leaseExpiredErrorJson,
          SCRIPT_DEFAULTS.defaultRetention,
          SCRIPT_DEFAULTS.defaultDeadRetention,
          keys.groupPrefix,
        ];
        const reply = await this.call('recover', keys, args);
        reply.int();
        const more = reply.int() === 1;
        const r = reply.int();
        for (let i = 0; i < r; i++) recovered.push(reply.str());
        const d = reply.int();
        for (let i = 0; i < d; i++) dead.push(reply.str());
        if (!more) break;
      }
      return { recovered, dead };
    });
  }

  /** Pub/sub on the queue's wake channel (published by enqueue, resume, recovery, promotion). Best effort. */
  wakeups(queue: string): Observable<void> {
    return this.channel(
      queue,
      (keys) => keys.wakeChannel,
      () => undefined,
    );
  }

  /** Ids of running jobs someone cancelled, over pub/sub; every subscribed worker process sees them. */
  cancellations(queue: string): Observable<string> {
    return this.channel(
      queue,
      (keys) => keys.cancelChannel,
      (message) => message,
    );
  }

  /**
   * The queue's settings now, then every change: pushed over pub/sub and also polled every
   * `settingsPollMs`, so a missed message (a reconnect) delays a change by at most that long. Versions
   * only grow, so an older snapshot never follows a newer one.
   */
  settings(queue: string): Observable<QueueSettings> {
    return this.hot<QueueSettings>((subscriber) => {
      const keys = this.keys.queue(queue);
      let version = -1;
      const offer = (v: VersionedSettings): void => {
        if (v.version > version) {
          version = v.version;
          subscriber.next(v.settings);
        }
      };
      // One read at a time: during a stall, polls do not pile up behind each other.
      let reading = false;
      const poll = (): void => {
        if (reading) return;
        reading = true;
        this.readSettings(keys)
          .then(offer, (error: unknown) => {
            this.logger.warn('reading queue settings failed', { queue, error: String(error) });
          })
          .finally(() => {
            reading = false;
          });
      };
      const listener = this.pubsub.listen(keys.settingsChannel, (message) => {
        const v = readSettingsMessage(message);
        if (v) offer(v);
      });
      // The current settings once the subscription is confirmed, so no change in between is missed.
      listener.ready.then(poll, poll);
      const timer = setInterval(poll, this.settingsPollMs);
      timer.unref();
      return () => {
        clearInterval(timer);
        listener.close();
      };
    });
  }

  /**
   * The queue's stored configuration now, then whenever it changes: read at once, then every
   * `settingsPollMs` (one read at a time), and at once after this store changes it. A read that fails
   * is logged and tried again at the next poll, so a subscriber that starts during an outage gets the
   * configuration as soon as Redis answers.
   */
  queueConfig(queue: string): Observable<QueueConfig> {
    return this.hot<QueueConfig>((subscriber) => {
      let last: string | undefined;
      let reading = false;
      const poll = (): void => {
        if (reading) return;
        reading = true;
        this.readConfigJson(queue)
          .then(
            (json) => {
              if (json === last) return;
              last = json;
              let config: QueueConfig;
              try {
                config = parseConfig(json);
              } catch (error) {
                this.logger.warn('stored queue config unreadable', { queue, error: String(error) });
                return;
              }
              subscriber.next(config);
            },
            (error: unknown) => {
              this.logger.warn('reading queue config failed', { queue, error: String(error) });
            },
          )
          .finally(() => {
            reading = false;
          });
      };
      poll();
      const timer = setInterval(poll, this.settingsPollMs);
      timer.unref();
      const changed = this.configChanged.subscribe((q) => {
        if (q === queue) poll();
      });
      return () => {
        clearInterval(timer);
        changed.unsubscribe();
      };
    });
  }

  /**
   * Outcomes of the queue's jobs from every process, read from its capped stream with `XREAD BLOCK`
   * on a connection of its own (one per queue, shared by every subscriber). Hot: it starts with the
   * events after the subscription, and a reconnect resumes where it left off.
   */
  events(queue: string): Observable<JobEvent> {
    return this.streamOf(queue, readEvents);
  }

  /**
   * Progress and log reports of the queue's running jobs from every process: entries of kind
   * `progress` on the same stream as {@link events} (which skips them).
   */
  jobUpdates(queue: string): Observable<JobProgressEvent> {
    return this.streamOf(queue, readJobUpdates);
  }

  /**
   * Records progress and log lines of a running job (one script call, `lua/update-job-1.lua`), only
   * while `lease` holds it. See `Store.updateJob`.
   */
  async updateJob(queue: string, lease: LeaseRef, update: JobUpdate): Promise<boolean> {
    this.assertOpen();
    const { progressJson, lines } = encodeJobUpdate(update);
    const keys = this.tryKeys(queue);
    if (!keys) return false;
    const kept = lines.slice(-MAX_JOB_LOG_LINES);
    const code = await this.int('update-job', keys, [
      keys.jobPrefix,
      this.eventsMaxLen,
      MAX_JOB_LOG_LINES,
      lease.id,
      lease.token,
      progressJson ?? '',
      lines.length > 0 ? JSON.stringify(lines) : '',
      kept.length,
      ...kept,
    ]);
    return code === 1;
  }

  /** Entries of the queue's event stream after the subscription, read into values by `parse`. */
  private streamOf<R>(
    queue: string,
    parse: (queue: string, fields: readonly string[]) => R[],
  ): Observable<R> {
    return this.hot<R>((subscriber) => {
      const keys = this.keys.queue(queue);
      const reader = this.reader(keys);
      let startId: string | undefined;
      const early: StreamEntry[] = [];
      const deliver = (entry: StreamEntry): void => {
        if (startId === undefined || compareStreamIds(entry.id, startId) <= 0) return;
        for (const value of parse(queue, entry.fields)) subscriber.next(value);
      };
      const detach = reader.attach((entry) => {
        if (startId === undefined) early.push(entry);
        else deliver(entry);
      });
      // Events after this point count: the newest id now, read on the main connection, which orders
      // it before any later settle this process sends.
      this.connections.main.xrevrange(keys.events, '+', '-', 'COUNT', 1).then(
        (last) => {
          startId = last[0]?.[0] ?? '0-0';
          reader.ensureRunning(startId);
          for (const entry of early.splice(0)) deliver(entry);
        },
        (error: unknown) => {
          subscriber.error(toStoreError(error, queue));
        },
      );
      return detach;
    });
  }

  // ------------------------------------------------------------------ administration

  async pause(queue: string): Promise<void> {
    await this.changeSettings(queue, 'pause', '');
  }

  async resume(queue: string): Promise<void> {
    await this.changeSettings(queue, 'resume', '');
  }

  async pauseGroup(queue: string, group: string): Promise<void> {
    await this.changeGroup(queue, group, true);
  }

  async resumeGroup(queue: string, group: string): Promise<void> {
    await this.changeGroup(queue, group, false);
  }

  /** The rate-limit log of one group of `queue` (see `lua/includes/groups.lua`). */
  private groupLimiterKey(queue: string, group: string): string {
    assertGroupName(group);
    return `${this.keys.queue(queue).groupPrefix}l:${group}`;
  }

  /**
   * Sets (or, with `null`, clears) one group's rate-limit numbers (fields oA, oP of its log, one
   * script call, `lua/set-limit-1.lua`): every reserve checks them from its next call. See
   * `Store.setGroupLimit`.
   */
  async setGroupLimit(queue: string, group: string, numbers: RateLimitNumbers | null): Promise<void> {
    this.assertOpen();
    if (numbers !== null) checkLimitNumbers(numbers);
    const keys = this.keys.queue(queue);
    await this.int(
      'set-limit',
      keys,
      numbers === null ? [0, 0] : [numbers.allowed, numbers.periodMs],
      this.groupLimiterKey(queue, group),
    );
  }

  /**
   * Sets (or, with `null` or 1, clears) one group's weight: a field of the queue's weights hash
   * (`<groupPrefix>wt`, read by reserve once per call). See `Store.setGroupWeight`.
   */
  async setGroupWeight(queue: string, group: string, weight: number | null): Promise<void> {
    this.assertOpen();
    assertGroupName(group);
    if (weight !== null) assertGroupWeight(weight);
    const key = `${this.keys.queue(queue).groupPrefix}wt`;
    const main = this.connections.main;
    await this.command(queue, () =>
      weight === null || weight === 1 ? main.hdel(key, group) : main.hset(key, group, weight),
    );
  }

  /** The weight set for one group with `setGroupWeight`, if any. */
  async getGroupWeight(queue: string, group: string): Promise<number | null> {
    this.assertOpen();
    assertGroupName(group);
    const key = `${this.keys.queue(queue).groupPrefix}wt`;
    const weight = await this.command(queue, () => this.connections.main.hget(key, group));
    return weight === null ? null : Number(weight);
  }

  /** The numbers set for one group with `setGroupLimit`, if any. */
  async getGroupLimit(queue: string, group: string): Promise<RateLimitNumbers | null> {
    this.assertOpen();
    const key = this.groupLimiterKey(queue, group);
    const [allowed, periodMs] = await this.command(queue, () => this.connections.main.hmget(key, 'oA', 'oP'));
    return allowed && periodMs ? { allowed: Number(allowed), periodMs: Number(periodMs) } : null;
  }

  /** Pauses or resumes one group (`lua/pause-group-1.lua`). */
  private async changeGroup(queue: string, group: string, paused: boolean): Promise<void> {
    this.assertOpen();
    assertGroupName(group);
    const keys = this.keys.queue(queue);
    await this.register([queue]);
    await this.int('pause-group', keys, [
      keys.readyPrefix,
      keys.groupPrefix,
      keys.wakeChannel,
      group,
      paused ? 1 : 0,
    ]);
  }

  /** One page of the queue's groups (`lua/list-groups-1.lua`). See `Store.listGroups`. */
  async listGroups(queue: string, options: ListGroupsOptions = {}): Promise<readonly GroupInfo[]> {
    this.assertOpen();
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.max(0, Math.floor(options.limit ?? 50));
    const keys = this.tryKeys(queue);
    if (!keys) return [];
    const reply = await this.call('list-groups', keys, [keys.groupPrefix, offset, limit]);
    reply.int(); // the queue's own pause flag
    reply.int(); // groups in all
    const count = reply.int();
    const groups: GroupInfo[] = [];
    for (let i = 0; i < count; i++) {
      const group = reply.str();
      const ready = reply.int();
      const active = reply.int();
      const paused = reply.int() === 1;
      const limitedUntil = reply.int();
      const weight = reply.int();
      groups.push({
        group,
        ready,
        active,
        paused,
        ...(limitedUntil >= 0 ? { limitedUntil } : {}),
        ...(weight > 0 ? { weight } : {}),
      });
    }
    return groups;
  }

  async setConcurrency(queue: string, concurrency: number | undefined): Promise<void> {
    if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
      throw new InvalidArgumentError(`concurrency must be an integer ≥ 1, got ${concurrency}`);
    }
    await this.changeSettings(queue, 'concurrency', concurrency === undefined ? '' : String(concurrency));
  }

  async cancel(queue: string, id: string): Promise<CancelResult> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return 'not-found';
    const code = await this.int('cancel', keys, [
      keys.jobPrefix,
      keys.readyPrefix,
      keys.cancelChannel,
      this.eventsMaxLen,
      id,
      SCRIPT_DEFAULTS.defaultRetention,
      SCRIPT_DEFAULTS.cancelledBeforeRun,
      keys.groupPrefix,
    ]);
    const result = CANCEL_RESULT[code];
    if (result === undefined) {
      throw new RedisScriptError(this.scripts.cancel.versionedName, `malformed reply: unknown code ${code}`, {
        queue,
      });
    }
    return result;
  }

  async getJob<T = unknown>(queue: string, id: string): Promise<JobRecord<T> | undefined> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return undefined;
    const reply = await this.call('get-job', keys, [keys.jobPrefix, id]);
    return reply.done ? undefined : readRecord<T>(reply, queue);
  }

  /**
   * One page of the queue's jobs in `state` (`lua/list-jobs-5.lua`). With a filter (`name`, `from`,
   * `to`) each script call looks at no more than `listScanPerCall` jobs and the calls go on where
   * the last stopped until the page is full, so a filter over a huge state never holds Redis for long.
   */
  async listJobs(queue: string, state: JobState, options: ListOptions = {}): Promise<readonly JobRecord[]> {
    this.assertOpen();
    assertListOptions(options);
    const keys = this.tryKeys(queue);
    if (!keys) return [];
    const limit = Math.max(0, Math.floor(options.limit ?? 50));
    const out: JobRecord[] = [];
    let position = Math.max(0, Math.floor(options.offset ?? 0));
    const filtered = options.name !== undefined || options.from !== undefined || options.to !== undefined;
    let skip = filtered ? position : 0;
    if (filtered) position = 0;
    for (;;) {
      const reply = await this.call('list-jobs', keys, [
        keys.jobPrefix,
        keys.readyPrefix,
        state,
        position,
        limit - out.length,
        this.maxPromote,
        queue,
        options.name ?? '',
        options.from === undefined ? '' : Math.ceil(options.from),
        options.to === undefined ? '' : Math.floor(options.to),
        this.listScanPerCall,
        skip,
        keys.groupPrefix,
      ]);
      const count = reply.int();
      for (let i = 0; i < count; i++) out.push(readRecord(reply, queue));
      const next = reply.int();
      skip = reply.int();
      if (!filtered || next < 0 || out.length >= limit) return out;
      position = next;
    }
  }

  async retryJobs(queue: string, ids: readonly string[] | 'all-dead'): Promise<number> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return 0;
    const base = [keys.jobPrefix, keys.readyPrefix, keys.wakeChannel];
    let moved = 0;
    if (ids === 'all-dead') {
      for (;;) {
        const reply = await this.call('retry-jobs', keys, [...base, 'all-dead', 1000, keys.groupPrefix]);
        moved += reply.int();
        if (reply.int() !== 1) break;
      }
      return moved;
    }
    for (let start = 0; start < ids.length; start += 1000) {
      const chunk = ids.slice(start, start + 1000);
      const reply = await this.call('retry-jobs', keys, [...base, 'ids', 1000, keys.groupPrefix, ...chunk]);
      moved += reply.int();
    }
    return moved;
  }

  async promoteJob(queue: string, id: string): Promise<boolean> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return false;
    const code = await this.int('promote-job', keys, [
      keys.jobPrefix,
      keys.readyPrefix,
      keys.wakeChannel,
      id,
      keys.groupPrefix,
    ]);
    return code === 1;
  }

  async removeJob(queue: string, id: string): Promise<boolean> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return false;
    return (
      (await this.int('remove-job', keys, [keys.jobPrefix, keys.readyPrefix, id, keys.groupPrefix])) === 1
    );
  }

  async purge(queue: string, state: 'dead' | 'completed' | 'cancelled'): Promise<number> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return 0;
    let deleted = 0;
    for (;;) {
      const reply = await this.call('purge', keys, [keys.jobPrefix, state, 1000]);
      deleted += reply.int();
      if (reply.int() !== 1) return deleted;
    }
  }

  /**
   * Deletes the queue's ready and scheduled jobs, `maxDrainPerCall` per script call
   * (`lua/drain-2.lua`), so a queue of millions never blocks Redis for long; between calls other
   * clients go on. It deletes at most as many jobs as were waiting after its first call (plus that
   * call's), so a steady stream of adds cannot keep it going. See `Store.drain`.
   */
  async drain(queue: string): Promise<number> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return 0;
    const args = [
      keys.jobPrefix,
      keys.readyPrefix,
      keys.uniquePrefix,
      this.maxAdminPerCall,
      keys.groupPrefix,
    ];
    let reply = await this.call('drain', keys, args);
    let deleted = reply.int();
    let remaining = reply.int();
    const bound = deleted + remaining;
    while (remaining > 0 && deleted < bound) {
      reply = await this.call('drain', keys, args);
      const step = reply.int();
      remaining = reply.int();
      deleted += step;
      if (step === 0) break;
    }
    return deleted;
  }

  /**
   * Deletes the queue (`lua/obliterate-9.lua`): each script call is atomic and handles at most
   * `maxDrainPerCall` job records or scanned keys, and the calls repeat until the queue is gone. The
   * queue stays paused in between, and its name leaves {@link queues} at the end; other
   * `RedisStore`s of the same prefix hear of it over pub/sub and register the queue again on their
   * next add. See `Store.obliterate`.
   */
  async obliterate(queue: string, options: ObliterateOptions = {}): Promise<ObliterateResult> {
    this.assertOpen();
    const keys = this.keys.queue(queue);
    const base = keys.jobPrefix.slice(0, -SUFFIX_JOB_LENGTH);
    let cursor = '';
    let jobs = 0;
    let running: number | undefined;
    for (;;) {
      const reply = await this.call('obliterate', keys, [
        keys.jobPrefix,
        keys.readyPrefix,
        keys.uniquePrefix,
        keys.cancelChannel,
        keys.settingsChannel,
        `${escapeGlob(base)}*`,
        options.force === true ? 1 : 0,
        this.maxAdminPerCall,
        cursor,
      ]);
      const code = reply.int();
      const deleted = reply.int();
      const found = reply.int();
      cursor = reply.str();
      if (code === 0) throw new QueueBusyError(queue, found);
      running ??= found;
      jobs += deleted;
      if (code === 2) break;
    }
    await this.command(queue, () => this.connections.main.srem(this.keys.queues, queue));
    this.registered.delete(queue);
    await this.command(queue, () => this.publish(this.storeChannel, `${OBLITERATED}${queue}`));
    this.configChanged.next(queue);
    return { jobs, running };
  }

  async stats(queue: string): Promise<QueueStats> {
    this.assertOpen();
    const keys = this.keys.queue(queue);
    await this.register([queue]);
    const r = await this.call('stats', keys, [
      keys.jobPrefix,
      keys.readyPrefix,
      this.maxPromote,
      SCRIPT_DEFAULTS.defaultRetention,
      SCRIPT_DEFAULTS.defaultDeadRetention,
      keys.groupPrefix,
    ]);
    const paused = r.int() === 1;
    const counts: JobCounts = {
      [JobState.Ready]: r.int(),
      [JobState.Scheduled]: r.int(),
      [JobState.Running]: r.int(),
      [JobState.Completed]: r.int(),
      [JobState.Dead]: r.int(),
      [JobState.Cancelled]: r.int(),
    };
    const enqueued = r.int();
    const completed = r.int();
    const failed = r.int();
    const dead = r.int();
    const cancelled = r.int();
    const leaseExpiries = r.int();
    const totals = {
      enqueued,
      completed,
      failed,
      // Failures counted before lease expiries were counted apart all show as handler failures.
      handlerFailures: Math.max(0, failed - leaseExpiries),
      leaseExpiries,
      dead,
      cancelled,
    };
    const retained = { completed: counts.completed, cancelled: counts.cancelled, dead: counts.dead };
    return { queue, counts, retained, paused, totals };
  }

  async history(queue: string, minutes: number): Promise<readonly MinuteBucket[]> {
    this.assertOpen();
    const keys = this.keys.queue(queue);
    const count = Math.max(1, Math.floor(minutes));
    const r = await this.call('history', keys, [keys.historyPrefix, count]);
    const current = r.int();
    const out: MinuteBucket[] = [];
    for (let i = count - 1; i >= 0; i--) {
      out.push({ minute: current - i * MINUTE, completed: r.int(), failed: r.int() });
    }
    return out;
  }

  async queues(): Promise<readonly string[]> {
    this.assertOpen();
    const names = await this.command(undefined, () => this.connections.main.smembers(this.keys.queues));
    return [...names].sort();
  }

  async getQueueConfig(queue: string): Promise<QueueConfig> {
    return parseConfig(await this.readConfigJson(queue));
  }

  /** The stored configuration's JSON, `''` when there is none. */
  private async readConfigJson(queue: string): Promise<string> {
    this.assertOpen();
    const keys = this.tryKeys(queue);
    if (!keys) return '';
    return (await this.command(queue, () => this.connections.main.get(keys.config))) ?? '';
  }

  async setQueueConfig(queue: string, config: QueueConfig): Promise<void> {
    this.assertOpen();
    if (config.retention !== undefined) assertRetention(config.retention, 'retention');
    if (config.deadRetention !== undefined) assertRetention(config.deadRetention, 'deadRetention');
    const keys = this.keys.queue(queue);
    await this.register([queue]);
    await this.writeConfig(keys, 'set', '', config);
    this.configChanged.next(queue);
  }

  /**
   * Applies a patch atomically: reads the stored JSON, applies the patch here, and writes the result
   * only if the stored JSON is still the one read (one script call); when another process changed it
   * in between, reads and patches again. The patch is checked first: a bad one changes nothing.
   */
  async updateQueueConfig(queue: string, patch: QueueConfigPatch): Promise<QueueConfigChange> {
    this.assertOpen();
    assertConfigPatch(patch);
    const keys = this.keys.queue(queue);
    await this.register([queue]);
    for (let attempt = 1; ; attempt++) {
      const json = await this.readConfigJson(queue);
      const previous = parseConfig(json);
      const config = applyConfigPatch(previous, patch);
      if ((await this.writeConfig(keys, 'swap', json, config)) === 1) {
        this.configChanged.next(queue);
        return { previous, config };
      }
      if (attempt >= CONFIG_SWAP_ATTEMPTS) {
        throw new StoreError(
          `queue "${queue}": its configuration kept changing under ${attempt} attempts to update it`,
        );
      }
      // Another process wrote in between: back off a little (spread out) and patch its version.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * attempt * 5));
    }
  }

  private writeConfig(
    keys: QueueKeys,
    mode: 'set' | 'swap',
    expected: string,
    config: QueueConfig,
  ): Promise<number> {
    return this.int('write-config', keys, [
      mode,
      expected,
      JSON.stringify(config),
      encodeRetention(config.retention),
      encodeRetention(config.deadRetention),
    ]);
  }

  /** Queues whose configuration this store changed; their `queueConfig` readers look at once. */
  private readonly configChanged = new Subject<string>();

  /** Records a worker's presence for `ttlMs` (read by {@link workers}, e.g. in a dashboard). */
  async reportWorker(info: Omit<WorkerInfo, 'lastSeenAt'>, ttlMs: number): Promise<void> {
    this.assertOpen();
    await this.execStoreWide('report-worker', [info.id, JSON.stringify(info), Math.max(1, Math.ceil(ttlMs))]);
  }

  /** Workers whose last report has not expired, sorted by id. */
  async workers(): Promise<readonly WorkerInfo[]> {
    this.assertOpen();
    const reply = Reply.of(await this.execStoreWide('workers', [1000]), this.scripts.workers.versionedName);
    const out: WorkerInfo[] = [];
    while (!reply.done) {
      reply.str();
      const value = reply.str();
      const bar = value.indexOf('|');
      try {
        const info = JSON.parse(value.slice(bar + 1)) as Omit<WorkerInfo, 'lastSeenAt'>;
        out.push({ ...info, lastSeenAt: Number(value.slice(0, bar)) });
      } catch {
        // a report this version cannot read: skip it
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * Units of the rate limit `key` granted in the window of `periodMs` ending now (store clock), as
   * seen from `queue` (in Cluster the limit lives in the queue's slot).
   */
  /**
   * Moves `units` of `limit` recorded at Redis time `from` to a new slot `leadMs` or more after
   * Redis' now (one script call). See `Store.rebaseLimit`.
   */
  rebaseLimit(
    queue: string,
    limit: RateLimitSpec,
    from: number,
    units: number,
    leadMs = 0,
  ): Observable<RebaseResult> {
    return defer(async (): Promise<RebaseResult> => {
      this.assertOpen();
      const reply = await this.limitScript('rebase-limit', queue, limit, [
        limit.allowed,
        limit.periodMs,
        Math.floor(from),
        Math.min(limit.allowed, Math.max(1, Math.ceil(units))),
        Math.max(0, Math.ceil(leadMs)),
        Math.max(0, Math.ceil(limit.marginMs ?? 0)),
      ]);
      const at = reply.int();
      return { at, now: reply.int() };
    });
  }

  /**
   * Records up to `units` of `limit` with no jobs attached, after removing `options.refunds` (one
   * script call on the limit's log). See `Store.grantLimit`.
   */
  grantLimit(
    queue: string,
    limit: RateLimitSpec,
    units: number,
    options: GrantLimitOptions = {},
  ): Observable<LimitGrantAnswer> {
    return defer(async (): Promise<LimitGrantAnswer> => {
      this.assertOpen();
      assertGrantUnits(units);
      const more = limit.also ?? [];
      const moreKeys = await Promise.all(more.map((l) => this.sharedLimiterKey(queue, l)));
      const lead = Math.max(0, Math.ceil(options.leadMs ?? 0));
      const refunds = options.refunds ?? [];
      const reply = await this.call(
        'grant-limit',
        this.keys.queue(queue),
        [
          limit.allowed,
          limit.periodMs,
          Math.max(0, Math.ceil(limit.marginMs ?? 0)),
          units,
          lead,
          Math.max(lead, Math.ceil(options.aheadMs ?? lead)),
          options.spread ? 1 : 0,
          ...moreLimitArgs(more),
          refunds.length,
          ...refunds.flatMap((r) => [Math.floor(r.at), Math.max(1, Math.ceil(r.units))]),
        ],
        await this.sharedLimiterKey(queue, limit),
        { ...limit, key: limit.key ?? queue },
        moreKeys,
      );
      const now = reply.int();
      const retryAfterMs = reply.int();
      const slots: GrantedUnits[] = [];
      for (let i = reply.int(); i > 0; i--) slots.push({ at: reply.int(), units: reply.int() });
      return { now, slots, ...(retryAfterMs >= 0 ? { retryAfterMs } : {}) };
    });
  }

  /** Takes up to `count` permits of a cap of `max` (one script call). See `Store.acquirePermits`. */
  acquirePermits(queue: string, max: number, count: number, leaseMs: number): Observable<PermitGrant> {
    return defer(async (): Promise<PermitGrant> => {
      this.assertOpen();
      assertPermitArgs(max, count, leaseMs);
      const reply = await this.call('acquire-permits', this.keys.queue(queue), [
        max,
        count,
        Math.ceil(leaseMs),
      ]);
      const now = reply.int();
      const granted = reply.int();
      const last = reply.int();
      const ids: string[] = [];
      for (let id = last - granted + 1; id <= last; id++) ids.push(String(id));
      return { ids, now };
    });
  }

  /** Gives permits back (one `ZREM`). See `Store.releasePermits`. */
  releasePermits(queue: string, ids: readonly string[]): Observable<void> {
    return defer(async (): Promise<void> => {
      this.assertOpen();
      if (ids.length === 0) return;
      const key = this.keys.queue(queue).permits;
      await this.command(queue, () => this.connections.main.zrem(key, ...ids));
    });
  }

  /** Extends held permits (one script call). See `Store.extendPermits`. */
  extendPermits(queue: string, ids: readonly string[], leaseMs: number): Observable<readonly string[]> {
    return defer(async (): Promise<readonly string[]> => {
      this.assertOpen();
      assertPermitArgs(1, 0, leaseMs);
      if (ids.length === 0) return [];
      const raw = await this.exec('extend-permits', this.keys.queue(queue), [
        Math.ceil(leaseMs),
        ids.length,
        ...ids,
      ]);
      if (!Array.isArray(raw)) {
        throw new RedisScriptError(
          this.scripts['extend-permits'].versionedName,
          'malformed reply: not a list',
        );
      }
      return raw.map(String);
    });
  }

  /** Removes `units` of `limit` recorded at `at` (one script call). See `Store.refundLimit`. */
  refundLimit(queue: string, limit: RateLimitSpec, at: number, units: number): Observable<void> {
    return defer(async (): Promise<void> => {
      this.assertOpen();
      await this.limitScript('refund-limit', queue, limit, [
        limit.allowed,
        limit.periodMs,
        Math.floor(at),
        Math.min(limit.allowed, Math.max(1, Math.ceil(units))),
        Math.max(0, Math.ceil(limit.marginMs ?? 0)),
      ]);
    });
  }

  /**
   * Runs a script on the log of `limit` and those of its further limits (`also`): `args`, then each
   * further limit's numbers, the logs' keys as seen from `queue`.
   */
  private async limitScript(
    name: ScriptName,
    queue: string,
    limit: RateLimitSpec,
    args: readonly (string | number)[],
  ): Promise<Reply> {
    const more = limit.also ?? [];
    const moreKeys = await Promise.all(more.map((l) => this.sharedLimiterKey(queue, l)));
    return this.call(
      name,
      this.keys.queue(queue),
      [...args, ...moreLimitArgs(more)],
      await this.sharedLimiterKey(queue, limit),
      { key: limit.key ?? queue, allowed: limit.allowed, periodMs: limit.periodMs },
      moreKeys,
    );
  }

  /**
   * Pauses `limit` for `ms` from Redis' now (one script call) and publishes the pause's end to every
   * process listening with `limitPauses`. See `Store.pauseLimit`.
   */
  pauseLimit(queue: string, limit: RateLimitSpec, ms: number): Observable<LimitPause> {
    return defer(async (): Promise<LimitPause> => {
      this.assertOpen();
      const keys = this.keys.queue(queue);
      const key = limit.key ?? queue;
      const limiterKey = await this.sharedLimiterKey(queue, limit);
      const reply = await this.call(
        'pause-limit',
        keys,
        [
          limit.allowed,
          limit.periodMs,
          Math.max(0, Math.ceil(ms)),
          pauseChannel(limiterKey),
          Math.max(0, Math.ceil(limit.marginMs ?? 0)),
        ],
        limiterKey,
        { key, allowed: limit.allowed, periodMs: limit.periodMs },
      );
      const until = reply.int();
      return { until, now: reply.int() };
    });
  }

  /**
   * Sets (or, with `null`, clears) the numbers of rate-limit `key` store-wide (one script call): every
   * worker checks them from its next reserve. See `Store.setRateLimit`.
   */
  async setRateLimit(queue: string, key: string, numbers: RateLimitNumbers | null): Promise<void> {
    this.assertOpen();
    if (numbers !== null) checkLimitNumbers(numbers);
    const limiterKey = await this.sharedLimiterKey(queue, { key, allowed: 1, periodMs: 1 });
    await this.int(
      'set-limit',
      this.keys.queue(queue),
      numbers === null ? [0, 0] : [numbers.allowed, numbers.periodMs],
      limiterKey,
    );
  }

  /** The store-wide numbers of rate-limit `key`, if set. */
  async getRateLimit(queue: string, key: string): Promise<RateLimitNumbers | null> {
    this.assertOpen();
    const limiterKey = this.keys.limiter(queue, key);
    const [allowed, periodMs] = await this.command(queue, () =>
      this.connections.main.hmget(limiterKey, 'oA', 'oP'),
    );
    return allowed && periodMs ? { allowed: Number(allowed), periodMs: Number(periodMs) } : null;
  }

  /** The end of each pause of `limit` (Redis time), from any process, over pub/sub. Best effort. */
  limitPauses(queue: string, limit: RateLimitSpec): Observable<number> {
    return defer(() => {
      const channel = pauseChannel(this.limiterKey(queue, limit));
      return this.hot<number>((subscriber) => {
        const listener = this.pubsub.listen(channel, (message) => {
          const until = Number(message);
          if (Number.isFinite(until)) subscriber.next(until);
        });
        return () => {
          listener.close();
        };
      });
    });
  }

  /** Redis TIME in ms on the queue's node (one script call, routed by the queue's key). */
  storeTime(queue: string): Observable<number> {
    return defer(async () => {
      this.assertOpen();
      return this.int('store-time', this.keys.queue(queue), []);
    });
  }

  async rateLimitUsage(queue: string, key: string, periodMs: number): Promise<number> {
    this.assertOpen();
    const keys = this.keys.queue(queue);
    return this.int('limit-usage', keys, [Math.max(0, periodMs)], this.keys.limiter(queue, key));
  }

  /**
   * Closes the connections the store opened (not a client it was given) and completes every
   * Observable it handed out. Calls made afterwards fail with `StoreClosedError`.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed$.next();
      this.closed$.complete();
      const readerConnections = [...this.readers.values()].map((r) => r.close());
      this.readers.clear();
      await Promise.all(
        readerConnections.map((c) =>
          c === undefined ? Promise.resolve() : this.connections.release(c, true),
        ),
      );
      await this.connections.close();
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ internals

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError('RedisStore');
  }

  /** The queue's keys, or undefined for a name that cannot be a queue (it has no jobs). */
  private tryKeys(queue: string): QueueKeys | undefined {
    return isQueueName(queue) ? this.keys.queue(queue) : undefined;
  }

  private exec(
    name: ScriptName,
    keys: QueueKeys,
    args: readonly (string | number)[],
    limiterKey?: string,
    limit?: { key: string; allowed: number; periodMs: number },
    moreKeys?: readonly string[],
    replicated?: ReplicaWait,
    publishesFirst = false,
  ): Promise<unknown> {
    const script = this.scripts[name];
    return execScript(
      this.connections.main,
      script,
      scriptKeys(script, queueKeyResolver(keys, limiterKey)),
      args,
      {
        queue: keys.queue,
        ...(limit ? { limit } : {}),
      },
      moreKeys,
      this.clusterRetryMs,
      replicated,
      publishesFirst,
    );
  }

  /** Runs a script and reads its array answer (a malformed one throws a `RedisScriptError`). */
  private async call(
    name: ScriptName,
    keys: QueueKeys,
    args: readonly (string | number)[],
    limiterKey?: string,
    limit?: { key: string; allowed: number; periodMs: number },
    moreKeys?: readonly string[],
  ): Promise<Reply> {
    const raw = await this.exec(name, keys, args, limiterKey, limit, moreKeys);
    return Reply.of(raw, this.scripts[name].versionedName, keys.queue);
  }

  /** Runs a script that answers one integer (a malformed answer throws a `RedisScriptError`). */
  private async int(
    name: ScriptName,
    keys: QueueKeys,
    args: readonly (string | number)[],
    limiterKey?: string,
  ): Promise<number> {
    const raw = await this.exec(name, keys, args, limiterKey);
    return readInt(raw, this.scripts[name].versionedName, keys.queue);
  }

  /** Runs a script on the store-wide keys (the worker registry). */
  private execStoreWide(name: ScriptName, args: readonly (string | number)[]): Promise<unknown> {
    const script = this.scripts[name];
    const resolve = (key: ScriptKeyName): string => {
      if (key === 'workerInfo') return this.keys.workerInfo;
      if (key === 'workerExpiry') return this.keys.workerExpiry;
      throw new RedisScriptError(script.versionedName, `malformed arguments: needs queue key ${key}`);
    };
    return execScript(
      this.connections.main,
      script,
      scriptKeys(script, resolve),
      args,
      { queue: '' },
      [],
      this.clusterRetryMs,
    );
  }

  private async command<R>(queue: string | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await retryClusterRefusals(fn, this.clusterRetryMs);
    } catch (error) {
      throw toStoreError(error, queue);
    }
  }

  /**
   * Adds queue names to the set `queues()` reads, once per name and process: on enqueue, reserve,
   * stats and administration, as `MemoryStore` registers a queue on first use.
   */
  private async register(queues: readonly string[]): Promise<void> {
    const fresh = queues.filter((q) => !this.registered.has(q));
    if (fresh.length === 0) return;
    await this.command(fresh[0], () => this.connections.main.sadd(this.keys.queues, ...fresh));
    for (const q of fresh) this.registered.add(q);
  }

  private limiterKey(queue: string, limit: RateLimitSpec): string {
    if (!Number.isInteger(limit.allowed) || limit.allowed < 1) {
      throw new InvalidArgumentError(`allowed must be an integer ≥ 1, got ${String(limit.allowed)}`);
    }
    if (!Number.isFinite(limit.periodMs) || limit.periodMs <= 0) {
      throw new InvalidArgumentError(`periodMs must be > 0, got ${String(limit.periodMs)}`);
    }
    const limitKey = limit.key ?? queue;
    if (this.connections.cluster) {
      const tag = this.keys.queue(queue).tag;
      const known = this.limitTags.get(limitKey);
      if (known !== undefined && known !== tag) {
        throw new InvalidArgumentError(
          `rate limit "${limitKey}" is shared by queues with different hash tags ("${known}", "${tag}"): ` +
            'in Redis Cluster a shared limit needs its queues in one slot; give them one hash tag (option hashTag)',
        );
      }
      this.limitTags.set(limitKey, tag);
    }
    return this.keys.limiter(queue, limitKey);
  }

  /**
   * The limit's log key, once its hash tag is checked store-wide (Cluster): the first process to
   * use a limit key records the tag its queues live under, and every process refuses a queue with
   * another tag, so a limit is never split over slots. Checked once per key and process.
   */
  private async sharedLimiterKey(queue: string, limit: RateLimitSpec): Promise<string> {
    if (limit.group !== undefined) return this.groupLimiterKey(queue, limit.group); // the queue's own slot
    const key = this.limiterKey(queue, limit); // this process's own check first
    const limitKey = limit.key ?? queue;
    if (!this.connections.cluster || this.limitTagsChecked.has(limitKey)) return key;
    const tag = this.keys.queue(queue).tag;
    const registry = this.keys.limitTags;
    const main = this.connections.main;
    await this.command(queue, () => main.hsetnx(registry, limitKey, tag));
    const known = await this.command(queue, () => main.hget(registry, limitKey));
    if (known !== null && known !== tag) {
      this.limitTags.set(limitKey, known); // this process now knows the key's tag too
      throw new InvalidArgumentError(
        `rate limit "${limitKey}" is used by queues under hash tag "${known}" (another process) and "${tag}" ` +
          '(this one): in Redis Cluster a shared limit needs its queues in one slot; give them one hash tag ' +
          `(option hashTag), or, after moving every queue of the limit, delete field "${limitKey}" of ${registry}`,
      );
    }
    this.limitTagsChecked.add(limitKey);
    return key;
  }

  /** Dead-letters leased jobs whose records could not be decoded (a second call, only when it happens). */
  private async rejectMalformed(
    keys: QueueKeys,
    token: string,
    jobs: readonly { id: string; reason: string }[],
  ): Promise<void> {
    const args: (string | number)[] = [
      keys.jobPrefix,
      this.eventsMaxLen,
      keys.readyPrefix,
      keys.groupPrefix,
      jobs.length,
    ];
    for (const j of jobs) args.push(j.id, token, j.reason);
    try {
      await this.exec('reject', keys, args);
    } catch (error) {
      // Still leased: lease recovery returns them and the next reserve rejects them again.
      this.logger.warn('dead-lettering malformed jobs failed', { queue: keys.queue, error: String(error) });
    }
  }

  private async readSettings(keys: QueueKeys): Promise<VersionedSettings> {
    const [paused, concurrency, version] = await this.command(keys.queue, () =>
      this.connections.main.hmget(keys.settings, 'p', 'c', 'v'),
    );
    return readSettings(paused, concurrency, version);
  }

  private async changeSettings(
    queue: string,
    op: 'pause' | 'resume' | 'concurrency',
    value: string,
  ): Promise<void> {
    this.assertOpen();
    const keys = this.keys.queue(queue);
    await this.register([queue]);
    await this.exec('settings', keys, [keys.settingsChannel, keys.wakeChannel, op, value]);
  }

  private reader(keys: QueueKeys): StreamReader {
    let reader = this.readers.get(keys.queue);
    if (!reader) {
      reader = new StreamReader(
        keys.events,
        () => this.connections.duplicate(`events:${keys.queue}`, true),
        this.logger,
      );
      this.readers.set(keys.queue, reader);
    }
    return reader;
  }

  /** A pub/sub channel of the queue as an Observable of messages. */
  private channel<R>(
    queue: string,
    pick: (keys: QueueKeys) => string,
    map: (message: string) => R,
  ): Observable<R> {
    return this.hot<R>((subscriber) => {
      const listener = this.pubsub.listen(pick(this.keys.queue(queue)), (message) => {
        subscriber.next(map(message));
      });
      return () => {
        listener.close();
      };
    });
  }

  /** A hot source that completes when the store closes (and at once if it already has). */
  private hot<R>(subscribe: (subscriber: Subscriber<R>) => () => void): Observable<R> {
    return defer(() => {
      if (this.closing) return EMPTY;
      return new Observable<R>((subscriber) => subscribe(subscriber)).pipe(takeUntil(this.closed$));
    });
  }
}

/** Message on the store channel naming a queue that was obliterated. */
const OBLITERATED = 'obliterated:';
/** Length of the job-record suffix (`j:`) after a queue's base. */
const SUFFIX_JOB_LENGTH = 2;

/** Times `updateQueueConfig` reads and patches again when other processes keep writing in between. */
const CONFIG_SWAP_ATTEMPTS = 50;

/** A stored configuration's JSON as a configuration (`''`: none stored). */
function parseConfig(json: string): QueueConfig {
  if (json === '') return {};
  try {
    const parsed = JSON.parse(json) as unknown;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw new StoreError(`the stored queue configuration is not a JSON object: ${json.slice(0, 80)}`);
}

function isQueueName(queue: string): boolean {
  try {
    assertQueueName(queue);
    return true;
  } catch {
    return false;
  }
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got ${value}`);
  return value;
}

function nonNegativeInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0)
    throw new InvalidArgumentError(`${name} must be an integer ≥ 0, got ${value}`);
  return value;
}

/** The pub/sub channel a rate limit's pauses are published on. */
function pauseChannel(limiterKey: string): string {
  return `${limiterKey}:paused`;
}

/** The further limits of a reserve or move, as the scripts take them: their count, then allowed, window, margin each. */
function moreLimitArgs(more: readonly RateLimitSpec[]): number[] {
  const args = [more.length];
  for (const l of more) args.push(l.allowed, l.periodMs, Math.max(0, Math.ceil(l.marginMs ?? 0)));
  return args;
}

/** Whole numbers of a limit set store-wide: allowed ≥ 1, periodMs ≥ 1. */
function checkLimitNumbers(numbers: RateLimitNumbers): void {
  if (!Number.isInteger(numbers.allowed) || numbers.allowed < 1) {
    throw new InvalidArgumentError(`allowed must be an integer ≥ 1, got ${String(numbers.allowed)}`);
  }
  if (!Number.isInteger(numbers.periodMs) || numbers.periodMs < 1) {
    throw new InvalidArgumentError(`periodMs must be an integer ≥ 1, got ${String(numbers.periodMs)}`);
  }
}

/** ARGV of a reserve's group rate limit: allowed, periodMs, marginMs (0, 0, 0: none). */
function groupLimitArgs(limit: GroupRateLimit | undefined): number[] {
  if (!limit) return [0, 0, 0];
  if (!Number.isInteger(limit.allowed) || limit.allowed < 1) {
    throw new InvalidArgumentError(
      `groups.rateLimit.allowed must be an integer ≥ 1, got ${String(limit.allowed)}`,
    );
  }
  if (!Number.isFinite(limit.periodMs) || limit.periodMs <= 0) {
    throw new InvalidArgumentError(`groups.rateLimit.periodMs must be > 0, got ${String(limit.periodMs)}`);
  }
  return [limit.allowed, Math.ceil(limit.periodMs), Math.max(0, Math.ceil(limit.marginMs ?? 0))];
}

/**
 * `defer(async () => …)` with one subscription instead of two: `run` is called on each subscription,
 * its value emitted and the observable completed (its rejection: the error). For the call a worker
 * makes for every job of a lightly loaded queue (`settle`), where defer's inner subscription to the
 * promise was one more subscription and a few objects more per call.
 */
function eachCall<T>(run: () => Promise<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    run().then(
      (value) => {
        subscriber.next(value);
        subscriber.complete();
      },
      (error: unknown) => {
        subscriber.error(error);
      },
    );
  });
}

/**
 * The arguments of an enqueue call before its jobs (`lua/enqueue-5.lua`): the queue's prefixes and
 * channels, then the number of jobs that follow.
 */
export function enqueueArgs(keys: QueueKeys, count: number): (string | number)[] {
  return [
    keys.jobPrefix,
    keys.readyPrefix,
    keys.uniquePrefix,
    keys.wakeChannel,
    keys.groupPrefix,
    keys.handoffPrefix,
    count,
  ];
}

/** The lease of a reserve's or a handoff's jobs: granted at store time `now` for `leaseMs`. */
function leaseOf(token: string, now: number, leaseMs: number, workerId?: string): ReservedJob['lease'] {
  return { token, expiresAt: now + leaseMs, startedAt: now, ...(workerId ? { workerId } : {}) };
}

/**
 * Reads the `count` records of a handoff message: each an id, then its fields as `HGETALL` answers
 * them (`readJobFields`).
 */
function readHandoffRecords(reply: Reply, count: number): { ids: string[]; fields: JobFields[] } {
  const ids: string[] = [];
  const fields: JobFields[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(reply.str());
    fields.push(readJobFields(reply));
  }
  return { ids, fields };
}

/**
 * A settlement applied with no new run time (every completion): `{ id, applied: true, at }`, made by
 * `new` for the reason `LeasedJob` is (codec.ts).
 */
class Applied {
  readonly id: string;
  readonly applied: true;
  readonly at: number;

  constructor(id: string, at: number) {
    this.id = id;
    this.applied = true;
    this.at = at;
  }
}

interface Decoded<T> {
  jobs: ReservedJob<T>[];
  malformed: RejectedJob[];
  wellFormed: boolean[];
}

/**
 * The jobs of one lease, decoded one by one by `decode` (job `i` of `ids`: the job, or why it
 * cannot be one), and the malformed ones (`wellFormed` tells which, in order). Keeps each job's
 * settle hint (`hintOf`, when there are hints) in `hints` for its settle.
 */
function decodeJobs<T>(
  ids: readonly string[],
  lease: ReservedJob['lease'],
  hints: SettleHints,
  decode: (i: number, id: string) => ReservedJob<T> | string,
  hintOf?: (i: number) => string,
): Decoded<T> {
  // Made at their full size at once (a list grown by push is copied each time it outgrows itself).
  const jobs = new Array<ReservedJob<T>>(ids.length);
  const malformed: RejectedJob[] = [];
  const wellFormed = new Array<boolean>(ids.length);
  let n = 0;
  let odd: Map<string, string> | undefined;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as string;
    const decoded = decode(i, id);
    const ok = typeof decoded !== 'string';
    wellFormed[i] = ok;
    if (ok) {
      jobs[n++] = decoded;
      const hint = hintOf ? hintOf(i) : DEFAULT_HINT;
      if (hint !== DEFAULT_HINT) (odd ??= new Map()).set(id, hint);
    } else malformed.push({ id, reason: decoded });
  }
  jobs.length = n;
  hints.remember(lease.token, n, odd);
  return { jobs, malformed, wellFormed };
}

/**
 * The jobs of a reserve's compact form: `parts` holds 4 strings a job, checked by
 * `readLeasedRecords` (`c`, created-at, `d`, data). No job of it has a settle hint.
 */
function decodeCompact<T>(
  queue: string,
  ids: readonly string[],
  parts: readonly string[],
  lease: ReservedJob['lease'],
  hints: SettleHints,
): Decoded<T> {
  return decodeJobs<T>(ids, lease, hints, (i, id) =>
    toCompactJob<T>(queue, id, parts[4 * i + 1] as string, parts[4 * i + 3] as string, lease),
  );
}

/** The jobs of leased records read as fields (a reserve's other form, a handoff, a read again). */
function decodeLeased<T>(
  queue: string,
  ids: readonly string[],
  fields: readonly JobFields[],
  lease: ReservedJob['lease'],
  hints: SettleHints,
): Decoded<T> {
  return decodeJobs<T>(
    ids,
    lease,
    hints,
    (i, id) => toReservedJob<T>(queue, id, fields[i] as JobFields, lease),
    (i) => settleHint(fields[i] as JobFields),
  );
}

import { Counter, Gauge, Histogram, type OpenMetricsContentType, Registry } from 'prom-client';
import { Subscription } from 'rxjs';
import {
  InvalidArgumentError,
  JOB_STATES,
  silentLogger,
  type Logger,
  type QueueStats,
  type Store,
  type Telemetry,
} from '@sluice/core';
import { DEFAULT_GROUP_SCAN_LIMIT, scanGroups, type GroupScan } from './groups';

/** A prom-client registry in either exposition format. */
export type MetricsRegistry = Registry | Registry<OpenMetricsContentType>;

export interface MetricsOptions {
  /**
   * The hub your `Worker` emits on (`new Worker({ telemetry })`): feeds the counters and histograms.
   * They count what *this process* saw; run `createMetrics` in every worker process (or scrape each).
   */
  readonly telemetry?: Telemetry;
  /** Read at scrape time for the queue-depth gauges, which are global (every process's jobs). */
  readonly store?: Store;
  /** Where the metrics are registered. Default: a new `Registry`. */
  readonly registry?: MetricsRegistry;
  /** Queues whose depth is collected. Default: every queue the store knows (`store.queues()`). */
  readonly queues?: readonly string[];
  /** Buckets of `sluice_job_duration_seconds`. */
  readonly durationBuckets?: readonly number[];
  /** Buckets of `sluice_job_wait_seconds`. */
  readonly waitBuckets?: readonly number[];
  /**
   * A store snapshot is reused for this long, so several scrapers (or one scraper hitting a slow
   * store) cost one round of `stats` calls. Default `1000`.
   */
  readonly cacheMs?: number;
  /** Reports store errors during a scrape. Default: silent (the error counter still counts them). */
  readonly logger?: Logger;
  /**
   * How many of each queue's busiest groups (most ready and active jobs) `sluice_group_jobs` labels
   * by name; the rest are summed in `sluice_other_groups_jobs`. This bounds the group series to
   * `2 × topGroups` per queue whatever the number of groups. Default `20`; `0` names none.
   */
  readonly topGroups?: number;
  /**
   * Most groups of a queue read per scrape (`store.listGroups`, in pages of 1,000, by name) to find
   * the busiest. Default `10000`; with more, the first ones by name are counted and
   * `sluice_groups_scan_complete` is 0.
   */
  readonly groupScanLimit?: number;
}

/** What {@link createMetrics} returns. */
export interface Metrics {
  readonly registry: MetricsRegistry;
  /** The exposition text (what `GET /metrics` answers). */
  metrics(): Promise<string>;
  /** The `Content-Type` of {@link metrics}. */
  readonly contentType: string;
  /** Stops listening to telemetry and removes every metric this created from the registry. */
  close(): void;
}

/** The metric names, for dashboards and alert rules. */
export const METRIC_NAMES = {
  jobsTotal: 'sluice_jobs_total',
  jobDuration: 'sluice_job_duration_seconds',
  jobWait: 'sluice_job_wait_seconds',
  enqueuedTotal: 'sluice_jobs_enqueued_total',
  rateLimitedTotal: 'sluice_rate_limited_total',
  rejectedTotal: 'sluice_jobs_rejected_total',
  queueJobs: 'sluice_queue_jobs',
  deadLetterJobs: 'sluice_dead_letter_jobs',
  queuePaused: 'sluice_queue_paused',
  workers: 'sluice_workers',
  scrapeErrors: 'sluice_store_scrape_errors_total',
  startLateness: 'sluice_start_lateness_seconds',
  startMoves: 'sluice_start_moves_total',
  startLead: 'sluice_start_lead_seconds',
  startLeadCapped: 'sluice_start_lead_capped',
  limitAhead: 'sluice_limit_ahead_jobs',
  limitPauses: 'sluice_limit_pauses_total',
  sendLateness: 'sluice_send_lateness_seconds',
  sendCorrections: 'sluice_send_corrections_total',
  limitMargin: 'sluice_limit_margin_seconds',
  limitMarginCapped: 'sluice_limit_margin_capped',
  groupJobs: 'sluice_group_jobs',
  otherGroupsJobs: 'sluice_other_groups_jobs',
  groups: 'sluice_groups',
  groupsPaused: 'sluice_groups_paused',
  groupsScanComplete: 'sluice_groups_scan_complete',
} as const;

/** Default of `MetricsOptions.topGroups`. */
export const DEFAULT_METRICS_TOP_GROUPS = 20;
/** The group gauges' `state` label: ready jobs, and slots held (running jobs, retries keeping theirs). */
const GROUP_STATES = ['ready', 'active'] as const;

const LATENESS_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5];

const DEFAULT_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const DEFAULT_WAIT_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

interface Snapshot {
  readonly stats: readonly QueueStats[];
  readonly workers: number | undefined;
  /** By queue; absent for queues whose groups could not be read (or a store without groups). */
  readonly groups: ReadonlyMap<string, GroupScan>;
}

/**
 * Prometheus metrics for Sluice, with prom-client: counters and histograms from the telemetry hub,
 * and gauges read from the store when Prometheus scrapes.
 *
 * | metric | type | labels | from |
 * |---|---|---|---|
 * | `sluice_jobs_total` | counter | `queue`, `status` (`completed`, `retrying`, `dead`, `cancelled`, `snoozed`) | telemetry `stop` |
 * | `sluice_job_duration_seconds` | histogram | `queue`, `status` | `stop.durationMs` (handler time) |
 * | `sluice_job_wait_seconds` | histogram | `queue` | `start.waitMs` (due → started), per handler call |
 * | `sluice_jobs_enqueued_total` | counter | `queue` | `enqueue` (new jobs, not duplicates) |
 * | `sluice_rate_limited_total` | counter | `queue`, `key` | `rate-limited` (reserves held back) |
 * | `sluice_start_lateness_seconds` | histogram | `queue`, `key` | `start-timing` `started`: how late limited handlers started after their slot surely came |
 * | `sluice_start_moves_total` | counter | `queue`, `key`, `outcome` (`moved`, `handed-back`) | `start-timing`: units that missed their margin |
 * | `sluice_start_lead_seconds` | gauge | `queue`, `key` | `start-timing` `lead`: how far ahead new slots go |
 * | `sluice_start_lead_capped` | gauge | `queue`, `key` | 1 while the lead is at its cap (`maxLeadMs`): raise it, or unload the worker |
 * | `sluice_limit_pauses_total` | counter | `queue`, `key` | `start-timing` `paused`: pauses after a provider refused (each worker counts the pauses it saw) |
 * | `sluice_send_lateness_seconds` | histogram | `queue`, `key` | `start-timing` `sent`: how late handlers' requests left after their slots (`ctx.limit.sent()`) |
 * | `sluice_limit_margin_seconds` | gauge | `queue`, `key` | `start-timing` `margin`: the margin the worker asks the store to count windows with |
 * | `sluice_limit_margin_capped` | gauge | `queue`, `key` | 1 while the margin is at its cap (`maxMarginMs`): requests leave later than it allows for |
 * | `sluice_jobs_rejected_total` | counter | `queue` | `rejected` (malformed jobs dead-lettered) |
 * | `sluice_queue_jobs` | gauge | `queue`, `state` | `store.stats` at scrape time |
 * | `sluice_dead_letter_jobs` | gauge | `queue` | `store.stats` at scrape time |
 * | `sluice_queue_paused` | gauge | `queue` | `store.stats` at scrape time (1 = paused) |
 * | `sluice_group_jobs` | gauge | `queue`, `group`, `state` (`ready`, `active`) | `store.listGroups` at scrape time: the `topGroups` (default 20) busiest groups of each queue only |
 * | `sluice_other_groups_jobs` | gauge | `queue`, `state` | the same, summed over the queue's other groups |
 * | `sluice_groups` | gauge | `queue` | groups holding a ready, running or retrying job, or paused |
 * | `sluice_groups_paused` | gauge | `queue` | paused groups |
 * | `sluice_groups_scan_complete` | gauge | `queue` | 0 when the queue has more than `groupScanLimit` groups (the group gauges count the first ones by name) |
 * | `sluice_workers` | gauge | — | `store.workers()` at scrape time, if the store reports workers |
 * | `sluice_store_scrape_errors_total` | counter | — | store calls that failed during a scrape |
 *
 * ## Example
 * ```ts
 * import { createServer } from 'node:http';
 * import { MemoryStore, Telemetry, Worker } from '@sluice/core';
 * import { createMetrics } from '@sluice/dashboard';
 *
 * const store = new MemoryStore();
 * const telemetry = new Telemetry();
 * const worker = new Worker({ store, telemetry, pipelines: [emails] }).start();
 * const metrics = createMetrics({ telemetry, store });
 *
 * createServer(async (req, res) => {
 *   res.setHeader('Content-Type', metrics.contentType);
 *   res.end(await metrics.metrics());
 * }).listen(9464);
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry: MetricsRegistry = options.registry ?? new Registry();
  const registers = [registry];
  const store = options.store;
  const logger = options.logger ?? silentLogger;
  const cacheMs = options.cacheMs ?? 1000;
  const topGroups = options.topGroups ?? DEFAULT_METRICS_TOP_GROUPS;
  const groupScanLimit = options.groupScanLimit ?? DEFAULT_GROUP_SCAN_LIMIT;
  if (!Number.isInteger(topGroups) || topGroups < 0) {
    throw new InvalidArgumentError(`topGroups must be an integer ≥ 0, got ${topGroups}`);
  }
  if (!Number.isInteger(groupScanLimit) || groupScanLimit < 1) {
    throw new InvalidArgumentError(`groupScanLimit must be an integer ≥ 1, got ${groupScanLimit}`);
  }

  const jobsTotal = new Counter({
    name: METRIC_NAMES.jobsTotal,
    help: 'Jobs that finished an attempt, by outcome (completed, retrying, dead, cancelled, snoozed)',
    labelNames: ['queue', 'status'] as const,
    registers,
  });
  const duration = new Histogram({
    name: METRIC_NAMES.jobDuration,
    help: 'Handler time of a job attempt, in seconds',
    labelNames: ['queue', 'status'] as const,
    buckets: [...(options.durationBuckets ?? DEFAULT_DURATION_BUCKETS)],
    registers,
  });
  const wait = new Histogram({
    name: METRIC_NAMES.jobWait,
    help: 'Time from a job being due to its start, in seconds (first job of each handler call)',
    labelNames: ['queue'] as const,
    buckets: [...(options.waitBuckets ?? DEFAULT_WAIT_BUCKETS)],
    registers,
  });
  const enqueued = new Counter({
    name: METRIC_NAMES.enqueuedTotal,
    help: 'Jobs added (duplicates of existing jobs are not counted)',
    labelNames: ['queue'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: METRIC_NAMES.rateLimitedTotal,
    help: 'Reserves held back by a rate limit',
    labelNames: ['queue', 'key'] as const,
    registers,
  });
  const rejected = new Counter({
    name: METRIC_NAMES.rejectedTotal,
    help: 'Malformed jobs dead-lettered at reserve',
    labelNames: ['queue'] as const,
    registers,
  });
  const scrapeErrors = new Counter({
    name: METRIC_NAMES.scrapeErrors,
    help: 'Store calls that failed while collecting the queue gauges',
    registers,
    // Read after this scrape's store calls, so their failures are in the same scrape.
    collect: async () => {
      await snapshot();
    },
  });

  // The gauges of one scrape collect at the same time and share one read, still in flight; a settled
  // read is reused for `cacheMs`.
  let cached: { at: number; settled: boolean; snapshot: Promise<Snapshot> } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const now = Date.now();
    if (!cached || (cached.settled && now - cached.at >= cacheMs)) {
      const entry = { at: now, settled: false, snapshot: readSnapshot() };
      void entry.snapshot.finally(() => {
        entry.settled = true;
      });
      cached = entry;
    }
    return cached.snapshot;
  };
  const readSnapshot = async (): Promise<Snapshot> => {
    if (!store) return { stats: [], workers: undefined, groups: new Map() };
    /** Runs one store call; a failure (even a synchronous throw) is counted and logged, never thrown. */
    const attempt = async <R>(what: string, call: () => Promise<R>): Promise<R | undefined> => {
      try {
        return await call();
      } catch (err) {
        scrapeErrors.inc();
        logger.warn(`metrics: ${what} failed`, { error: err instanceof Error ? err.message : String(err) });
        return undefined;
      }
    };
    const listWorkers = store.workers?.bind(store);
    const queues = options.queues ?? (await attempt('store.queues()', () => store.queues())) ?? [];
    const canListGroups = store.listGroups !== undefined;
    const [stats, workers, groups] = await Promise.all([
      Promise.all(queues.map((q) => attempt(`store.stats(${q})`, () => store.stats(q)))),
      listWorkers ? attempt('store.workers()', listWorkers) : Promise.resolve(undefined),
      Promise.all(
        queues.map(async (q) =>
          canListGroups
            ? ([
                q,
                await attempt(`store.listGroups(${q})`, () => scanGroups(store, q, groupScanLimit)),
              ] as const)
            : ([q, undefined] as const),
        ),
      ),
    ]);
    const byQueue = new Map<string, GroupScan>();
    for (const [q, scan] of groups) if (scan) byQueue.set(q, scan);
    return { stats: stats.filter((s) => s !== undefined), workers: workers?.length, groups: byQueue };
  };

  const queueJobs = new Gauge({
    name: METRIC_NAMES.queueJobs,
    help: 'Jobs in each state, read from the store at scrape time',
    labelNames: ['queue', 'state'] as const,
    registers,
    collect: async () => {
      const { stats } = await snapshot();
      queueJobs.reset();
      for (const s of stats) {
        for (const state of JOB_STATES) queueJobs.set({ queue: s.queue, state }, s.counts[state]);
      }
    },
  });
  const deadLetter = new Gauge({
    name: METRIC_NAMES.deadLetterJobs,
    help: 'Jobs in the dead-letter queue, read from the store at scrape time',
    labelNames: ['queue'] as const,
    registers,
    collect: async () => {
      const { stats } = await snapshot();
      deadLetter.reset();
      for (const s of stats) deadLetter.set({ queue: s.queue }, s.counts.dead);
    },
  });
  const paused = new Gauge({
    name: METRIC_NAMES.queuePaused,
    help: '1 when the queue is paused, read from the store at scrape time',
    labelNames: ['queue'] as const,
    registers,
    collect: async () => {
      const { stats } = await snapshot();
      paused.reset();
      for (const s of stats) paused.set({ queue: s.queue }, s.paused ? 1 : 0);
    },
  });
  const groupJobs = new Gauge({
    name: METRIC_NAMES.groupJobs,
    help: `Ready jobs and slots held (running, retrying) of a queue's busiest groups, at most ${topGroups} groups per queue (the rest in ${METRIC_NAMES.otherGroupsJobs}), read from the store at scrape time`,
    labelNames: ['queue', 'group', 'state'] as const,
    registers,
    collect: async () => {
      const snap = await snapshot();
      groupJobs.reset();
      for (const [queue, scan] of snap.groups) {
        for (const g of scan.groups.slice(0, topGroups)) {
          groupJobs.set({ queue, group: g.group, state: 'ready' }, g.ready);
          groupJobs.set({ queue, group: g.group, state: 'active' }, g.active);
        }
      }
    },
  });
  const otherGroupsJobs = new Gauge({
    name: METRIC_NAMES.otherGroupsJobs,
    help: `Ready jobs and slots held (running, retrying) of a queue's groups beyond the ${topGroups} busiest, summed, read from the store at scrape time`,
    labelNames: ['queue', 'state'] as const,
    registers,
    collect: async () => {
      const snap = await snapshot();
      otherGroupsJobs.reset();
      for (const [queue, scan] of snap.groups) {
        const rest = scan.groups.slice(topGroups);
        for (const state of GROUP_STATES) {
          otherGroupsJobs.set(
            { queue, state },
            rest.reduce((sum, g) => sum + g[state], 0),
          );
        }
      }
    },
  });
  const groupCount = new Gauge({
    name: METRIC_NAMES.groups,
    help: `Groups of a queue holding a ready, running or retrying job, or paused (at most ${groupScanLimit} counted), read from the store at scrape time`,
    labelNames: ['queue'] as const,
    registers,
    collect: async () => {
      const snap = await snapshot();
      groupCount.reset();
      for (const [queue, scan] of snap.groups) groupCount.set({ queue }, scan.groups.length);
    },
  });
  const groupsPaused = new Gauge({
    name: METRIC_NAMES.groupsPaused,
    help: 'Paused groups of a queue (store.pauseGroup), read from the store at scrape time',
    labelNames: ['queue'] as const,
    registers,
    collect: async () => {
      const snap = await snapshot();
      groupsPaused.reset();
      for (const [queue, scan] of snap.groups) {
        groupsPaused.set({ queue }, scan.groups.filter((g) => g.paused).length);
      }
    },
  });
  const groupsScanComplete = new Gauge({
    name: METRIC_NAMES.groupsScanComplete,
    help: `1 when every group of the queue was read; 0 when it has more than ${groupScanLimit} (the group gauges count the first ones by name)`,
    labelNames: ['queue'] as const,
    registers,
    collect: async () => {
      const snap = await snapshot();
      groupsScanComplete.reset();
      for (const [queue, scan] of snap.groups) groupsScanComplete.set({ queue }, scan.complete ? 1 : 0);
    },
  });
  const workers = new Gauge({
    name: METRIC_NAMES.workers,
    help: 'Live workers reporting to the store',
    registers,
    collect: async () => {
      const snap = await snapshot();
      workers.reset();
      if (snap.workers !== undefined) workers.set(snap.workers);
    },
  });

  const lateness = new Histogram({
    name: METRIC_NAMES.startLateness,
    help: 'How late rate-limited handlers started after their slot had surely come, in seconds',
    labelNames: ['queue', 'key'] as const,
    buckets: LATENESS_BUCKETS,
    registers,
  });
  const moves = new Counter({
    name: METRIC_NAMES.startMoves,
    help: 'Rate-limited starts that missed their margin: moved to a new slot, or handed back',
    labelNames: ['queue', 'key', 'outcome'] as const,
    registers,
  });
  const pauses = new Counter({
    name: METRIC_NAMES.limitPauses,
    help: 'Rate-limit pauses a worker took part in after a provider refused a call (retryAfter)',
    labelNames: ['queue', 'key'] as const,
    registers,
  });
  const lead = new Gauge({
    name: METRIC_NAMES.startLead,
    help: 'How far ahead of the store clock new rate-limit slots are placed, in seconds',
    labelNames: ['queue', 'key'] as const,
    registers,
  });
  const leadCapped = new Gauge({
    name: METRIC_NAMES.startLeadCapped,
    help: '1 while the rate-limit lead is at its cap (answers slower than maxLeadMs)',
    labelNames: ['queue', 'key'] as const,
    registers,
  });

  const ahead = new Gauge({
    name: METRIC_NAMES.limitAhead,
    help: 'Jobs a rate limit may grant ahead of their slots (fewer, down to 0, while jobs whose slots came wait for a busy handler)',
    labelNames: ['queue', 'key'] as const,
    registers,
  });

  const sendLateness = new Histogram({
    name: METRIC_NAMES.sendLateness,
    help: 'How late rate-limited handlers sent their requests after their slots (ctx.limit.sent()), in seconds',
    labelNames: ['queue', 'key'] as const,
    buckets: LATENESS_BUCKETS,
    registers,
  });
  const corrections = new Counter({
    name: METRIC_NAMES.sendCorrections,
    help: 'Requests that left later than the margin after their slots, moved in the rate-limit log to when they left (outcome moved or failed)',
    labelNames: ['queue', 'key', 'outcome'] as const,
    registers,
  });
  const margin = new Gauge({
    name: METRIC_NAMES.limitMargin,
    help: 'The margin a worker asks the store to widen rate-limit windows by, in seconds',
    labelNames: ['queue', 'key'] as const,
    registers,
  });
  const marginCapped = new Gauge({
    name: METRIC_NAMES.limitMarginCapped,
    help: '1 while the rate-limit margin is at its cap (requests leave later than maxMarginMs allows for)',
    labelNames: ['queue', 'key'] as const,
    registers,
  });

  const subscription = new Subscription();
  if (options.telemetry) {
    subscription.add(
      options.telemetry.events$.subscribe((event) => {
        switch (event.type) {
          case 'stop': {
            const labels = { queue: event.queue, status: event.kind };
            jobsTotal.inc(labels);
            duration.observe(labels, Math.max(0, event.durationMs) / 1000);
            break;
          }
          case 'start':
            wait.observe({ queue: event.queue }, Math.max(0, event.waitMs) / 1000);
            break;
          case 'enqueue':
            if (event.count > event.duplicates) {
              enqueued.inc({ queue: event.queue }, event.count - event.duplicates);
            }
            break;
          case 'rate-limited':
            rateLimited.inc({ queue: event.queue, key: event.key });
            break;
          case 'rejected':
            rejected.inc({ queue: event.queue });
            break;
          case 'start-timing': {
            const labels = { queue: event.queue, key: event.key };
            if (event.kind === 'started') lateness.observe(labels, Math.max(0, event.lateMs) / 1000);
            else if (event.kind === 'paused') pauses.inc(labels);
            else if (event.kind === 'lead') {
              lead.set(labels, event.leadMs / 1000);
              leadCapped.set(labels, event.capped ? 1 : 0);
            } else if (event.kind === 'sent') sendLateness.observe(labels, Math.max(0, event.lateMs) / 1000);
            else if (event.kind === 'corrected') {
              corrections.inc({ ...labels, outcome: event.reason === undefined ? 'moved' : 'failed' });
            } else if (event.kind === 'margin') {
              margin.set(labels, event.marginMs / 1000);
              marginCapped.set(labels, event.marginCapped ? 1 : 0);
            } else if (event.kind === 'ahead') ahead.set(labels, event.aheadJobs ?? 0);
            else moves.inc({ ...labels, outcome: event.kind });
            break;
          }
          case 'reserve':
          case 'exception':
          case 'settle-refused':
          case 'demand':
          case 'action':
            break;
        }
      }),
    );
  }

  const names = Object.values(METRIC_NAMES);
  return {
    registry,
    metrics: () => registry.metrics(),
    get contentType() {
      return registry.contentType;
    },
    close: () => {
      subscription.unsubscribe();
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}

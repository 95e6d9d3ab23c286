import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DEFAULT_DEAD_RETENTION,
  DEFAULT_RETENTION,
  JOB_STATES,
  PayloadValidationError,
  Queue,
  type GroupInfo,
  type JobRecord,
  type QueueConfig,
  type RateLimitNumbers,
  type Retention,
  type JobState,
  type Logger,
  type Store,
  type Telemetry,
  type WorkerInfo,
} from '@sluice/core';
import { firstValueFrom, take, timeout } from 'rxjs';
import type { CsrfGuard } from './csrf';
import { scanGroups } from './groups';
import { ApiErrorCode, conflict, HttpError, notFound, readJsonBody, sendJson } from './http';
import type { LiveUpdates } from './live-updates';
import type { LimitPauseView, RateLimitMonitor, StartTimingView } from './rate-limits';
import { Router, type RouteParams } from './router';
import {
  parseAddJob,
  parseBulkRequest,
  parseConcurrency,
  parseFilterText,
  parseGroupName,
  parseIntegerParam,
  parseJobId,
  parseJobState,
  parseLimitKey,
  parseLimitNumbers,
  parsePurgeableState,
  parseQueueName,
  parseRetentionChange,
  type BulkAction,
} from './validate';
import {
  jsonText,
  rateLimitsOf,
  readSchedules,
  redactJob,
  summarizeHistory,
  toJobDetail,
  toJobSummary,
  toWorkerView,
  type JobSummaryView,
  type QueueSummaryView,
  type RateLimitView,
  type RedactedJob,
  type Redactor,
  type ScheduleView,
  type WorkerView,
} from './views';

/** Minutes of per-minute history the overview and queue pages chart. */
export const HISTORY_MINUTES = 60;
/** Largest page of jobs the API returns. */
export const MAX_PAGE_SIZE = 200;
const DEFAULT_PAGE_SIZE = 25;
/** Most queues one live-update stream may watch. */
const MAX_WATCHED_QUEUES = 100;
const SCAN_CHUNK = 200;

export interface ApiContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly query: URLSearchParams;
}

type Handler = (ctx: ApiContext, params: RouteParams) => Promise<void>;

export interface ApiDependencies {
  readonly store: Store;
  readonly logger: Logger;
  readonly telemetry: Telemetry | undefined;
  readonly redact: Redactor | undefined;
  readonly readOnly: boolean;
  readonly csrf: CsrfGuard;
  readonly live: LiveUpdates;
  readonly actor: ((req: IncomingMessage) => string | undefined) | undefined;
  readonly title: string;
  readonly refreshIntervalMs: number;
  readonly filterScanLimit: number;
  readonly groupScanLimit: number;
  readonly login: 'token' | 'external' | 'none';
  readonly limits: RateLimitMonitor;
}

/** A rate-limit key of a queue, in full: numbers, usage, pauses and start timing. */
export interface RateLimitDetailView {
  readonly now: number;
  readonly queue: string;
  readonly key: string;
  /** The numbers live workers are configured with (several during a rolling deploy). */
  readonly configured: readonly {
    readonly allowed: number;
    readonly periodMs: number;
    readonly per: 'job' | 'call';
    readonly pipelines: readonly string[];
  }[];
  /** The store-wide numbers (`store.setRateLimit`), which every worker checks instead of its own. */
  readonly override: { readonly allowed: number; readonly periodMs: number } | null;
  /** The numbers in force: the override, else the workers' (the first, when they differ). */
  readonly effective: { readonly allowed: number; readonly periodMs: number } | null;
  /** Units granted in the last `effective.periodMs`; `null` when the store cannot tell. */
  readonly used: number | null;
  /** Whether the store can set numbers store-wide (and the dashboard is not read-only). */
  readonly canSet: boolean;
  /** Provider pauses, newest first. */
  readonly pauses: readonly LimitPauseView[];
  /** `store`: pauses of every process; `telemetry`: only this process's workers; `none`. */
  readonly pausesFrom: 'store' | 'telemetry' | 'none';
  /** Start timing from this process's telemetry; `null` without a `telemetry` hub. */
  readonly timing: StartTimingView | null;
}

/** What `GET api/session` answers: everything the UI needs before its first view. */
export interface SessionView {
  readonly now: number;
  readonly title: string;
  readonly readOnly: boolean;
  /** Send it as `X-CSRF-Token` on every state-changing request. */
  readonly csrfToken: string;
  readonly refreshIntervalMs: number;
  readonly historyMinutes: number;
  readonly login: 'token' | 'external' | 'none';
  readonly states: readonly JobState[];
}

export interface OverviewView {
  readonly now: number;
  readonly queues: readonly QueueSummaryView[];
  /** `null` when the store cannot list workers. */
  readonly workers: readonly WorkerView[] | null;
}

export interface QueueDetailView extends QueueSummaryView {
  readonly now: number;
  /** The concurrency override every worker obeys; `null` when each pipeline uses its own. */
  readonly concurrency: number | null;
  readonly config: {
    readonly schema?: object;
    readonly retention?: Retention;
    readonly deadRetention?: Retention;
  };
  /** How long finished (completed and cancelled) and dead jobs are kept, and whether that can be changed. */
  readonly retention: RetentionView;
  readonly schedules: readonly ScheduleView[];
  /** Entries of `config.schedules` the dashboard could not read. */
  readonly invalidSchedules: number;
  /** Live workers with a pipeline on this queue (other pipelines left out); `null` when unknown. */
  readonly workers: readonly WorkerView[] | null;
}

/** One retention in force: the queue's own, or the store's default when it has none. */
export interface RetentionInForce {
  readonly retention: Retention;
  /** `true` when the queue sets none and the default applies. */
  readonly isDefault: boolean;
}

/** The retentions of a queue (`QueueConfig.retention` and `deadRetention`). */
export interface RetentionView {
  /** Completed and cancelled jobs, which share one budget. */
  readonly finished: RetentionInForce;
  readonly dead: RetentionInForce;
  /** Whether the store can change them atomically (`updateQueueConfig`) and the dashboard is not read-only. */
  readonly canSet: boolean;
}

/** What one job of a bulk action came to. */
export interface BulkJobResult {
  readonly id: string;
  /** `true` when the action was applied to this job. */
  readonly ok: boolean;
  /** The job's state after the action, when it exists. */
  readonly state?: JobState;
  /** For `cancel`: `cancelled` (it was waiting) or `signalled` (its worker was told to abort it). */
  readonly result?: string;
  /** Why the job was left alone (`ok: false`). */
  readonly error?: string;
}

/** The answer of `POST api/queues/:queue/jobs/bulk`. */
export interface BulkActionView {
  readonly ok: true;
  readonly action: BulkAction;
  readonly queue: string;
  /** Jobs the action was applied to. */
  readonly done: number;
  /** Jobs left alone (not found, or in a state the action does not apply to). */
  readonly skipped: number;
  readonly results: readonly BulkJobResult[];
}

export interface JobListView {
  readonly now: number;
  readonly queue: string;
  readonly state: JobState;
  readonly offset: number;
  readonly limit: number;
  /** Jobs in this state (before any filter). */
  readonly total: number;
  readonly hasMore: boolean;
  readonly jobs: readonly JobSummaryView[];
  /** Present when a filter was applied: how many jobs were scanned and whether that was all of them. */
  readonly filter?: {
    readonly name?: string;
    readonly group?: string;
    readonly text?: string;
    readonly scanned: number;
    readonly complete: boolean;
  };
}

/** A group on the queue's list: its counts, and the numbers set for it alone. */
export interface GroupView extends GroupInfo {
  /**
   * The numbers set for this group (`store.setGroupLimit`), which every worker checks instead of
   * its pipeline's `groups.rateLimit`; `null` when none is set, or the store cannot tell.
   */
  readonly limitOverride: RateLimitNumbers | null;
}

/** The answer of `GET api/queues/:queue/groups`: one page of the queue's groups, busiest first. */
export interface GroupListView {
  readonly now: number;
  readonly queue: string;
  readonly offset: number;
  readonly limit: number;
  /** Groups read: those holding a ready, running or retrying job, or paused (at most `scanLimit`). */
  readonly total: number;
  /** Paused groups among them. */
  readonly paused: number;
  /** `false` when the queue has more than `scanLimit` groups: the first `scanLimit` by name were read. */
  readonly complete: boolean;
  readonly scanLimit: number;
  readonly hasMore: boolean;
  /** Busiest first: most ready and active jobs, then most active, then by name. */
  readonly groups: readonly GroupView[];
  /** Whether groups can be paused and resumed here (the store can, and the dashboard is not read-only). */
  readonly canPause: boolean;
  /** Whether a group's numbers can be set here (the store can, and the dashboard is not read-only). */
  readonly canSetLimit: boolean;
}

/** The answer of `GET api/queues/:queue/groups/:group/limit`: the numbers set for one group. */
export interface GroupLimitView {
  readonly now: number;
  readonly queue: string;
  readonly group: string;
  /** The numbers set with `store.setGroupLimit`; `null`: each pipeline's own `groups.rateLimit`. */
  readonly override: RateLimitNumbers | null;
  /** Whether the numbers can be set here (the store can, and the dashboard is not read-only). */
  readonly canSet: boolean;
}

/** The JSON API: read endpoints, administrative actions and the live-update stream. */
export function createApiRouter(deps: ApiDependencies): Router<Handler> {
  const { store, logger } = deps;
  const redactor = (job: JobRecord): RedactedJob => redactJob(job, deps.redact, logger);

  const knownQueue = async (raw: string): Promise<string> => {
    const queue = parseQueueName(raw);
    const queues = await store.queues();
    if (!queues.includes(queue)) throw notFound(`no queue named ${JSON.stringify(queue)}`);
    return queue;
  };

  const liveWorkers = async (): Promise<readonly WorkerInfo[] | undefined> => {
    if (!store.workers) return undefined;
    try {
      return await store.workers();
    } catch (err) {
      logger.warn('dashboard: store.workers() failed', { error: errorMessage(err) });
      return undefined;
    }
  };

  const withUsage = async (
    queue: string,
    limits: ReturnType<typeof rateLimitsOf>,
  ): Promise<RateLimitView[]> =>
    Promise.all(
      limits.map(async (limit) => {
        let used: number | null = null;
        if (store.rateLimitUsage) {
          try {
            used = await store.rateLimitUsage(queue, limit.key, limit.periodMs);
          } catch (err) {
            logger.debug('dashboard: store.rateLimitUsage() failed', { queue, error: errorMessage(err) });
          }
        }
        deps.limits.watch(queue, limit);
        return {
          ...limit,
          used,
          leadCapped: deps.limits.leadCapped(queue, limit.key),
          marginCapped: deps.limits.marginCapped(queue, limit.key),
        };
      }),
    );

  const summary = async (queue: string, workers: readonly WorkerInfo[]): Promise<QueueSummaryView> => {
    const [stats, history, rateLimits] = await Promise.all([
      store.stats(queue),
      store.history(queue, HISTORY_MINUTES),
      withUsage(queue, rateLimitsOf(queue, workers)),
    ]);
    let pipelines = 0;
    let inFlight = 0;
    for (const w of workers) {
      for (const p of w.pipelines) {
        if (p.queue !== queue) continue;
        pipelines++;
        inFlight += p.inFlight;
      }
    }
    return {
      name: queue,
      paused: stats.paused,
      counts: stats.counts,
      totals: stats.totals,
      history,
      lastHour: summarizeHistory(history),
      rateLimits,
      pipelines,
      inFlight,
    };
  };

  const retentionOf = (config: QueueConfig): RetentionView => ({
    finished: config.retention
      ? { retention: config.retention, isDefault: false }
      : { retention: DEFAULT_RETENTION, isDefault: true },
    dead: config.deadRetention
      ? { retention: config.deadRetention, isDefault: false }
      : { retention: DEFAULT_DEAD_RETENTION, isDefault: true },
    canSet: store.updateQueueConfig !== undefined && !deps.readOnly,
  });

  const canSetGroupLimit = (): boolean =>
    store.setGroupLimit !== undefined && store.getGroupLimit !== undefined && !deps.readOnly;

  /** The numbers set for one group, or `null` (none set, the store cannot tell, or it failed). */
  const groupOverride = async (queue: string, group: string): Promise<RateLimitNumbers | null> => {
    if (!store.getGroupLimit) return null;
    try {
      return await store.getGroupLimit(queue, group);
    } catch (err) {
      logger.debug('dashboard: store.getGroupLimit() failed', { queue, error: errorMessage(err) });
      return null;
    }
  };

  const concurrencyOverride = async (queue: string): Promise<number | null> => {
    try {
      const settings = await firstValueFrom(store.settings(queue).pipe(take(1), timeout(2000)));
      return settings.concurrency ?? null;
    } catch {
      return null;
    }
  };

  /** Runs an administrative action, then records it: telemetry, log, live update. */
  const act = async (
    ctx: ApiContext,
    queue: string,
    action: string,
    run: () => Promise<Record<string, unknown>>,
    details: { readonly jobId?: string; readonly detail?: string } = {},
  ): Promise<void> => {
    const result = await run();
    const actor = actorOf(ctx.req);
    deps.telemetry?.emit({
      type: 'action',
      queue,
      at: Date.now(),
      action,
      ...details,
      ...(actor === undefined ? {} : { actor }),
    });
    logger.info('dashboard action', {
      action,
      queue,
      ...details,
      ...(actor === undefined ? {} : { actor }),
      remoteAddress: ctx.req.socket.remoteAddress,
      ...result,
    });
    deps.live.notify(queue);
    sendJson(ctx.res, 200, { ok: true, action, queue, ...details, ...result });
  };

  const actorOf = (req: IncomingMessage): string | undefined => {
    if (!deps.actor) return undefined;
    try {
      const actor = deps.actor(req);
      return typeof actor === 'string' && actor !== '' ? actor.slice(0, 200) : undefined;
    } catch {
      return undefined;
    }
  };

  /** The job, or a 404. */
  const existingJob = async (queue: string, id: string): Promise<JobRecord> => {
    const job = await store.getJob(queue, id);
    if (!job) throw notFound(`no job ${JSON.stringify(id)} in queue ${JSON.stringify(queue)}`);
    return job;
  };

  const listJobs = async (ctx: ApiContext, params: RouteParams): Promise<void> => {
    const queue = await knownQueue(params['queue'] ?? '');
    const state = parseJobState(ctx.query.get('state') ?? 'ready');
    const offset = parseIntegerParam(ctx.query, 'offset', { min: 0, max: 1_000_000, fallback: 0 });
    const limit = parseIntegerParam(ctx.query, 'limit', {
      min: 1,
      max: MAX_PAGE_SIZE,
      fallback: DEFAULT_PAGE_SIZE,
    });
    const name = parseFilterText(ctx.query, 'name');
    const text = parseFilterText(ctx.query, 'text');
    const groupParam = parseFilterText(ctx.query, 'group', 256);
    const group = groupParam === undefined ? undefined : parseGroupName(groupParam);
    const stats = await store.stats(queue);
    const base = { now: Date.now(), queue, state, offset, limit, total: stats.counts[state] };

    if (name === undefined && text === undefined && group === undefined) {
      const page = await store.listJobs(queue, state, { offset, limit: limit + 1 });
      const jobs = page.slice(0, limit).map((job) => toJobSummary(job, redactor(job)));
      const body: JobListView = { ...base, hasMore: page.length > limit, jobs };
      sendJson(ctx.res, 200, body);
      return;
    }

    // Filters run over the redacted payload, so a filter cannot probe a masked secret.
    const nameNeedle = name?.toLowerCase();
    const textNeedle = text?.toLowerCase();
    const matches: JobSummaryView[] = [];
    let scanned = 0;
    let complete = false;
    while (matches.length <= offset + limit && scanned < deps.filterScanLimit) {
      const chunk = await store.listJobs(queue, state, {
        offset: scanned,
        limit: Math.min(SCAN_CHUNK, deps.filterScanLimit - scanned),
      });
      scanned += chunk.length;
      for (const job of chunk) {
        // The store's list has no group filter: the group is matched exactly while scanning.
        if (group !== undefined && job.group !== group) continue;
        if (nameNeedle !== undefined && !job.name.toLowerCase().includes(nameNeedle)) continue;
        const redacted = redactor(job);
        if (textNeedle !== undefined && !jsonText(redacted.data).toLowerCase().includes(textNeedle)) continue;
        matches.push(toJobSummary(job, redacted));
      }
      if (chunk.length < SCAN_CHUNK) {
        complete = true;
        break;
      }
    }
    const body: JobListView = {
      ...base,
      hasMore: matches.length > offset + limit,
      jobs: matches.slice(offset, offset + limit),
      filter: {
        ...(name === undefined ? {} : { name }),
        ...(group === undefined ? {} : { group }),
        ...(text === undefined ? {} : { text }),
        scanned,
        complete,
      },
    };
    sendJson(ctx.res, 200, body);
  };

  const router = new Router<Handler>();

  router.add('GET', '/session', (ctx) => {
    const body: SessionView = {
      now: Date.now(),
      title: deps.title,
      readOnly: deps.readOnly,
      csrfToken: deps.csrf.issue(ctx.req, ctx.res),
      refreshIntervalMs: deps.refreshIntervalMs,
      historyMinutes: HISTORY_MINUTES,
      login: deps.login,
      states: JOB_STATES,
    };
    sendJson(ctx.res, 200, body);
    return Promise.resolve();
  });

  router.add('GET', '/overview', async (ctx) => {
    const [queues, workers] = await Promise.all([store.queues(), liveWorkers()]);
    const summaries = await Promise.all(queues.map((q) => summary(q, workers ?? [])));
    const body: OverviewView = {
      now: Date.now(),
      queues: summaries,
      workers: workers ? workers.map(toWorkerView) : null,
    };
    sendJson(ctx.res, 200, body);
  });

  router.add('GET', '/queues', async (ctx) => {
    const queues = await store.queues();
    const stats = await Promise.all(queues.map((q) => store.stats(q)));
    sendJson(ctx.res, 200, {
      now: Date.now(),
      queues: stats.map((s) => ({ name: s.queue, paused: s.paused, counts: s.counts })),
    });
  });

  router.add('GET', '/queues/:queue', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const workers = await liveWorkers();
    const [base, config, concurrency] = await Promise.all([
      summary(queue, workers ?? []),
      store.getQueueConfig(queue),
      concurrencyOverride(queue),
    ]);
    const { schedules, invalid } = readSchedules(queue, config, redactor, Date.now());
    const body: QueueDetailView = {
      ...base,
      now: Date.now(),
      concurrency,
      config: {
        ...(config.schema ? { schema: config.schema } : {}),
        ...(config.retention ? { retention: config.retention } : {}),
        ...(config.deadRetention ? { deadRetention: config.deadRetention } : {}),
      },
      retention: retentionOf(config),
      schedules,
      invalidSchedules: invalid,
      workers: workers
        ? workers
            .map(toWorkerView)
            .map((w) => ({ ...w, pipelines: w.pipelines.filter((p) => p.queue === queue) }))
            .filter((w) => w.pipelines.length > 0)
        : null,
    };
    sendJson(ctx.res, 200, body);
  });

  router.add('GET', '/queues/:queue/jobs', listJobs);

  router.add('GET', '/queues/:queue/jobs/:id', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const id = parseJobId(params['id'] ?? '');
    const job = await existingJob(queue, id);
    sendJson(ctx.res, 200, { now: Date.now(), job: toJobDetail(job, redactor(job)) });
  });

  router.add('GET', '/events', async (ctx) => {
    if (ctx.req.method === 'HEAD') {
      sendJson(ctx.res, 200, {});
      return;
    }
    const requested = ctx.query.getAll('queue');
    if (requested.length > MAX_WATCHED_QUEUES) {
      throw new HttpError(400, ApiErrorCode.BadRequest, `watch at most ${MAX_WATCHED_QUEUES} queues`);
    }
    const names = requested.map(parseQueueName);
    const known = new Set(await store.queues());
    deps.live.stream(
      ctx.req,
      ctx.res,
      [...new Set(names)].filter((q) => known.has(q)),
    );
  });

  // ---- actions (the dispatcher has checked read-only mode and the CSRF token)

  router.add('POST', '/queues/:queue/pause', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    await act(ctx, queue, 'pause', async () => {
      await store.pause(queue);
      return { paused: true };
    });
  });

  router.add('POST', '/queues/:queue/resume', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    await act(ctx, queue, 'resume', async () => {
      await store.resume(queue);
      return { paused: false };
    });
  });

  router.add('GET', '/queues/:queue/groups', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const offset = parseIntegerParam(ctx.query, 'offset', { min: 0, max: 1_000_000, fallback: 0 });
    const limit = parseIntegerParam(ctx.query, 'limit', {
      min: 1,
      max: MAX_PAGE_SIZE,
      fallback: DEFAULT_PAGE_SIZE,
    });
    const scan = await scanGroups(store, queue, deps.groupScanLimit);
    if (!scan) {
      throw new HttpError(501, ApiErrorCode.NotSupported, `this store (${store.kind}) cannot list groups`);
    }
    // The numbers set for a group are read for the groups on this page only (at most MAX_PAGE_SIZE).
    const page = scan.groups.slice(offset, offset + limit);
    const overrides = await Promise.all(page.map((g) => groupOverride(queue, g.group)));
    const body: GroupListView = {
      now: Date.now(),
      queue,
      offset,
      limit,
      total: scan.groups.length,
      paused: scan.groups.filter((g) => g.paused).length,
      complete: scan.complete,
      scanLimit: deps.groupScanLimit,
      hasMore: scan.groups.length > offset + limit,
      groups: page.map((g, i) => ({ ...g, limitOverride: overrides[i] ?? null })),
      canPause: store.pauseGroup !== undefined && store.resumeGroup !== undefined && !deps.readOnly,
      canSetLimit: canSetGroupLimit(),
    };
    sendJson(ctx.res, 200, body);
  });

  router.add('GET', '/queues/:queue/groups/:group/limit', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const group = parseGroupName(params['group'] ?? '');
    const getGroupLimit = store.getGroupLimit?.bind(store);
    if (!getGroupLimit) {
      throw new HttpError(
        501,
        ApiErrorCode.NotSupported,
        `this store (${store.kind}) cannot set group rate limits`,
      );
    }
    const body: GroupLimitView = {
      now: Date.now(),
      queue,
      group,
      override: await getGroupLimit(queue, group),
      canSet: canSetGroupLimit(),
    };
    sendJson(ctx.res, 200, body);
  });

  router.add('PUT', '/queues/:queue/groups/:group/limit', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const group = parseGroupName(params['group'] ?? '');
    const numbers = parseLimitNumbers(await readJsonBody(ctx.req));
    const setGroupLimit = store.setGroupLimit?.bind(store);
    const getGroupLimit = store.getGroupLimit?.bind(store);
    if (!setGroupLimit || !getGroupLimit) {
      throw new HttpError(
        501,
        ApiErrorCode.NotSupported,
        `this store (${store.kind}) cannot set group rate limits`,
      );
    }
    await act(
      ctx,
      queue,
      'set-group-limit',
      async () => {
        await setGroupLimit(queue, group, numbers);
        return { group, override: await getGroupLimit(queue, group) };
      },
      {
        detail: numbers ? `${group}: ${numbers.allowed} per ${numbers.periodMs} ms` : `${group}: cleared`,
      },
    );
  });

  for (const action of ['pause', 'resume'] as const) {
    router.add('POST', `/queues/:queue/groups/:group/${action}`, async (ctx, params) => {
      const queue = await knownQueue(params['queue'] ?? '');
      const group = parseGroupName(params['group'] ?? '');
      const change = action === 'pause' ? store.pauseGroup?.bind(store) : store.resumeGroup?.bind(store);
      if (!change) {
        throw new HttpError(
          501,
          ApiErrorCode.NotSupported,
          `this store (${store.kind}) cannot pause or resume groups`,
        );
      }
      await act(
        ctx,
        queue,
        `${action}-group`,
        async () => {
          await change(queue, group);
          return { group, paused: action === 'pause' };
        },
        { detail: group },
      );
    });
  }

  router.add('POST', '/queues/:queue/jobs', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const { data, options } = parseAddJob(await readJsonBody(ctx.req));
    await act(
      ctx,
      queue,
      'add',
      async () => {
        try {
          const added = await new Queue(store, queue).add(data, options);
          return { id: added.id, duplicate: added.duplicate };
        } catch (err) {
          if (err instanceof PayloadValidationError) {
            throw new HttpError(400, ApiErrorCode.BadRequest, err.message);
          }
          throw err;
        }
      },
      options.group === undefined ? {} : { detail: `group ${options.group}` },
    );
  });

  router.add('PUT', '/queues/:queue/concurrency', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const concurrency = parseConcurrency(await readJsonBody(ctx.req));
    await act(
      ctx,
      queue,
      'set-concurrency',
      async () => {
        await store.setConcurrency(queue, concurrency);
        return { concurrency: concurrency ?? null };
      },
      { detail: concurrency === undefined ? 'cleared' : String(concurrency) },
    );
  });

  router.add('PUT', '/queues/:queue/retention', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const change = parseRetentionChange(await readJsonBody(ctx.req));
    const updateQueueConfig = store.updateQueueConfig?.bind(store);
    if (!updateQueueConfig) {
      throw new HttpError(
        501,
        ApiErrorCode.NotSupported,
        `this store (${store.kind}) cannot change a queue's configuration atomically`,
      );
    }
    const describe = (r: Retention | null | undefined): string | undefined =>
      r === undefined ? undefined : r === null ? 'default' : JSON.stringify(r);
    await act(
      ctx,
      queue,
      'set-retention',
      async () => {
        const { config } = await updateQueueConfig(queue, {
          ...(change.finished === undefined ? {} : { retention: change.finished }),
          ...(change.dead === undefined ? {} : { deadRetention: change.dead }),
        });
        return { retention: retentionOf(config) };
      },
      {
        detail: [
          ['finished', describe(change.finished)],
          ['dead', describe(change.dead)],
        ]
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; '),
      },
    );
  });

  router.add('POST', '/queues/:queue/dead/retry', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    await act(ctx, queue, 'retry', async () => ({ count: await store.retryJobs(queue, 'all-dead') }), {
      detail: 'all-dead',
    });
  });

  router.add('POST', '/queues/:queue/:state/purge', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const state = parsePurgeableState(params['state'] ?? '');
    await act(ctx, queue, 'purge', async () => ({ state, count: await store.purge(queue, state) }), {
      detail: state,
    });
  });

  router.add('POST', '/queues/:queue/jobs/:id/retry', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const id = parseJobId(params['id'] ?? '');
    const job = await existingJob(queue, id);
    if (job.state !== 'dead' && job.state !== 'cancelled') {
      throw conflict(`job ${id} is ${job.state}; only dead or cancelled jobs can be retried`);
    }
    await act(
      ctx,
      queue,
      'retry',
      async () => {
        const moved = await store.retryJobs(queue, [id]);
        if (moved === 0) throw conflict(`job ${id} changed state before it could be retried`);
        return { state: 'ready' };
      },
      { jobId: id },
    );
  });

  router.add('POST', '/queues/:queue/jobs/:id/promote', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const id = parseJobId(params['id'] ?? '');
    const job = await existingJob(queue, id);
    if (job.state !== 'scheduled') {
      throw conflict(`job ${id} is ${job.state}; only scheduled jobs can be promoted`);
    }
    await act(
      ctx,
      queue,
      'promote',
      async () => {
        if (!(await store.promoteJob(queue, id))) {
          throw conflict(`job ${id} changed state before it could be promoted`);
        }
        return { state: 'ready' };
      },
      { jobId: id },
    );
  });

  router.add('POST', '/queues/:queue/jobs/:id/cancel', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const id = parseJobId(params['id'] ?? '');
    await existingJob(queue, id);
    await act(
      ctx,
      queue,
      'cancel',
      async () => {
        const result = await store.cancel(queue, id);
        if (result === 'not-found') throw notFound(`no job ${JSON.stringify(id)} in queue ${queue}`);
        if (result === 'finished') throw conflict(`job ${id} has already finished`);
        return { result };
      },
      { jobId: id },
    );
  });

  router.add('DELETE', '/queues/:queue/jobs/:id', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const id = parseJobId(params['id'] ?? '');
    const job = await existingJob(queue, id);
    if (job.state === 'running') {
      throw conflict(`job ${id} is running; cancel it first, or wait for it to finish`);
    }
    await act(
      ctx,
      queue,
      'remove',
      async () => {
        if (!(await store.removeJob(queue, id))) {
          throw conflict(`job ${id} could not be deleted (it started running, or is gone)`);
        }
        return { deleted: true };
      },
      { jobId: id },
    );
  });

  const readOverride = async (queue: string, key: string) => {
    if (!store.getRateLimit) return null;
    return store.getRateLimit(queue, key);
  };

  const limitDetail = async (queue: string, key: string): Promise<RateLimitDetailView | undefined> => {
    const workers = (await liveWorkers()) ?? [];
    const configured = rateLimitsOf(queue, workers).filter((l) => l.key === key);
    const override = await readOverride(queue, key);
    if (configured.length === 0 && override === null && !deps.limits.keysSeen(queue).includes(key)) {
      return undefined;
    }
    const first = configured[0];
    if (first) deps.limits.watch(queue, first);
    const effective = override ?? (first ? { allowed: first.allowed, periodMs: first.periodMs } : null);
    let used: number | null = null;
    if (store.rateLimitUsage && effective) {
      try {
        used = await store.rateLimitUsage(queue, key, effective.periodMs);
      } catch (err) {
        logger.debug('dashboard: store.rateLimitUsage() failed', { queue, error: errorMessage(err) });
      }
    }
    return {
      now: Date.now(),
      queue,
      key,
      configured: configured.map(({ allowed, periodMs, per, pipelines }) => ({
        allowed,
        periodMs,
        per,
        pipelines,
      })),
      override,
      effective,
      used,
      canSet: store.setRateLimit !== undefined && !deps.readOnly,
      pauses: deps.limits.pauses(queue, key),
      pausesFrom: deps.limits.hearsStorePauses ? 'store' : deps.limits.telemetry ? 'telemetry' : 'none',
      timing: deps.limits.timing(queue, key),
    };
  };

  router.add('GET', '/queues/:queue/limits', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const workers = (await liveWorkers()) ?? [];
    const keys = new Set([...rateLimitsOf(queue, workers).map((l) => l.key), ...deps.limits.keysSeen(queue)]);
    const limits = await Promise.all([...keys].sort().map((key) => limitDetail(queue, key)));
    sendJson(ctx.res, 200, { now: Date.now(), queue, limits: limits.filter((l) => l !== undefined) });
  });

  router.add('GET', '/queues/:queue/limits/:key', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const key = parseLimitKey(params['key'] ?? '');
    const detail = await limitDetail(queue, key);
    if (!detail) {
      throw notFound(
        `no rate limit ${JSON.stringify(key)} on queue ${JSON.stringify(queue)}: no live worker uses it`,
      );
    }
    sendJson(ctx.res, 200, detail);
  });

  router.add('PUT', '/queues/:queue/limits/:key', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const key = parseLimitKey(params['key'] ?? '');
    const numbers = parseLimitNumbers(await readJsonBody(ctx.req));
    const setRateLimit = store.setRateLimit?.bind(store);
    if (!setRateLimit) {
      throw new HttpError(
        501,
        ApiErrorCode.NotSupported,
        `this store (${store.kind}) cannot set rate limits`,
      );
    }
    await act(
      ctx,
      queue,
      'set-rate-limit',
      async () => {
        await setRateLimit(queue, key, numbers);
        return { key, override: await readOverride(queue, key) };
      },
      { detail: numbers ? `${key}: ${numbers.allowed} per ${numbers.periodMs} ms` : `${key}: cleared` },
    );
  });

  /** One job of a bulk action: the same rules as the single-job endpoints, as a result instead of a 4xx. */
  const bulkOne = async (queue: string, action: BulkAction, id: string): Promise<BulkJobResult> => {
    const job = await store.getJob(queue, id);
    if (!job) return { id, ok: false, error: 'no such job' };
    const refuse = (why: string): BulkJobResult => ({ id, ok: false, state: job.state, error: why });
    switch (action) {
      case 'retry':
        if (job.state !== 'dead' && job.state !== 'cancelled') {
          return refuse(`${job.state}: only dead or cancelled jobs can be retried`);
        }
        return (await store.retryJobs(queue, [id])) === 1
          ? { id, ok: true, state: 'ready' }
          : refuse('changed state before it could be retried');
      case 'promote':
        if (job.state !== 'scheduled') return refuse(`${job.state}: only scheduled jobs can be run now`);
        return (await store.promoteJob(queue, id))
          ? { id, ok: true, state: 'ready' }
          : refuse('changed state before it could be promoted');
      case 'cancel': {
        const result = await store.cancel(queue, id);
        if (result === 'not-found') return { id, ok: false, error: 'no such job' };
        if (result === 'finished') return refuse(`${job.state}: it has already finished`);
        return { id, ok: true, state: result === 'cancelled' ? 'cancelled' : 'running', result };
      }
      case 'remove':
        if (job.state === 'running') return refuse('running: cancel it first, or wait for it to finish');
        return (await store.removeJob(queue, id))
          ? { id, ok: true }
          : refuse('could not be deleted (it started running, or is gone)');
    }
  };

  router.add('POST', '/queues/:queue/jobs/bulk', async (ctx, params) => {
    const queue = await knownQueue(params['queue'] ?? '');
    const { action, ids } = parseBulkRequest(await readJsonBody(ctx.req));
    const results: BulkJobResult[] = [];
    // In order, one at a time: each job's answer reflects the jobs before it.
    for (const id of ids) results.push(await bulkOne(queue, action, id));
    const done = results.filter((r) => r.ok);
    const actor = actorOf(ctx.req);
    const at = Date.now();
    for (const r of done) {
      deps.telemetry?.emit({
        type: 'action',
        queue,
        at,
        action,
        jobId: r.id,
        detail: 'bulk',
        ...(actor === undefined ? {} : { actor }),
      });
    }
    logger.info('dashboard action', {
      action,
      queue,
      detail: 'bulk',
      jobIds: done.map((r) => r.id),
      skipped: results.length - done.length,
      ...(actor === undefined ? {} : { actor }),
      remoteAddress: ctx.req.socket.remoteAddress,
    });
    if (done.length > 0) deps.live.notify(queue);
    const body: BulkActionView = {
      ok: true,
      action,
      queue,
      done: done.length,
      skipped: results.length - done.length,
      results,
    };
    sendJson(ctx.res, 200, body);
  });

  return router;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

import {
  parseCron,
  type AttemptError,
  type JobCounts,
  type JobRecord,
  type JobState,
  type Logger,
  type MinuteBucket,
  type QueueConfig,
  type QueueStats,
  type WorkerInfo,
} from '@sluice/core';

/**
 * The JSON shapes the API answers with. Times are epoch ms on the store's clock; every response that
 * carries times also carries `now` (the server's clock) so a UI can show relative times without
 * trusting the browser's clock.
 */

/** What a {@link Redactor} returns: the payload and result the API may show. */
export interface RedactedJob {
  readonly data: unknown;
  readonly result?: unknown;
  /** The job's progress as shown; when the redactor leaves it out, the stored one. */
  readonly progress?: unknown;
  /** The job's log lines as shown; when the redactor leaves them out, the stored ones. */
  readonly logs?: readonly string[];
}

/**
 * Masks secrets before anything leaves the server. Called with the stored job for every payload and
 * result the API returns (lists, previews, the job page, the payload-text filter, cron templates);
 * return the job (or just `{ data, result }`) with sensitive fields replaced. The job page's progress and
 * log lines are the redactor's `progress` and `logs` when it returns those fields, else the stored ones. A job whose redaction
 * throws is shown as `"[redaction failed]"`, never in the clear.
 */
export type Redactor = (job: JobRecord) => RedactedJob;

const REDACTION_FAILED = '[redaction failed]';

export function redactJob(job: JobRecord, redact: Redactor | undefined, logger: Logger): RedactedJob {
  /** Progress and log lines, left out when there are none. */
  const reports = (progress: unknown, logs: readonly string[] | undefined) => ({
    ...(progress === undefined ? {} : { progress }),
    ...(logs === undefined || logs.length === 0 ? {} : { logs }),
  });
  if (!redact) {
    return {
      data: job.data,
      ...(job.result === undefined ? {} : { result: job.result }),
      ...reports(job.progress, job.logs),
    };
  }
  try {
    const out = redact(job);
    return {
      data: out.data,
      ...('result' in out ? { result: out.result } : {}),
      ...reports('progress' in out ? out.progress : job.progress, 'logs' in out ? out.logs : job.logs),
    };
  } catch (err) {
    logger.error('dashboard: redact() threw; hiding the payload', {
      queue: job.queue,
      jobId: job.id,
      error: err instanceof Error ? err.message : String(err),
    });
    return {
      data: REDACTION_FAILED,
      ...(job.result === undefined ? {} : { result: REDACTION_FAILED }),
      ...(job.progress === undefined ? {} : { progress: REDACTION_FAILED }),
      ...(job.logs && job.logs.length > 0 ? { logs: [REDACTION_FAILED] } : {}),
    };
  }
}

/** JSON text of a value, `""` for `undefined`. */
export function jsonText(value: unknown): string {
  try {
    return (JSON.stringify as (v: unknown) => string | undefined)(value) ?? '';
  } catch {
    return '';
  }
}

const PREVIEW_CHARS = 160;

/** A job row in a list. */
export interface JobSummaryView {
  readonly id: string;
  readonly name: string;
  readonly state: JobState;
  /** The group the job belongs to (`JobOptions.group`); absent when it has none. */
  readonly group?: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly createdAt: number;
  readonly runAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly reason?: string;
  readonly lastError?: { readonly name: string; readonly message: string };
  /** While running: the worker holding the job's lease, when the store recorded it. */
  readonly workerId?: string;
  /** The (redacted) payload as JSON, cut to 160 characters. */
  readonly preview: string;
}

export function toJobSummary(job: JobRecord, redacted: RedactedJob): JobSummaryView {
  const text = jsonText(redacted.data);
  const last = job.errors[job.errors.length - 1];
  return {
    id: job.id,
    name: job.name,
    state: job.state,
    ...(job.group === undefined ? {} : { group: job.group }),
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    priority: job.priority,
    createdAt: job.createdAt,
    runAt: job.runAt,
    ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
    ...(job.reason === undefined ? {} : { reason: job.reason }),
    ...(last ? { lastError: { name: last.name, message: last.message } } : {}),
    ...(job.lease?.workerId === undefined ? {} : { workerId: job.lease.workerId }),
    preview: text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text,
  };
}

/** Everything about one job. The lease token is never shown. */
export interface JobDetailView {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly state: JobState;
  readonly data: unknown;
  readonly result?: unknown;
  readonly reason?: string;
  readonly options: {
    readonly priority: number;
    readonly maxAttempts: number;
    readonly timeoutMs?: number;
    readonly uniqueKey?: string;
    /** The group the job belongs to (`JobOptions.group`); absent when it has none. */
    readonly group?: string;
  };
  readonly attempt: number;
  /** While running: the worker holding the job's lease, when the store recorded it. */
  readonly workerId?: string;
  readonly errors: readonly AttemptError[];
  /** The latest progress its handler reported (`ctx.progress`): a number or a small JSON value. */
  readonly progress?: unknown;
  /** Its handler's log lines (`ctx.log`), oldest first; the store keeps the newest `MAX_JOB_LOG_LINES`. */
  readonly logs: readonly string[];
  readonly timings: {
    readonly createdAt: number;
    readonly runAt: number;
    readonly startedAt?: number;
    readonly finishedAt?: number;
    /** From due to the (last) start. */
    readonly waitMs?: number;
    /** From the (last) start to the finish. */
    readonly durationMs?: number;
    readonly leaseExpiresAt?: number;
  };
}

export function toJobDetail(job: JobRecord, redacted: RedactedJob): JobDetailView {
  const { startedAt, finishedAt } = job;
  return {
    id: job.id,
    queue: job.queue,
    name: job.name,
    state: job.state,
    data: redacted.data,
    ...('result' in redacted && redacted.result !== undefined ? { result: redacted.result } : {}),
    ...(job.reason === undefined ? {} : { reason: job.reason }),
    options: {
      priority: job.priority,
      maxAttempts: job.maxAttempts,
      ...(job.timeoutMs === undefined ? {} : { timeoutMs: job.timeoutMs }),
      ...(job.uniqueKey === undefined ? {} : { uniqueKey: job.uniqueKey }),
      ...(job.group === undefined ? {} : { group: job.group }),
    },
    attempt: job.attempt,
    ...(job.lease?.workerId === undefined ? {} : { workerId: job.lease.workerId }),
    errors: job.errors,
    ...(redacted.progress === undefined ? {} : { progress: redacted.progress }),
    logs: redacted.logs ?? [],
    timings: {
      createdAt: job.createdAt,
      runAt: job.runAt,
      ...(startedAt === undefined ? {} : { startedAt, waitMs: Math.max(0, startedAt - job.runAt) }),
      ...(finishedAt === undefined ? {} : { finishedAt }),
      ...(startedAt !== undefined && finishedAt !== undefined && finishedAt >= startedAt
        ? { durationMs: finishedAt - startedAt }
        : {}),
      ...(job.lease ? { leaseExpiresAt: job.lease.expiresAt } : {}),
    },
  };
}

/** Completed and failed attempts over the history window. */
export interface ThroughputView {
  readonly minutes: number;
  readonly completed: number;
  readonly failed: number;
  /** Completed jobs per minute, averaged over the window. */
  readonly perMinute: number;
  /** `failed / (completed + failed)`, `0` when nothing ran. */
  readonly failureRate: number;
}

export function summarizeHistory(history: readonly MinuteBucket[]): ThroughputView {
  let completed = 0;
  let failed = 0;
  for (const b of history) {
    completed += b.completed;
    failed += b.failed;
  }
  const minutes = Math.max(1, history.length);
  return {
    minutes: history.length,
    completed,
    failed,
    perMinute: completed / minutes,
    failureRate: completed + failed === 0 ? 0 : failed / (completed + failed),
  };
}

/** A rate limit in force on a queue, as live workers report it, with how much of it is in use. */
export interface RateLimitView {
  readonly key: string;
  readonly allowed: number;
  readonly periodMs: number;
  readonly per: 'job' | 'call';
  /** Units granted in the current window; `null` when the store cannot tell. */
  readonly used: number | null;
  /** Whether the latest lead of new slots is at its cap (`start-timing` events this process saw). */
  readonly leadCapped: boolean;
  /** Whether the latest margin a worker asked for is at its cap (requests leave later than it allows for). */
  readonly marginCapped: boolean;
  /** Pipelines (`worker/pipeline`) that share it. */
  readonly pipelines: readonly string[];
}

/** A pipeline of a live worker. */
export interface WorkerPipelineView {
  readonly name: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly paused: boolean;
  readonly inFlight: number;
  readonly rateLimit?: { readonly key?: string; readonly allowed: number; readonly periodMs: number };
}

export interface WorkerView {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly lastSeenAt: number;
  readonly pipelines: readonly WorkerPipelineView[];
}

export function toWorkerView(w: WorkerInfo): WorkerView {
  return {
    id: w.id,
    host: w.host,
    pid: w.pid,
    startedAt: w.startedAt,
    lastSeenAt: w.lastSeenAt,
    pipelines: w.pipelines.map((p) => ({
      name: p.name,
      queue: p.queue,
      concurrency: p.concurrency,
      paused: p.paused,
      inFlight: p.inFlight,
      ...(p.rateLimit
        ? {
            rateLimit: {
              allowed: p.rateLimit.allowed,
              periodMs: p.rateLimit.periodMs,
              ...(p.rateLimit.key === undefined ? {} : { key: p.rateLimit.key }),
            },
          }
        : {}),
    })),
  };
}

/** The distinct rate limits live workers apply to `queue` (usage not yet filled in). */
export function rateLimitsOf(
  queue: string,
  workers: readonly WorkerInfo[],
): Omit<RateLimitView, 'used' | 'leadCapped' | 'marginCapped'>[] {
  const byKey = new Map<
    string,
    {
      view: Omit<RateLimitView, 'used' | 'leadCapped' | 'marginCapped' | 'pipelines'>;
      pipelines: Set<string>;
    }
  >();
  for (const w of workers) {
    for (const p of w.pipelines) {
      if (p.queue !== queue || !p.rateLimit) continue;
      const key = p.rateLimit.key ?? queue;
      const id = `${key}\u0000${p.rateLimit.allowed}\u0000${p.rateLimit.periodMs}`;
      let entry = byKey.get(id);
      if (!entry) {
        entry = {
          view: {
            key,
            allowed: p.rateLimit.allowed,
            periodMs: p.rateLimit.periodMs,
            per: p.rateLimit.per ?? 'job',
          },
          pipelines: new Set(),
        };
        byKey.set(id, entry);
      }
      entry.pipelines.add(p.name);
    }
  }
  return [...byKey.values()].map((e) => ({ ...e.view, pipelines: [...e.pipelines].sort() }));
}

/** A queue on the overview. */
export interface QueueSummaryView {
  readonly name: string;
  readonly paused: boolean;
  readonly counts: JobCounts;
  readonly totals: QueueStats['totals'];
  /** Per-minute completed/failed counters, oldest first. */
  readonly history: readonly MinuteBucket[];
  readonly lastHour: ThroughputView;
  readonly rateLimits: readonly RateLimitView[];
  /** Live pipelines on this queue, across workers. */
  readonly pipelines: number;
  /** Jobs running right now, as the workers last reported. */
  readonly inFlight: number;
}

/** How many upcoming ticks of a cron entry the API lists. */
export const UPCOMING_RUNS = 5;

/** A cron entry from the queue's stored configuration (`config.schedules`). */
export interface ScheduleView {
  readonly name: string;
  readonly cron: string;
  /** The (redacted) payload template. */
  readonly data: unknown;
  readonly timezone?: string;
  /**
   * The next tick after `now`, epoch ms, as workers compute it (cron in UTC); absent when the
   * expression has no tick within five years or cannot be parsed (then `error` says why).
   */
  readonly nextRunAt?: number;
  /** The next ticks (up to {@link UPCOMING_RUNS}), the first being `nextRunAt`. */
  readonly upcoming: readonly number[];
  readonly lastRunAt?: number;
  /** Why workers ignore this entry (an invalid cron expression). */
  readonly error?: string;
}

/**
 * Reads `config.schedules` (a record of `{ cron, data }` keyed by schedule name) if the store keeps
 * one; entries of any other shape are skipped and counted. The payload template is redacted as if it
 * were a job's payload.
 */
export function readSchedules(
  queue: string,
  config: QueueConfig,
  redact: (job: JobRecord) => RedactedJob,
  now: number,
): { readonly schedules: readonly ScheduleView[]; readonly invalid: number } {
  const raw = (config as { readonly schedules?: unknown }).schedules;
  if (raw === undefined || raw === null || typeof raw !== 'object') return { schedules: [], invalid: 0 };
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((v: unknown, i) => [nameOf(v) ?? String(i), v])
    : Object.entries(raw);
  const schedules: ScheduleView[] = [];
  let invalid = 0;
  for (const [name, value] of entries) {
    if (value === null || typeof value !== 'object') {
      invalid++;
      continue;
    }
    const entry = value as Record<string, unknown>;
    const cron = entry['cron'];
    if (typeof cron !== 'string') {
      invalid++;
      continue;
    }
    const data = entry['data'];
    const template: JobRecord = {
      id: `schedule:${name}`,
      queue,
      name,
      data,
      attempt: 0,
      maxAttempts: 0,
      priority: 0,
      createdAt: 0,
      runAt: 0,
      state: 'scheduled',
      errors: [],
    };
    const timezone = entry['timezone'] ?? entry['tz'];
    const nextRunAt = entry['nextRunAt'];
    const lastRunAt = entry['lastRunAt'];
    const { upcoming, error } = upcomingTicks(cron, now);
    const next = upcoming[0] ?? (typeof nextRunAt === 'number' ? nextRunAt : undefined);
    schedules.push({
      name,
      cron,
      data: redact(template).data,
      ...(typeof timezone === 'string' ? { timezone } : {}),
      ...(next === undefined ? {} : { nextRunAt: next }),
      upcoming,
      ...(typeof lastRunAt === 'number' ? { lastRunAt } : {}),
      ...(error === undefined ? {} : { error }),
    });
  }
  schedules.sort((a, b) => a.name.localeCompare(b.name));
  return { schedules, invalid };
}

/** The ticks of `cron` after `now`, as a worker's schedule loop computes them (UTC). */
function upcomingTicks(cron: string, now: number): { upcoming: number[]; error?: string } {
  let expression;
  try {
    expression = parseCron(cron);
  } catch (err) {
    return { upcoming: [], error: err instanceof Error ? err.message : String(err) };
  }
  const upcoming: number[] = [];
  let t = now;
  while (upcoming.length < UPCOMING_RUNS) {
    const tick = expression.next(t);
    if (tick === undefined) break;
    upcoming.push(tick);
    t = tick;
  }
  return { upcoming };
}

function nameOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const name = (value as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

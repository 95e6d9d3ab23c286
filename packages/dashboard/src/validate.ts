import { JOB_STATES, type JobOptions, type JobState, type Retention } from '@sluice/core';
import { assertGroupName, assertQueueName, assertRetention } from '@sluice/core/internal';
import { ApiErrorCode, badRequest } from './http';

/** A queue name as the core accepts it, or a 400. */
export function parseQueueName(raw: string): string {
  try {
    assertQueueName(raw);
  } catch (err) {
    throw badRequest(ApiErrorCode.InvalidQueue, (err as Error).message);
  }
  return raw;
}

/** Job ids: 1–256 characters without control characters (what stores accept), or a 400. */
export function parseJobId(raw: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (raw.length === 0 || raw.length > 256 || /[\u0000-\u001f\u007f]/.test(raw)) {
    throw badRequest(
      ApiErrorCode.InvalidId,
      `invalid job id ${JSON.stringify(raw.slice(0, 64))}: use 1-256 printable characters`,
    );
  }
  return raw;
}

export function parseJobState(raw: string): JobState {
  const state = JOB_STATES.find((s) => s === raw);
  if (!state) {
    throw badRequest(
      ApiErrorCode.InvalidState,
      `invalid state ${JSON.stringify(raw.slice(0, 32))}: use one of ${JOB_STATES.join(', ')}`,
    );
  }
  return state;
}

/** The states whose jobs can be purged. */
export type PurgeableState = 'dead' | 'completed' | 'cancelled';

export function parsePurgeableState(raw: string): PurgeableState {
  if (raw === 'dead' || raw === 'completed' || raw === 'cancelled') return raw;
  throw badRequest(
    ApiErrorCode.InvalidState,
    `cannot purge ${JSON.stringify(raw.slice(0, 32))} jobs: use dead, completed or cancelled`,
  );
}

/** One query parameter given at most once, or a 400. */
export function single(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw badRequest(ApiErrorCode.BadRequest, `give "${name}" at most once`);
  return values[0];
}

/** An integer query parameter within `[min, max]`, `fallback` when absent, or a 400. */
export function parseIntegerParam(
  query: URLSearchParams,
  name: string,
  range: { readonly min: number; readonly max: number; readonly fallback: number },
): number {
  const raw = single(query, name);
  if (raw === undefined || raw === '') return range.fallback;
  const value = /^-?\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < range.min || value > range.max) {
    throw badRequest(
      ApiErrorCode.InvalidPagination,
      `"${name}" must be an integer from ${range.min} to ${range.max}, got ${JSON.stringify(raw.slice(0, 32))}`,
    );
  }
  return value;
}

/** A free-text filter of at most `max` characters (trimmed; empty means absent), or a 400. */
export function parseFilterText(query: URLSearchParams, name: string, max = 200): string | undefined {
  const raw = single(query, name)?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > max) {
    throw badRequest(ApiErrorCode.BadRequest, `"${name}" must be at most ${max} characters`);
  }
  return raw;
}

/** Highest concurrency the dashboard will set; a typo of an extra zero should not take a system down. */
export const MAX_CONCURRENCY = 10_000;

/** `{ "concurrency": n }` with `1 ≤ n ≤ 10,000`, or `null` to clear the override; else a 400. */
export function parseConcurrency(body: Record<string, unknown>): number | undefined {
  if (!('concurrency' in body)) {
    throw badRequest(ApiErrorCode.BadRequest, 'send { "concurrency": n } or { "concurrency": null }');
  }
  const value = body['concurrency'];
  if (value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_CONCURRENCY) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `"concurrency" must be an integer from 1 to ${MAX_CONCURRENCY}, or null to clear it`,
    );
  }
  return value;
}

/** Actions the bulk endpoint takes on several jobs at once. */
export const BULK_ACTIONS = ['retry', 'promote', 'cancel', 'remove'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];
/** Most jobs one bulk request names. */
export const MAX_BULK_JOBS = 200;

/** `{ "action": "retry", "ids": ["1", "2"] }`: a known action and 1-200 distinct valid ids. */
export function parseBulkRequest(body: Record<string, unknown>): {
  readonly action: BulkAction;
  readonly ids: readonly string[];
} {
  const action = BULK_ACTIONS.find((a) => a === body['action']);
  if (action === undefined) {
    throw badRequest(ApiErrorCode.BadRequest, `"action" must be one of ${BULK_ACTIONS.join(', ')}`);
  }
  const ids = body['ids'];
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_BULK_JOBS) {
    throw badRequest(ApiErrorCode.BadRequest, `"ids" must be an array of 1 to ${MAX_BULK_JOBS} job ids`);
  }
  const parsed = ids.map((id: unknown) => {
    if (typeof id !== 'string') throw badRequest(ApiErrorCode.InvalidId, 'every job id must be a string');
    return parseJobId(id);
  });
  return { action, ids: [...new Set(parsed)] };
}

/** Longest rate-limit key the API accepts. */
const MAX_LIMIT_KEY = 256;

export function parseLimitKey(raw: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (raw.length === 0 || raw.length > MAX_LIMIT_KEY || /[\u0000-\u001f\u007f]/.test(raw)) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `invalid rate-limit key ${JSON.stringify(raw.slice(0, 64))}: use 1-${MAX_LIMIT_KEY} printable characters`,
    );
  }
  return raw;
}

/** Largest store-wide `allowed` the API sets. */
export const MAX_LIMIT_ALLOWED = 1_000_000;
/** Longest store-wide period the API sets: one day. */
export const MAX_LIMIT_PERIOD_MS = 86_400_000;

/** `{ "allowed": n, "periodMs": ms }` to set store-wide numbers, or `{ "clear": true }` (→ `null`). */
export function parseLimitNumbers(
  body: Record<string, unknown>,
): { readonly allowed: number; readonly periodMs: number } | null {
  if (body['clear'] === true) {
    if ('allowed' in body || 'periodMs' in body) {
      throw badRequest(
        ApiErrorCode.BadRequest,
        'send { "allowed", "periodMs" } or { "clear": true }, not both',
      );
    }
    return null;
  }
  const { allowed, periodMs } = body;
  if (
    typeof allowed !== 'number' ||
    !Number.isInteger(allowed) ||
    allowed < 1 ||
    allowed > MAX_LIMIT_ALLOWED
  ) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `"allowed" must be an integer from 1 to ${MAX_LIMIT_ALLOWED} (or send { "clear": true })`,
    );
  }
  if (
    typeof periodMs !== 'number' ||
    !Number.isInteger(periodMs) ||
    periodMs < 1 ||
    periodMs > MAX_LIMIT_PERIOD_MS
  ) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `"periodMs" must be an integer from 1 to ${MAX_LIMIT_PERIOD_MS}`,
    );
  }
  return { allowed, periodMs };
}

/**
 * The body of `PUT api/queues/:queue/retention`: `{ "finished"?: Retention | null, "dead"?: Retention | null }`,
 * at least one of them; `null` goes back to the store's default. Checked by the core's own rules, or a 400.
 */
export function parseRetentionChange(body: Record<string, unknown>): {
  readonly finished?: Retention | null;
  readonly dead?: Retention | null;
} {
  const extra = Object.keys(body).filter((k) => k !== 'finished' && k !== 'dead');
  if (extra.length > 0) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')}: send "finished" and/or "dead"`,
    );
  }
  if (body['finished'] === undefined && body['dead'] === undefined) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      'send "finished" and/or "dead" (a retention, or null for the default)',
    );
  }
  const read = (field: 'finished' | 'dead'): Retention | null | undefined => {
    const value = body[field];
    if (value === undefined || value === null) return value;
    try {
      assertRetention(value, field);
    } catch (err) {
      throw badRequest(ApiErrorCode.BadRequest, (err as Error).message);
    }
    return value;
  };
  const finished = read('finished');
  const dead = read('dead');
  return {
    ...(finished === undefined ? {} : { finished }),
    ...(dead === undefined ? {} : { dead }),
  };
}

/** A group name as the core accepts it (1-256 characters), or a 400. */
export function parseGroupName(raw: string): string {
  try {
    assertGroupName(raw);
  } catch (err) {
    throw badRequest(ApiErrorCode.BadRequest, (err as Error).message);
  }
  return raw;
}

/** Longest delay the add-job form accepts: one year. */
const MAX_ADD_DELAY_MS = 365 * 24 * 3_600_000;

/**
 * `{ "data": …, "name"?, "group"?, "priority"?, "delayMs"?, "maxAttempts"? }`: a job to add, or a
 * 400. `data` is any JSON value (the queue's schema, if any, is checked by the store at add).
 */
export function parseAddJob(body: Record<string, unknown>): { data: unknown; options: JobOptions } {
  if (!('data' in body)) {
    throw badRequest(ApiErrorCode.BadRequest, 'send { "data": <the payload>, "group"?: "…", … }');
  }
  const known = new Set(['data', 'name', 'group', 'priority', 'delayMs', 'maxAttempts']);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw badRequest(
      ApiErrorCode.BadRequest,
      `unknown field ${JSON.stringify(unknown[0])}: use data, name, group, priority, delayMs, maxAttempts`,
    );
  }
  const text = (key: string, max: number): string | undefined => {
    const value = body[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' || value.length > max) {
      throw badRequest(ApiErrorCode.BadRequest, `"${key}" must be a string of at most ${max} characters`);
    }
    return value;
  };
  const integer = (key: string, min: number, max: number): number | undefined => {
    const value = body[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw badRequest(ApiErrorCode.BadRequest, `"${key}" must be an integer from ${min} to ${max}`);
    }
    return value;
  };
  const name = text('name', 256);
  const group = text('group', 256);
  if (group !== undefined) parseGroupName(group);
  const priority = integer('priority', 0, 1_000_000);
  const delayMs = integer('delayMs', 0, MAX_ADD_DELAY_MS);
  const maxAttempts = integer('maxAttempts', 1, 1000);
  return {
    data: body['data'],
    options: {
      ...(name === undefined ? {} : { name }),
      ...(group === undefined ? {} : { group }),
      ...(priority === undefined ? {} : { priority }),
      ...(delayMs === undefined ? {} : { delayMs }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    },
  };
}

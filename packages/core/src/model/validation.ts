import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { MAX_PRIORITY, type JobUpdate, type NewJob, type Retention, type TraceContext } from './job';
import { MAX_LOG_LINE_CHARS, MAX_PROGRESS_BYTES } from './limits';
import {
  InvalidArgumentError,
  PayloadNotSerializableError,
  PayloadTooLargeError,
  PayloadValidationError,
  type SchemaViolation,
} from './errors';

/** Checks a payload against a queue's JSON schema; returns the violations (empty when valid). */
export type PayloadValidator = (data: unknown) => readonly SchemaViolation[];

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const compiled = new WeakMap<object, ValidateFunction>();

/**
 * Compiles a JSON schema (draft-07, with `ajv-formats`) once and returns a validator. Throws
 * {@link InvalidArgumentError} if the schema itself is invalid.
 */
export function compileSchema(schema: object): PayloadValidator {
  let validate = compiled.get(schema);
  if (!validate) {
    try {
      validate = ajv.compile(schema);
    } catch (err) {
      throw new InvalidArgumentError(`invalid JSON schema: ${(err as Error).message}`, { cause: err });
    }
    compiled.set(schema, validate);
  }
  const fn = validate;
  return (data) => (fn(data) ? [] : (fn.errors ?? []).map(toViolation));
}

function toViolation(e: ErrorObject): SchemaViolation {
  const extra =
    e.keyword === 'additionalProperties'
      ? ` (${String((e.params as { additionalProperty?: unknown }).additionalProperty)})`
      : '';
  return { path: e.instancePath, message: `${e.message ?? 'is invalid'}${extra}`, keyword: e.keyword };
}

/** Throws {@link PayloadValidationError} when `data` does not match. */
export function assertValid(queue: string, validator: PayloadValidator | undefined, data: unknown): void {
  if (!validator) return;
  const violations = validator(data);
  if (violations.length > 0) throw new PayloadValidationError(queue, violations);
}

/** Default cap on a payload's JSON size: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Encodes a payload as JSON and checks its size, so what a store keeps is exactly what a worker will
 * read. Throws {@link PayloadNotSerializableError} or {@link PayloadTooLargeError}.
 */
export function encodePayload(queue: string, data: unknown, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): string {
  let json: string | undefined;
  try {
    json = (JSON.stringify as (value: unknown) => string | undefined)(data);
  } catch (err) {
    throw new PayloadNotSerializableError(queue, { cause: err });
  }
  if (json === undefined) throw new PayloadNotSerializableError(queue);
  // Cheap upper bound first: a UTF-16 string of n units never needs more than 3n UTF-8 bytes.
  if (json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > maxBytes) throw new PayloadTooLargeError(queue, bytes, maxBytes);
  }
  return json;
}

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const PARTITION_NAME = /^([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})~([1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$/;

/** The most partitions a queue may have (see `PartitionedStore`). */
export const MAX_PARTITIONS = 1024;

/** A partition of a partitioned queue, read from its name. */
export interface PartitionName {
  /** The partitioned queue's own name. */
  readonly queue: string;
  readonly index: number;
  readonly count: number;
}

/**
 * The name of partition `index` of `count` of `queue`: `<queue>~<count>.<index>` (`~` is not allowed
 * in a queue's own name, so no queue meets a partition's keys). A store keeps each partition as a
 * queue of that name; the count is part of the name, so partitions of another count never mix.
 */
export function partitionName(queue: string, index: number, count: number): string {
  assertQueueName(queue);
  if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS)
    throw new InvalidArgumentError(`partition count must be 1…${MAX_PARTITIONS}, got ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new InvalidArgumentError(`partition index must be 0…${count - 1}, got ${index}`);
  return `${queue}~${count}.${index}`;
}

/** The partition a queue name stands for, or `undefined` for a queue's own name. */
export function parsePartitionName(name: string): PartitionName | undefined {
  const match = PARTITION_NAME.exec(name);
  if (!match) return undefined;
  const count = Number(match[2]);
  const index = Number(match[3]);
  if (count > MAX_PARTITIONS || index >= count) return undefined;
  return { queue: match[1] as string, index, count };
}

/**
 * Queue names: 1–128 characters from `A–Z a–z 0–9 _ . : -`, starting with a letter or digit; or a
 * partition's name (see {@link partitionName}).
 */
export function assertQueueName(queue: string): void {
  if (!QUEUE_NAME.test(queue) && parsePartitionName(queue) === undefined) {
    throw new InvalidArgumentError(
      `invalid queue name ${JSON.stringify(queue)}: use 1-128 characters from A-Z a-z 0-9 _ . : - starting with a letter or digit`,
    );
  }
}

/** The largest `cost` a job may carry. */
export const MAX_COST = 1_000_000;

/** The longest `group` name a job may carry, in characters. */
export const MAX_GROUP_LENGTH = 256;

/** The largest weight a group may be given (`Store.setGroupWeight`). */
export const MAX_GROUP_WEIGHT = 1000;

/** Checks a group's weight (see `Store.setGroupWeight`); throws `InvalidArgumentError`. */
export function assertGroupWeight(weight: unknown): asserts weight is number {
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > MAX_GROUP_WEIGHT) {
    throw new InvalidArgumentError(
      `a group's weight must be an integer from 1 to ${MAX_GROUP_WEIGHT}, got ${String(weight)}`,
    );
  }
}

/** Checks a job's `group` (see `JobOptions.group`); throws `InvalidArgumentError`. */
export function assertGroupName(group: unknown): asserts group is string {
  if (typeof group !== 'string' || group.length === 0 || group.length > MAX_GROUP_LENGTH) {
    const shown = typeof group === 'string' ? `a string of ${group.length} characters` : typeof group;
    throw new InvalidArgumentError(
      `group must be a non-empty string of at most ${MAX_GROUP_LENGTH} characters, got ${shown}`,
    );
  }
}

/** Checks a job's options; every store calls this so every store rejects the same input. */
export function validateNewJob(job: NewJob): void {
  assertQueueName(job.queue);
  if (
    job.priority !== undefined &&
    (!Number.isInteger(job.priority) || job.priority < 0 || job.priority > MAX_PRIORITY)
  ) {
    throw new InvalidArgumentError(
      `priority must be an integer from 0 to ${MAX_PRIORITY}, got ${job.priority}`,
    );
  }
  if (job.maxAttempts !== undefined && (!Number.isInteger(job.maxAttempts) || job.maxAttempts < 1)) {
    throw new InvalidArgumentError(`maxAttempts must be an integer ≥ 1, got ${job.maxAttempts}`);
  }
  if (job.delayMs !== undefined && !(job.delayMs >= 0)) {
    throw new InvalidArgumentError(`delayMs must be ≥ 0, got ${job.delayMs}`);
  }
  if (job.runAt !== undefined && !Number.isFinite(job.runAt)) {
    throw new InvalidArgumentError(`runAt must be a finite epoch time in ms, got ${job.runAt}`);
  }
  if (job.timeoutMs !== undefined && !(job.timeoutMs > 0)) {
    throw new InvalidArgumentError(`timeoutMs must be > 0, got ${job.timeoutMs}`);
  }
  if (job.cost !== undefined && (!Number.isInteger(job.cost) || job.cost < 1 || job.cost > MAX_COST)) {
    throw new InvalidArgumentError(`cost must be an integer from 1 to ${MAX_COST}, got ${job.cost}`);
  }
  if (job.unique && (typeof job.unique.key !== 'string' || !(job.unique.ttlMs > 0))) {
    throw new InvalidArgumentError('unique needs a string key and ttlMs > 0');
  }
  if (job.group !== undefined) assertGroupName(job.group);
  if (job.retention !== undefined) assertRetention(job.retention, 'retention');
  if (job.trace !== undefined) assertTraceContext(job.trace);
  if (job.id !== undefined && (typeof job.id !== 'string' || job.id.length === 0 || job.id.length > 256)) {
    throw new InvalidArgumentError('id must be a non-empty string of at most 256 characters');
  }
}

/**
 * Checks a retention; `what` names it in the error (`"retention"`, `"deadRetention"`). Counts are
 * integers ≥ 0 (`0` keeps none), ages integers ≥ 1 ms.
 */
export function assertRetention(retention: unknown, what: string): asserts retention is Retention {
  const bad = (detail: string): never => {
    throw new InvalidArgumentError(`${what}: ${detail}, got ${JSON.stringify(retention)}`);
  };
  if (typeof retention !== 'object' || retention === null || Array.isArray(retention)) {
    return bad("expected { keep: 'none' | 'all' | 'count' | 'age', … }");
  }
  const r = retention as Record<string, unknown>;
  const count = (): void => {
    const c = r['count'];
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) bad('count must be an integer ≥ 0');
  };
  const age = (required: boolean): void => {
    const a = r['ageMs'];
    if (a === undefined && !required) return;
    if (typeof a !== 'number' || !Number.isInteger(a) || a < 1) bad('ageMs must be an integer ≥ 1 (ms)');
  };
  const only = (...keys: string[]): void => {
    const extra = Object.keys(r).filter((k) => k !== 'keep' && !keys.includes(k));
    if (extra.length > 0) bad(`unknown field ${extra.map((k) => `"${k}"`).join(', ')}`);
  };
  switch (r['keep']) {
    case 'none':
    case 'all':
      only();
      return;
    case 'count':
      only('count', 'ageMs');
      count();
      age(false);
      return;
    case 'age':
      only('ageMs');
      age(true);
      return;
    default:
      bad("keep must be 'none', 'all', 'count' or 'age'");
  }
}

/** A job update as stores keep it: the progress as JSON (if given) and the log lines, cut to size. */
export interface EncodedJobUpdate {
  readonly progressJson?: string;
  readonly lines: readonly string[];
}

/**
 * Checks and encodes a job update; every store calls this, so every store refuses the same input:
 * progress must be a finite number or a JSON object or array of at most `MAX_PROGRESS_BYTES`, log
 * lines strings (each cut to `MAX_LOG_LINE_CHARS`).
 */
export function encodeJobUpdate(update: JobUpdate): EncodedJobUpdate {
  if (typeof (update as unknown) !== 'object' || (update as unknown) === null) {
    throw new InvalidArgumentError('a job update must be an object: { progress?, log? }');
  }
  let progressJson: string | undefined;
  const progress = update.progress;
  if (progress !== undefined) {
    if (typeof progress === 'number') {
      if (!Number.isFinite(progress))
        throw new InvalidArgumentError(`progress must be finite, got ${progress}`);
      progressJson = JSON.stringify(progress);
    } else if (typeof progress === 'object' && progress !== null) {
      try {
        progressJson = JSON.stringify(progress);
      } catch (error) {
        throw new InvalidArgumentError(`progress cannot be encoded as JSON: ${(error as Error).message}`);
      }
      const bytes = Buffer.byteLength(progressJson, 'utf8');
      if (bytes > MAX_PROGRESS_BYTES) {
        throw new InvalidArgumentError(
          `progress is ${bytes} bytes of JSON; at most ${MAX_PROGRESS_BYTES} are kept`,
        );
      }
    } else {
      throw new InvalidArgumentError(
        `progress must be a number or a JSON object or array, got ${progress === null ? 'null' : typeof progress}`,
      );
    }
  }
  const log = update.log ?? [];
  if (!Array.isArray(log) || log.some((line) => typeof line !== 'string')) {
    throw new InvalidArgumentError('log lines must be strings');
  }
  const lines = log.map((line: string) =>
    line.length > MAX_LOG_LINE_CHARS ? `${line.slice(0, MAX_LOG_LINE_CHARS - 1)}…` : line,
  );
  return { ...(progressJson === undefined ? {} : { progressJson }), lines };
}

/**
 * Checks the filters of listing options; both stores call this, so both refuse the same input: name
 * a non-empty string, from and to finite times with from ≤ to. (Offset and limit are clamped to
 * integers ≥ 0, as they always were.)
 */
export function assertListOptions(options: {
  readonly name?: string;
  readonly from?: number;
  readonly to?: number;
}): void {
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new InvalidArgumentError(`name must be a non-empty string, got ${JSON.stringify(options.name)}`);
  }
  for (const field of ['from', 'to'] as const) {
    const v = options[field];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new InvalidArgumentError(`${field} must be a finite time in epoch ms, got ${String(v)}`);
    }
  }
  if (options.from !== undefined && options.to !== undefined && options.from > options.to) {
    throw new InvalidArgumentError(`from (${options.from}) is after to (${options.to})`);
  }
}

/** The parts of a W3C `traceparent` header. */
export interface Traceparent {
  readonly version: string;
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** The parent span id: 16 lowercase hex digits, not all zero. */
  readonly parentId: string;
  /** Trace flags as a number (bit 0: sampled). */
  readonly flags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Reads a W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header); `undefined`
 * when it is not one: version `ff`, an all-zero trace or parent id, or anything after the four
 * fields in version `00` (later versions may append fields, which are ignored).
 */
export function parseTraceparent(traceparent: string): Traceparent | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (!m) return undefined;
  const [, version = '', traceId = '', parentId = '', flags = '', rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { version, traceId, parentId, flags: parseInt(flags, 16) };
}

const TRACESTATE_MEMBER =
  /^(?:[a-z0-9][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** Checks a job's trace context (see {@link TraceContext}); throws `InvalidArgumentError`. */
export function assertTraceContext(trace: unknown): asserts trace is TraceContext {
  if (typeof trace !== 'object' || trace === null || Array.isArray(trace)) {
    throw new InvalidArgumentError('trace must be an object: { traceparent, tracestate? }');
  }
  const { traceparent, tracestate, ...extra } = trace as Record<string, unknown>;
  const unknownFields = Object.keys(extra);
  if (unknownFields.length > 0) {
    throw new InvalidArgumentError(
      `trace: unknown field ${unknownFields.map((k) => `"${k}"`).join(', ')} (expected traceparent, tracestate)`,
    );
  }
  if (typeof traceparent !== 'string' || parseTraceparent(traceparent) === undefined) {
    throw new InvalidArgumentError(
      'trace.traceparent must be a W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, ' +
        `lowercase, ids not all zero; got ${((JSON.stringify as (v: unknown) => string | undefined)(traceparent) ?? 'undefined').slice(0, 80)}`,
    );
  }
  if (tracestate === undefined) return;
  if (typeof tracestate !== 'string' || tracestate.length > 512) {
    throw new InvalidArgumentError('trace.tracestate must be a string of at most 512 characters');
  }
  const members = tracestate.split(',').map((m) => m.trim());
  const bad = members.find((m) => m !== '' && !TRACESTATE_MEMBER.test(m));
  if (bad !== undefined || members.filter((m) => m !== '').length > 32) {
    throw new InvalidArgumentError(
      'trace.tracestate must be at most 32 comma-separated key=value entries (W3C tracestate)' +
        (bad === undefined ? '' : `; bad entry ${JSON.stringify(bad.slice(0, 80))}`),
    );
  }
}

/** A permit cap of at least 0, a count of at least 0 and a lease of at least 1 ms, whole numbers. */
export function assertPermitArgs(max: number, count: number, leaseMs: number): void {
  if (!Number.isInteger(max) || max < 0 || !Number.isInteger(count) || count < 0 || !(leaseMs >= 1)) {
    throw new InvalidArgumentError(
      `permits need a whole max ≥ 0, count ≥ 0 and leaseMs ≥ 1, got ${max}, ${count}, ${leaseMs}`,
    );
  }
}

/** Units asked of `Store.grantLimit`: a whole number ≥ 0 (0: only give refunds back). */
export function assertGrantUnits(units: number): void {
  if (!Number.isInteger(units) || units < 0)
    throw new InvalidArgumentError(`grantLimit needs units ≥ 0, got ${units}`);
}

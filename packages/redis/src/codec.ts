import {
  DEFAULT_DEAD_RETENTION,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETENTION,
  JobState,
  MAX_ATTEMPT_ERRORS,
  OutcomeKind,
  type AttemptError,
  type ErrorInfo,
  type JobEvent,
  type JobProgressEvent,
  type JobRecord,
  type NewJob,
  type QueueSettings,
  type ReservedJob,
  type Retention,
  type Settlement,
  type TraceContext,
} from '@sluice/core';
import { encodePayload, HeldMark, StoreText } from '@sluice/core/internal';
import { RedisScriptError } from './errors';

/**
 * Encoding between the store's values and the strings the Lua scripts read and answer.
 *
 * Job records are hashes with one-letter fields, and only the fields that differ from their defaults
 * are stored (a queued job with no options is `d` + `c`):
 *
 * | field | meaning | default |
 * |---|---|---|
 * | `d` | payload JSON, exactly as encoded at add | — |
 * | `c` | created at (store ms) | — |
 * | `n` | name | the queue name |
 * | `p` | priority | 0 |
 * | `r` | run-at | `c` |
 * | `y` | became ready at (fill waits) | `r` |
 * | `m` | max attempts | `DEFAULT_MAX_ATTEMPTS` (5) |
 * | `a` | attempts started | 0 |
 * | `t` / `u` / `R` | timeout / unique key / retention | none |
 * | `q` | cost: units of a per-job rate limit | 1 |
 * | `T` | trace context: traceparent, then a space and the tracestate if any | none |
 * | `G` | group (`JobOptions.group`) | none |
 * | `H` | 1 while a retried job of a group keeps its group slot through its backoff | none |
 * | `k` / `g` | token of the last lease (stale once `s` is set) / lease start | none |
 * | `w` | worker holding the last lease (`ReserveOptions.workerId`) | none |
 * | `f` / `o` / `x` / `s` | finished at / result JSON / reason / terminal state (c, x, d) | none |
 * | `en`, `e<N>` | error count, N-th attempt error (JSON) | none |
 *
 * Reserve and settle answers are decoded here too; the payload is parsed on the worker, never in Redis.
 */

/** Values of one settlement in an `S` entry of a settle call, after the `S` (see `lua/settle-8.lua`). */
export const SETTLE_FIELDS = 6;

/** `'n'` (none), `'k'` (all), `'c<count>'`, `'a<ms>'` or `'c<count>a<ms>'`; `''` for none given. */
export function encodeRetention(retention: Retention | undefined): string {
  if (!retention) return '';
  switch (retention.keep) {
    case 'none':
      return 'n';
    case 'all':
      return 'k';
    case 'count': {
      const count = `c${Math.max(0, Math.floor(retention.count))}`;
      return retention.ageMs === undefined ? count : `${count}a${Math.max(1, Math.floor(retention.ageMs))}`;
    }
    case 'age':
      return `a${Math.max(1, Math.floor(retention.ageMs))}`;
  }
}

/**
 * The defaults, limits and texts the scripts take as arguments rather than keeping copies: those of
 * `@sluice/core`, which `MemoryStore` uses too. Each script's header says which it takes.
 */
export const SCRIPT_DEFAULTS = {
  /** The queue retention when the queue sets none (settle, cancel, stats). */
  defaultRetention: encodeRetention(DEFAULT_RETENTION),
  /** The dead retention when the queue sets none (settle, recover, stats). */
  defaultDeadRetention: encodeRetention(DEFAULT_DEAD_RETENTION),
  /** Max attempts of a record without field `m` (recover). */
  defaultMaxAttempts: DEFAULT_MAX_ATTEMPTS,
  /** Attempt errors kept per job (settle, recover). */
  maxErrors: MAX_ATTEMPT_ERRORS,
  /** Reason of a job cancelled while it waited (cancel). */
  cancelledBeforeRun: StoreText.CancelledBeforeRun,
  /** Reason template of a job dead-lettered by lease recovery (recover). */
  leaseExpiredReason: StoreText.LeaseExpired,
  /** Template of the error recorded by lease recovery, as the JSON the script stores (recover). */
  leaseExpiredErrorJson: JSON.stringify({
    name: StoreText.LeaseExpiredErrorName,
    message: StoreText.LeaseExpiredErrorMessage,
  }),
} as const;

/**
 * The enqueue values of one (validated) job, appended to `args`: the number of options it sets, its
 * payload JSON (encoded here unless it already is), then a letter and a value per option (see
 * `lua/enqueue-5.lua`). A job with every default is two values.
 */
export function encodeNewJobInto(args: (string | number)[], job: NewJob): void {
  const at = args.length;
  args.push(0, job.json ?? encodePayload(job.queue, job.data, Number.MAX_SAFE_INTEGER));
  if (job.id !== undefined) args.push('i', job.id);
  if (job.name !== undefined && job.name !== job.queue) args.push('n', job.name);
  if (job.priority !== undefined && job.priority !== 0) args.push('p', job.priority);
  if (job.delayMs !== undefined) args.push('D', job.delayMs);
  if (job.runAt !== undefined) args.push('r', job.runAt);
  if (job.maxAttempts !== undefined && job.maxAttempts !== DEFAULT_MAX_ATTEMPTS)
    args.push('m', job.maxAttempts);
  if (job.timeoutMs !== undefined) args.push('t', job.timeoutMs);
  if (job.unique) args.push('u', job.unique.key, 'U', Math.max(1, Math.ceil(job.unique.ttlMs)));
  const retention = encodeRetention(job.retention);
  if (retention !== '') args.push('R', retention);
  if (job.cost !== undefined && job.cost !== 1) args.push('q', job.cost);
  if (job.trace) args.push('T', encodeTrace(job.trace));
  if (job.group !== undefined) args.push('G', job.group);
  args[at] = (args.length - at - 2) / 2;
}

/** The enqueue values of one (validated) job: {@link encodeNewJobInto} on its own. */
export function encodeNewJob(job: NewJob): (string | number)[] {
  const args: (string | number)[] = [];
  encodeNewJobInto(args, job);
  return args;
}

/** A trace context as the record keeps it (field `T`): the traceparent, a space, the tracestate. */
export function encodeTrace(trace: TraceContext | undefined): string {
  if (!trace) return '';
  return trace.tracestate === undefined ? trace.traceparent : `${trace.traceparent} ${trace.tracestate}`;
}

/** The trace context of a record's field `T` (see {@link encodeTrace}). */
export function decodeTrace(value: string | undefined): TraceContext | undefined {
  if (value === undefined || value === '') return undefined;
  const space = value.indexOf(' ');
  return space < 0
    ? { traceparent: value }
    : { traceparent: value.slice(0, space), tracestate: value.slice(space + 1) };
}

/** JSON of a handler's result; `''` for `undefined` or a value JSON cannot encode (nothing is kept). */
export function encodeResult(result: unknown): string {
  if (result === undefined) return '';
  try {
    // `undefined` for functions and symbols, whatever the declared type says.
    const json = JSON.stringify(result) as string | undefined;
    return json ?? '';
  } catch {
    return '';
  }
}

function encodeError(error: ErrorInfo | undefined): string {
  if (!error) return '';
  const info: Record<string, string> = { name: error.name, message: error.message };
  if (error.stack !== undefined) info['stack'] = error.stack;
  if (error.code !== undefined) info['code'] = error.code;
  return JSON.stringify(info);
}

/** Whole milliseconds ≥ 0 (the store's clock has millisecond resolution). */
export function delayOf(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
}

/**
 * What a settle needs of a leased job's record, as the lease found it: `<a>|<p>|<R>|<G>` (attempts
 * ended, priority, own retention, group; empty where the record has none). None of these fields
 * changes while a lease holds the job, so the settle script takes them from here instead of reading
 * the record (`lua/settle-8.lua`).
 */
export function settleHint(f: JobFields): string {
  if (f.a === undefined && f.p === undefined && f.R === undefined && f.G === undefined) return DEFAULT_HINT;
  return `${f.a ?? ''}|${f.p ?? ''}|${f.R ?? ''}|${f.G ?? ''}`;
}

/** The {@link settleHint} of a first attempt at the default priority, of no group and no own retention. */
export const DEFAULT_HINT = '|||';

/**
 * The settle values of one settlement: id, token, kind (its {@link OutcomeKind} name, as the script
 * receives it), two values that depend on the kind, and the job's {@link settleHint} (`''`: none
 * known here, the script reads the record). The token is sent as `''` when it is `previousToken`,
 * the token of the settlement sent just before it in the same call (the jobs of one lease share
 * theirs): a settle of a lease's jobs does not repeat it for each.
 */
export function encodeSettlement(s: Settlement, hint = '', previousToken?: string): string[] {
  const token = s.token === previousToken ? '' : s.token;
  switch (s.kind) {
    case OutcomeKind.Completed:
      return [s.id, token, s.kind, encodeResult(s.result), '', hint];
    case OutcomeKind.Retrying:
      return [s.id, token, s.kind, String(delayOf(s.delayMs)), encodeError(s.error), hint];
    case OutcomeKind.Dead:
      return [s.id, token, s.kind, s.reason, encodeError(s.error), hint];
    case OutcomeKind.Snoozed:
      return [s.id, token, s.kind, String(delayOf(s.delayMs)), snoozeFlags(s), hint];
    case OutcomeKind.Cancelled:
      return [s.id, token, s.kind, s.reason, '', hint];
  }
}

/**
 * Appends the entries of a settle call for `settlements` to `args` (see `lua/settle-8.lua`):
 * consecutive jobs of one lease completed with no result and the hint {@link DEFAULT_HINT} (most
 * jobs) as one entry `C, token, k, ids`, their `k` ids joined by NUL bytes in one value (an id
 * holding a NUL byte goes as `S`); any other settlement as `S` and its {@link encodeSettlement}
 * values. `hintOf` is asked once per settlement, in order. A token is sent as `''` when it is the
 * one of the settlement before it.
 *
 * One value per run rather than per job: a client encodes every value of a command with a length
 * header of its own, which cost the worker more than the script's split of the joined ids costs
 * Redis; the script also writes the joined value as the run's event as it is.
 */
export function encodeSettlements(
  settlements: readonly Settlement[],
  hintOf: (s: Settlement) => string,
  args: (string | number)[],
): void {
  let previousToken: string | undefined;
  // Where the open `C` entry keeps its count in `args` (-1: the last entry is not one), and its ids
  // (joined once the entry ends).
  let run = -1;
  const runIds: string[] = [];
  const endRun = (): void => {
    if (run >= 0) args[run + 1] = runIds.join('\0');
    run = -1;
  };
  for (const s of settlements) {
    const hint = hintOf(s);
    if (
      s.kind === OutcomeKind.Completed &&
      s.result === undefined &&
      hint === DEFAULT_HINT &&
      !s.id.includes('\0')
    ) {
      if (run >= 0 && s.token === previousToken) {
        args[run] = (args[run] as number) + 1;
      } else {
        endRun();
        args.push('C', s.token === previousToken ? '' : s.token, 1, '');
        run = args.length - 2;
        runIds.length = 0;
      }
      runIds.push(s.id);
    } else {
      endRun();
      args.push('S');
      for (const v of encodeSettlement(s, hint, previousToken)) args.push(v);
    }
    previousToken = s.token;
  }
  endRun();
}

/**
 * The codes a settle answers, one character per settlement in the order sent: `'1'` applied, `'0'`
 * not found, `'2'` lease lost. A string of another length or with another character is a
 * malformed reply.
 */
export function readSettleCodes(r: Reply, count: number): string {
  const codes = r.str();
  if (codes.length !== count || !/^[012]*$/.test(codes)) {
    throw r.malformed(`expected ${count} settle codes, got ${describe(codes)}`);
  }
  return codes;
}

// ------------------------------------------------------------------ replies

/**
 * A reply from a script, checked as it is read: anything that is not what the script documents
 * throws a {@link RedisScriptError} (code `ERR_SLUICE_SCRIPT`) naming the script.
 */
export class Reply {
  private i = 0;
  constructor(
    private readonly values: readonly unknown[],
    /** The script that answered (its versioned name when known). */
    readonly script: string,
    readonly queue?: string,
  ) {}

  static of(value: unknown, script: string, queue?: string): Reply {
    if (!Array.isArray(value)) {
      throw new RedisScriptError(script, `expected an array reply, got ${describe(value)}`, {
        ...(queue === undefined ? {} : { queue }),
      });
    }
    return new Reply(value, script, queue);
  }

  /** The error for a reply that does not say what the script documents. */
  malformed(message: string): RedisScriptError {
    return new RedisScriptError(this.script, `malformed reply: ${message}`, {
      ...(this.queue === undefined ? {} : { queue: this.queue }),
    });
  }

  get done(): boolean {
    return this.i >= this.values.length;
  }

  raw(): unknown {
    if (this.i >= this.values.length) throw this.malformed('too short');
    return this.values[this.i++];
  }

  int(): number {
    const v = this.raw();
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
    if (!Number.isFinite(n)) throw this.malformed(`expected a number, got ${describe(v)}`);
    return n;
  }

  str(): string {
    const v = this.raw();
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw this.malformed(`expected a string, got ${describe(v)}`);
  }

  /** A string, or `undefined` for a nil reply. */
  opt(): string | undefined {
    const v = this.raw();
    if (v === null || v === undefined) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw this.malformed(`expected a string or nil, got ${describe(v)}`);
  }
}

/** A reply value for an error message: its type, and its text when short. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'a long string';
  if (typeof value === 'number') return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * An integer answer of a script (a count, a code, a time), or a {@link RedisScriptError} for anything
 * else.
 */
export function readInt(value: unknown, script: string, queue?: string): number {
  return new Reply([value], script, queue).int();
}

const num = (v: string | undefined, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
};

/** Reads `count` field/value pairs (a record as HGETALL answers it). */
export function readFields(r: Reply): Map<string, string> {
  const count = r.int();
  const f = new Map<string, string>();
  for (let i = 0; i < count; i += 2) f.set(r.str(), r.str());
  return f;
}

/** The fields of a job record a worker reads (see `enqueue-5.lua`); the rest are not needed to run it. */
export interface JobFields {
  /** Payload JSON. */
  d?: string;
  /** Created at (store ms). */
  c?: string;
  /** Name. */
  n?: string;
  /** Attempts counted before this lease. */
  a?: string;
  /** Max attempts. */
  m?: string;
  /** Priority. */
  p?: string;
  /** Run at (store ms). */
  r?: string;
  /** Timeout ms. */
  t?: string;
  /** Unique key. */
  u?: string;
  /** Cost (units of a per-job rate limit). */
  q?: string;
  /** Trace context. */
  T?: string;
  /** Group. */
  G?: string;
  /** The job's own retention (`encodeRetention`). */
  R?: string;
}

/**
 * Reads a record as HGETALL answers it (a count, then field / value pairs), as a handoff message
 * carries each job, keeping only the fields of {@link JobFields}.
 */
export function readJobFields(r: Reply): JobFields {
  const count = r.int();
  const f: JobFields = {};
  for (let i = 0; i < count; i += 2) keepJobField(f, r.str(), r.str());
  return f;
}

/**
 * Reads the jobs a reserve leased as it answers them (`lua/reserve-6.lua`), in one of two forms.
 *
 * When every record is compact, the number -1 and two strings: the ids joined by NUL bytes, and
 * the compact values (`lua/includes/compact.lua`) joined by NUL bytes in the same order, so 4
 * strings per job, `c`, created-at, `d` and the data. The script looks at no value; this side
 * checks the shape: an id holding a NUL byte leaves `ids` `undefined` (the caller reads the lease's
 * ids by themselves), and values that do not split into `c`, created-at, `d`, data for every job
 * (one written by something else, a payload holding a NUL byte) leave every job's `fields`
 * `undefined` (the caller reads the records again by themselves, {@link jobFieldsOf} and
 * {@link compactFieldsOf}, and dead-letters the malformed ones). Not told apart from good values:
 * two values of other shapes in one answer, one short of NUL bytes and a later one with as many
 * more, whose strings fall into place; Sluice writes neither.
 *
 * Otherwise the number of strings that follow and one string of them joined by NUL bytes: for each
 * of the `count` jobs in order, its id, the number n of its record's field and value strings, then
 * those n strings. Keeps only the fields of {@link JobFields} (one small object of a fixed shape per
 * job). When the string splits into more strings than it has (an id, a field or a value holds a NUL
 * byte), `ids` is `undefined` and so is every job's `fields`, as above.
 */
export function readLeasedRecords(r: Reply, count: number): LeasedRecords {
  const total = r.int();
  if (total === -1) return readCompactRecords(r, count);
  const joined = r.str();
  const fields = new Array<JobFields | undefined>(count);
  if (count === 0 && total === 0 && joined === '') return { ids: [], fields };
  const parts = joined.split('\0');
  if (parts.length > total) return { ids: undefined, fields };
  if (parts.length !== total) {
    throw r.malformed(`${count} jobs of ${total} strings joined by NUL split into ${parts.length}`);
  }
  const ids = new Array<string>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const head = parts[at + 1];
    const n = head === '4' ? 4 : Number(head);
    if (!(Number.isInteger(n) && n >= 0 && n % 2 === 0 && at + 2 + n <= total)) {
      throw r.malformed(`job ${i + 1} of ${count} claims ${String(head)} strings`);
    }
    ids[i] = parts[at] as string;
    at += 2;
    if (n === 4 && parts[at] === 'c' && parts[at + 2] === 'd') {
      // A job added with every default (a compact record): one object literal, so every such job's
      // fields share one shape, and the reads of them stay monomorphic.
      fields[i] = { c: parts[at + 1] as string, d: parts[at + 3] as string };
      at += 4;
      continue;
    }
    const f: JobFields = {};
    for (const end = at + n; at < end; at += 2) keepJobField(f, parts[at] as string, parts[at + 1] as string);
    fields[i] = f;
  }
  if (at !== total) throw r.malformed(`${count} jobs hold ${at} of ${total} strings`);
  return { ids, fields };
}

/**
 * The records of a reserve's answer ({@link readLeasedRecords}): the ids (`undefined`: to be read
 * from the lease) and each job's fields (`undefined`: to be read again by itself). In the compact
 * form, when every job's record was read and is of the compact shape, `compact` instead: the
 * values' strings, 4 a job (`c`, created-at, `d`, data; checked), for {@link toCompactJob}, with
 * no object per job for its fields.
 */
export interface LeasedRecords {
  readonly ids: string[] | undefined;
  readonly fields: (JobFields | undefined)[];
  readonly compact?: readonly string[];
}

/** The compact form of {@link readLeasedRecords}, after its -1. */
function readCompactRecords(r: Reply, count: number): LeasedRecords {
  const joinedIds = r.str();
  const joinedValues = r.str();
  const fields = new Array<JobFields | undefined>(count);
  if (count === 0) {
    if (joinedIds !== '' || joinedValues !== '')
      throw r.malformed('no jobs leased, but ids or records answered');
    return { ids: [], fields };
  }
  const ids = joinedIds.split('\0');
  const parts = joinedValues.split('\0');
  if (parts.length < 4 * count) {
    // Fewer strings than 4 per job: a value of another shape. Read by themselves (and the ids with
    // them, when they too do not split into one per job).
    return { ids: ids.length === count ? ids : undefined, fields };
  }
  if (ids.length !== count) return { ids: undefined, fields };
  if (parts.length > 4 * count) return { ids, fields };
  for (let at = 0; at < parts.length; at += 4) {
    if (parts[at] !== 'c' || parts[at + 2] !== 'd') return { ids, fields };
  }
  return { ids, fields, compact: parts };
}

/** The {@link JobFields} of a record read by itself (`HGETALL`, as ioredis answers it). */
export function jobFieldsOf(record: Readonly<Record<string, string>>): JobFields {
  const f: JobFields = {};
  for (const field of Object.keys(record)) keepJobField(f, field, record[field] as string);
  return f;
}

/**
 * The {@link JobFields} of a compact record (`lua/includes/compact.lua`): its value
 * `c<NUL><created-at><NUL>d<NUL><data>`, the data taken whole (NUL bytes and all). A value of another
 * shape is the record `d` = that value alone, which the worker's check dead-letters as malformed.
 */
export function compactFieldsOf(value: string): JobFields {
  const created = value.startsWith('c\0') ? value.indexOf('\0', 2) : -1;
  if (created > 2 && /^\d+$/.test(value.slice(2, created)) && value.startsWith('d\0', created + 1)) {
    return { c: value.slice(2, created), d: value.slice(created + 3) };
  }
  return { d: value };
}

function keepJobField(f: JobFields, field: string, value: string): void {
  switch (field) {
    case 'd':
    case 'c':
    case 'n':
    case 'a':
    case 'm':
    case 'p':
    case 'r':
    case 't':
    case 'u':
    case 'q':
    case 'T':
    case 'G':
    case 'R':
      f[field] = value;
      break;
  }
}

/**
 * `DEFAULT_MAX_ATTEMPTS` read once: an import from another package is a getter of its `exports`
 * (CommonJS), which `toReservedJob` called for every job (1 % of a batch worker's CPU profile).
 */
const defaultMaxAttempts = DEFAULT_MAX_ATTEMPTS;

/** Why a record cannot be a job: field `field` is not a number. */
const notANumber = (field: string): string => `malformed job record: field ${field} is not a number`;

/** Why a record cannot be a job: its payload does not parse (`error`, what `JSON.parse` threw). */
const payloadNotJson = (error: unknown): string =>
  `malformed job record: the payload is not JSON (${(error as Error).message})`;

/**
 * A leased job. Made by `new`, not as an object literal: V8 judges each literal's site by how many
 * of its objects outlive a young collection, and a worker's first reserve (a whole prefetch at once,
 * held through the first collections) made it allocate every later job straight in the old
 * generation, to die there; the young collections then promoted 0.6–1.7 MB each (see `Held` in
 * @sluice/core's runtime/in-flight.ts). The optional properties are set only when the record has
 * them, as before. It extends `HeldMark`, so the field a worker marks a held job with is part of the
 * object from the start, not added in a separate array when the job is first held.
 */
class LeasedJob<T> extends HeldMark implements ReservedJob<T> {
  // Declared only: not own properties of every job, as they were not on the literal.
  declare timeoutMs?: number;
  declare uniqueKey?: string;
  declare cost?: number;
  declare group?: string;
  declare trace?: NonNullable<ReservedJob<T>['trace']>;

  constructor(
    readonly id: string,
    readonly queue: string,
    readonly name: string,
    readonly data: T,
    readonly attempt: number,
    readonly maxAttempts: number,
    readonly priority: number,
    readonly createdAt: number,
    readonly runAt: number,
    readonly lease: ReservedJob['lease'],
  ) {
    super();
  }
}

/**
 * A job as the reserve script leased it (its record as it was before the lease, whose attempt is one
 * behind), or why the record cannot be a job. The payload is parsed here, on the worker, rather than
 * in the script, to keep Redis' share of the work small. Numeric fields are checked in the order
 * c, r, p, m, a, t, q (the first that is not a number is named), each converted once; a job with
 * every default gets no optional property. The reason comes as a string and the job as itself, not
 * either of them wrapped in an object: one object fewer per job.
 */
export function toReservedJob<T>(
  queue: string,
  id: string,
  f: JobFields,
  lease: ReservedJob['lease'],
): ReservedJob<T> | string {
  const data = f.d;
  if (data === undefined) return 'malformed job record: no data';
  if (f.c === undefined) return 'malformed job record: no created-at';
  const createdAt = Number(f.c);
  if (!Number.isFinite(createdAt)) return notANumber('c');
  const runAt = f.r === undefined ? createdAt : Number(f.r);
  if (!Number.isFinite(runAt)) return notANumber('r');
  const priority = f.p === undefined ? 0 : Number(f.p);
  if (!Number.isFinite(priority)) return notANumber('p');
  const maxAttempts = f.m === undefined ? defaultMaxAttempts : Number(f.m);
  if (!Number.isFinite(maxAttempts)) return notANumber('m');
  const ended = f.a === undefined ? 0 : Number(f.a);
  if (!Number.isFinite(ended)) return notANumber('a');
  const timeoutMs = f.t === undefined ? undefined : Number(f.t);
  if (timeoutMs !== undefined && !Number.isFinite(timeoutMs)) return notANumber('t');
  const cost = f.q === undefined ? undefined : Number(f.q);
  if (cost !== undefined && !Number.isFinite(cost)) return notANumber('q');
  let payload: T;
  try {
    payload = JSON.parse(data) as T;
  } catch (error) {
    return payloadNotJson(error);
  }
  const job = new LeasedJob<T>(
    id,
    queue,
    f.n ?? queue,
    payload,
    ended + 1,
    maxAttempts,
    priority,
    createdAt,
    runAt,
    lease,
  );
  if (timeoutMs !== undefined) job.timeoutMs = timeoutMs;
  if (f.u !== undefined) job.uniqueKey = f.u;
  if (cost !== undefined) job.cost = cost;
  if (f.G !== undefined) job.group = f.G;
  const trace = decodeTrace(f.T);
  if (trace !== undefined) job.trace = trace;
  return job;
}

/**
 * {@link toReservedJob} for a compact record (`lua/includes/compact.lua`): created-at `c` and data
 * `d`, every other field at its default, read without an object for its fields. Answers what
 * `toReservedJob(queue, id, { c, d }, lease)` does, job or reason.
 */
export function toCompactJob<T>(
  queue: string,
  id: string,
  c: string,
  d: string,
  lease: ReservedJob['lease'],
): ReservedJob<T> | string {
  const createdAt = Number(c);
  if (!Number.isFinite(createdAt)) return notANumber('c');
  let payload: T;
  try {
    payload = JSON.parse(d) as T;
  } catch (error) {
    return payloadNotJson(error);
  }
  return new LeasedJob<T>(id, queue, queue, payload, 1, defaultMaxAttempts, 0, createdAt, createdAt, lease);
}

const STATE_OF_CODE: Readonly<Record<string, JobState>> = {
  w: JobState.Ready,
  s: JobState.Scheduled,
  a: JobState.Running,
  c: JobState.Completed,
  d: JobState.Dead,
  x: JobState.Cancelled,
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A malformed payload is shown as its raw text, so a dead-lettered record can still be inspected.
    return text;
  }
}

/** Reads one record (as `includes/records.lua` appends it) into a `JobRecord`. */
export function readRecord<T>(r: Reply, queue: string): JobRecord<T> {
  const id = r.str();
  const stateCode = r.str();
  const deadline = r.opt();
  const f = readFields(r);
  const state = STATE_OF_CODE[stateCode];
  if (state === undefined) throw r.malformed(`unknown job state code ${JSON.stringify(stateCode)}`);
  const createdAt = num(f.get('c'), 0);
  const errors: { n: number; error: AttemptError }[] = [];
  for (const [field, value] of f) {
    if (field.length > 1 && field.startsWith('e') && field !== 'en') {
      const n = Number(field.slice(1));
      const parsed = parseJson(value);
      if (Number.isInteger(n) && typeof parsed === 'object' && parsed !== null) {
        errors.push({ n, error: parsed as AttemptError });
      }
    }
  }
  errors.sort((a, b) => a.n - b.n);
  const logs: { n: number; line: string }[] = [];
  for (const [field, value] of f) {
    const m = /^l(\d+)$/.exec(field);
    if (m) logs.push({ n: Number(m[1]), line: value });
  }
  logs.sort((a, b) => a.n - b.n);
  const progress = f.get('P');
  const get = (field: string): string | undefined => f.get(field);
  const timeout = get('t');
  const uniqueKey = get('u');
  const result = get('o');
  const startedAt = get('g');
  const finishedAt = get('f');
  const reason = get('x');
  const token = get('k');
  const workerId = get('w');
  const trace = decodeTrace(get('T'));
  const group = get('G');
  return {
    id,
    queue,
    name: get('n') ?? queue,
    data: parseJson(get('d') ?? 'null') as T,
    attempt: num(get('a'), 0),
    maxAttempts: num(get('m'), DEFAULT_MAX_ATTEMPTS),
    priority: num(get('p'), 0),
    createdAt,
    runAt: num(get('r'), createdAt),
    state,
    errors: errors.map((e) => e.error),
    ...(timeout === undefined ? {} : { timeoutMs: num(timeout, 0) }),
    ...(uniqueKey === undefined ? {} : { uniqueKey }),
    ...(get('q') === undefined ? {} : { cost: num(get('q'), 1) }),
    ...(group === undefined ? {} : { group }),
    ...(trace === undefined ? {} : { trace }),
    ...(result === undefined ? {} : { result: parseJson(result) }),
    ...(startedAt === undefined ? {} : { startedAt: num(startedAt, 0) }),
    ...(finishedAt === undefined ? {} : { finishedAt: num(finishedAt, 0) }),
    ...(reason === undefined ? {} : { reason }),
    ...(state === JobState.Running && token !== undefined
      ? {
          lease: {
            token,
            expiresAt: num(deadline, 0),
            startedAt: num(startedAt, 0),
            ...(workerId === undefined || workerId === '' ? {} : { workerId }),
          },
        }
      : {}),
    ...(progress === undefined ? {} : { progress: parseJson(progress) }),
    ...(logs.length === 0 ? {} : { logs: logs.map((l) => l.line) }),
  };
}

/**
 * Event kinds as the stream holds them: the {@link OutcomeKind} names, and the letters scripts wrote
 * before the kinds were named (still read, so events of not-yet-upgraded workers are seen during a
 * rolling upgrade; nothing writes them any more).
 */
const EVENT_KIND: ReadonlyMap<string, OutcomeKind> = new Map<string, OutcomeKind>([
  ...Object.values(OutcomeKind).map((kind): [string, OutcomeKind] => [kind, kind]),
  ['c', OutcomeKind.Completed],
  ['r', OutcomeKind.Retrying],
  ['d', OutcomeKind.Dead],
  ['x', OutcomeKind.Cancelled],
  ['s', OutcomeKind.Snoozed],
]);

/**
 * Reads one stream entry into its `JobEvent`s: `t` (store time), then per job `i`, `k` (the kind's
 * {@link OutcomeKind} name) and optional `r` (result), `e` (error), `x` (reason), or `c` alone (the id
 * of a job completed with no result), or `C` (the ids of jobs completed with no result, joined by NUL
 * bytes). Fields and kinds this version does not know are skipped.
 */
export function readEvents(queue: string, fields: readonly string[]): JobEvent[] {
  const out: JobEvent[] = [];
  let at = 0;
  let current:
    { id: string; kind?: JobEvent['kind']; result?: string; error?: string; reason?: string } | undefined;
  const flush = (): void => {
    if (current?.kind === undefined) return;
    const { id, kind, result, error, reason } = current;
    const parsedError = error === undefined ? undefined : parseJson(error);
    out.push({
      queue,
      id,
      kind,
      at,
      ...(kind === 'completed' ? { result: result === undefined ? undefined : parseJson(result) } : {}),
      ...(typeof parsedError === 'object' && parsedError !== null ? { error: parsedError as ErrorInfo } : {}),
      ...(reason === undefined ? {} : { reason }),
    });
  };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const field = fields[i] ?? '';
    const value = fields[i + 1] ?? '';
    switch (field) {
      case 't':
        at = num(value, 0);
        break;
      case 'i':
        flush();
        current = { id: value };
        break;
      case 'c':
        // A job completed with no result, in one field (`lua/includes/events.lua`).
        flush();
        current = { id: value, kind: 'completed' };
        break;
      case 'C':
        // Jobs completed with no result, their ids joined by NUL in one field.
        flush();
        current = undefined;
        for (const id of value.split('\0')) {
          current = { id, kind: 'completed' };
          flush();
        }
        current = undefined;
        break;
      case 'k':
        if (current) {
          const kind = EVENT_KIND.get(value);
          if (kind !== undefined) current.kind = kind;
        }
        break;
      case 'r':
        if (current) current.result = value;
        break;
      case 'e':
        if (current) current.error = value;
        break;
      case 'x':
        if (current) current.reason = value;
        break;
      default:
        break;
    }
  }
  flush();
  return out;
}

/**
 * Reads the progress reports of one stream entry (kind `progress`: fields `p` progress JSON, `l` new
 * lines as a JSON array). Entries of other kinds give nothing.
 */
export function readJobUpdates(queue: string, fields: readonly string[]): JobProgressEvent[] {
  let at = 0;
  let id: string | undefined;
  let kind: string | undefined;
  let progress: string | undefined;
  let lines: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] ?? '';
    switch (fields[i] ?? '') {
      case 't':
        at = num(value, 0);
        break;
      case 'i':
        id = value;
        break;
      case 'k':
        kind = value;
        break;
      case 'p':
        progress = value;
        break;
      case 'l':
        lines = value;
        break;
      default:
        break;
    }
  }
  if (kind !== 'progress' || id === undefined) return [];
  const log = lines === undefined ? undefined : parseJson(lines);
  return [
    {
      queue,
      id,
      at,
      ...(progress === undefined ? {} : { progress: parseJson(progress) }),
      ...(Array.isArray(log) ? { log: log.map(String) } : {}),
    },
  ];
}

/** A settings snapshot with its version (versions only grow; older snapshots are ignored). */
export interface VersionedSettings {
  readonly version: number;
  readonly settings: QueueSettings;
}

/** Settings from the hash values `p`, `c`, `v`. */
export function readSettings(
  paused: string | null | undefined,
  concurrency: string | null | undefined,
  version: string | null | undefined,
): VersionedSettings {
  const c =
    concurrency === null || concurrency === undefined || concurrency === '' ? undefined : Number(concurrency);
  return {
    version: num(version ?? undefined, 0),
    settings: {
      paused: paused === '1',
      ...(c === undefined || !Number.isFinite(c) ? {} : { concurrency: c }),
    },
  };
}

/** Settings from a settings-channel message `"<version>|<paused>|<concurrency>"`. */
export function readSettingsMessage(message: string): VersionedSettings | undefined {
  const [version, paused, concurrency] = message.split('|');
  if (version === undefined || paused === undefined) return undefined;
  return readSettings(paused, concurrency, version);
}

/**
 * Field b of a snooze (see `lua/settle-8.lua`): '' (to the back), '1' (to the front), or
 * '1:<at>:<units>' (to the front, giving back units its group's log recorded at `at`).
 */
function snoozeFlags(s: Extract<Settlement, { kind: 'snoozed' }>): string {
  if (s.front !== true) return '';
  const unused = s.unused;
  if (!unused || !Number.isFinite(unused.at) || !(unused.units >= 1)) return '1';
  return `1:${Math.floor(unused.at)}:${Math.floor(unused.units)}`;
}

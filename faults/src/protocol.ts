/**
 * What the fault suite's programs (`worker`, `producer`, `connect-check`) and the tests that start
 * them agree on: their configuration, their IPC messages and the ledger each process appends to.
 *
 * The ledger is the evidence a fault test reconciles with the store. Every process appends one line per
 * event to a file of its own, with a synchronous `write(2)` by default, so the line is in the kernel
 * before the handler does anything else: a `SIGKILL` right after cannot lose it, and a Redis crash
 * cannot either (the ledger never lives in the Redis under test).
 *
 * | tag | fields                                   | written when                                        |
 * | --- | ---------------------------------------- | --------------------------------------------------- |
 * | `S` | id, attempt, at                          | a handler starts (before any work)                  |
 * | `E` | id, attempt, at                          | a handler's work ended normally                     |
 * | `X` | id, attempt, at, reason                  | a handler's `AbortSignal` fired                     |
 * | `A` | id, outcome kind, at, attempt            | the store acknowledged the job's outcome            |
 * | `Q` | id, at                                   | the store acknowledged an add (producer)            |
 * | `T` | at                                       | the process received SIGTERM                        |
 * | `C` | at, drained (0 or 1), abandoned          | `worker.close()` resolved                           |
 * | `L` | level, message, metadata JSON            | the worker logged a warning or an error             |
 *
 * Fields are separated by tabs; times are the writing process's `Date.now()`.
 */

/** How a process reaches Redis: a URL, or options that survive JSON (a TLS CA as PEM text). */
export type ConnectionSpec =
  | string
  | {
      readonly host: string;
      readonly port: number;
      readonly username?: string;
      readonly password?: string;
      readonly tls?: { readonly ca: string; readonly servername?: string };
      /** ioredis' connection timeout in ms (how long a TCP/TLS connect may take). */
      readonly connectTimeout?: number;
    }
  /** A Redis Cluster, from its startup nodes. */
  | { readonly cluster: readonly { readonly host: string; readonly port: number }[] };

/** What a job's payload tells the fault worker to do. Unknown or missing fields mean `ok`. */
export type JobMode =
  /** Wait `ms` (or the worker's `workMs`), honouring the abort signal, then complete. */
  | 'ok'
  /** Throw on every attempt. */
  | 'throw'
  /** Never settle and ignore the abort signal. */
  | 'hang'
  /** `process.exit(3)` inside the handler. */
  | 'exit'
  /** Throw from a timer callback: an uncaught exception kills the process. */
  | 'uncaught'
  /** Report whether the payload's `__proto__` key stayed data and `Object.prototype` stayed clean. */
  | 'proto'
  /** Report the size of `blob`. */
  | 'big';

export interface JobData {
  readonly n?: number;
  readonly mode?: JobMode;
  readonly ms?: number;
  readonly blob?: string;
}

/** What a `proto` job returns. */
export interface ProtoReport {
  /** `({}).polluted` in the worker, as a string (`'undefined'` when clean). */
  readonly plainObjectPolluted: string;
  /** `'polluted' in Object.prototype` in the worker. */
  readonly prototypeHasPolluted: boolean;
  /** The payload keeps `__proto__` as an own data property. */
  readonly ownProtoKey: boolean;
  /** The payload's prototype is still `Object.prototype`. */
  readonly prototypeIntact: boolean;
}

export interface WorkerProgramConfig {
  /** Names the ledger file (`<name>-<pid>.log`). */
  readonly name: string;
  readonly connection: ConnectionSpec;
  readonly prefix: string;
  readonly queue: string;
  readonly ledgerDir: string;
  /** `sync` (default): one `write(2)` per line. `buffered`: flushed every 200 ms and on exit (no kills). */
  readonly ledgerMode?: 'sync' | 'buffered';
  readonly concurrency: number;
  readonly leaseMs: number;
  /** Default handler time of an `ok` job. Default 0 (the handler returns synchronously). */
  readonly workMs?: number;
  /** The pipeline's `timeoutMs`. Default: none. */
  readonly timeoutMs?: number;
  /** Fixed retry delay. Default: the pipeline's default backoff. */
  readonly backoffMs?: number;
  readonly recoverEveryMs?: number;
  /** The drain budget of `worker.close()` on SIGTERM. Default 5000. */
  readonly closeTimeoutMs?: number;
  /** How often the process reports its RSS and CPU time. Default 500. */
  readonly sampleEveryMs?: number;
  readonly connectTimeoutMs?: number;
  /** Connect, report `connected`, and start the worker only on a `start` message. Default false. */
  readonly holdStart?: boolean;
}

export interface ProducerProgramConfig {
  readonly name: string;
  readonly connection: ConnectionSpec;
  readonly prefix: string;
  readonly queue: string;
  readonly ledgerDir: string;
  /** Ids are `<idPrefix><n>`; a failed add is retried with the same ids until acknowledged. */
  readonly idPrefix: string;
  readonly total: number;
  readonly batch: number;
  /** Pause between batches. */
  readonly everyMs: number;
  readonly data?: JobData;
}

export interface ConnectCheckConfig {
  readonly connection: ConnectionSpec;
  readonly attempts: number;
  /** Attempts made at once. Default 1. */
  readonly parallel?: number;
  readonly connectTimeoutMs: number;
  /** How long to stay alive after the last attempt, so late socket errors would surface. */
  readonly lingerMs: number;
}

/** What `connect-check` prints on stdout (one JSON line). */
export interface ConnectCheckReport {
  readonly results: readonly { readonly ok: boolean; readonly ms: number; readonly error?: string }[];
}

/** A process's resource figures, sent every `sampleEveryMs` and on request. */
export interface ResourceSample {
  readonly at: number;
  readonly rss: number;
  readonly heapUsed: number;
  /** CPU time used since the process started, in ms (user + system). */
  readonly cpuMs: number;
  /** Commands the store's main connection has sent since the process started. */
  readonly commands: number;
  /** The same by command name (`evalsha`/`eval` are the Lua scripts). */
  readonly commandsByName: Readonly<Record<string, number>>;
}

/** Messages from a fault program to the test. */
export type ProgramMessage =
  | { readonly type: 'ready'; readonly pid: number }
  /** A worker started with `holdStart` is connected and waits for `start`. */
  | { readonly type: 'connected'; readonly pid: number }
  | { readonly type: 'sample'; readonly sample: ResourceSample }
  | { readonly type: 'probe'; readonly sample: ResourceSample }
  | { readonly type: 'closed'; readonly drained: boolean; readonly abandoned: number }
  | { readonly type: 'done' };

/** Messages from the test to a fault program. */
export type ParentMessage = { readonly type: 'probe' } | { readonly type: 'start' };

export type LedgerEntry =
  | { readonly tag: 'S'; readonly id: string; readonly attempt: number; readonly at: number }
  | { readonly tag: 'E'; readonly id: string; readonly attempt: number; readonly at: number }
  | {
      readonly tag: 'X';
      readonly id: string;
      readonly attempt: number;
      readonly at: number;
      readonly reason: string;
    }
  | {
      readonly tag: 'A';
      readonly id: string;
      readonly outcome: string;
      readonly at: number;
      readonly attempt: number;
    }
  | { readonly tag: 'Q'; readonly id: string; readonly at: number }
  | { readonly tag: 'T'; readonly at: number }
  | { readonly tag: 'C'; readonly at: number; readonly drained: boolean; readonly abandoned: number }
  | { readonly tag: 'L'; readonly level: string; readonly message: string; readonly meta: string };

const clean = (text: string): string => text.replace(/[\t\n\r]/g, ' ');

/** One ledger line (without the newline). */
export function formatLedgerEntry(entry: LedgerEntry): string {
  switch (entry.tag) {
    case 'S':
    case 'E':
      return `${entry.tag}\t${entry.id}\t${entry.attempt}\t${entry.at}`;
    case 'X':
      return `X\t${entry.id}\t${entry.attempt}\t${entry.at}\t${clean(entry.reason)}`;
    case 'A':
      return `A\t${entry.id}\t${entry.outcome}\t${entry.at}\t${entry.attempt}`;
    case 'Q':
      return `Q\t${entry.id}\t${entry.at}`;
    case 'T':
      return `T\t${entry.at}`;
    case 'C':
      return `C\t${entry.at}\t${entry.drained ? 1 : 0}\t${entry.abandoned}`;
    case 'L':
      return `L\t${clean(entry.level)}\t${clean(entry.message)}\t${clean(entry.meta)}`;
  }
}

/**
 * Parses one ledger line; `undefined` for a line that is not one (the last line of a file written
 * by a process killed mid-write may be cut short).
 */
export function parseLedgerLine(line: string): LedgerEntry | undefined {
  const f = line.split('\t');
  const num = (i: number): number => Number(f[i]);
  const str = (i: number): string => f[i] ?? '';
  const complete = (n: number): boolean => f.length >= n && f.slice(0, n).every((x) => x !== '');
  const tag = f[0] ?? '';
  switch (tag) {
    case 'S':
    case 'E':
      return complete(4) ? { tag, id: str(1), attempt: num(2), at: num(3) } : undefined;
    case 'X':
      return complete(5) ? { tag: 'X', id: str(1), attempt: num(2), at: num(3), reason: str(4) } : undefined;
    case 'A':
      return complete(5) ? { tag: 'A', id: str(1), outcome: str(2), at: num(3), attempt: num(4) } : undefined;
    case 'Q':
      return complete(3) ? { tag: 'Q', id: str(1), at: num(2) } : undefined;
    case 'T':
      return complete(2) ? { tag: 'T', at: num(1) } : undefined;
    case 'C':
      return complete(4) ? { tag: 'C', at: num(1), drained: str(2) === '1', abandoned: num(3) } : undefined;
    case 'L':
      return f.length >= 4 ? { tag: 'L', level: str(1), message: str(2), meta: str(3) } : undefined;
    default:
      return undefined;
  }
}

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { priorityFromEnv, runAhead, type ProcessPriority } from '@sluice/testing';

const FIXTURE = join(__dirname, 'fixtures', 'worker.js');

/**
 * Debian's libfaketime (package `faketime`), when installed: preloaded into a worker process, it
 * shifts every clock the process reads from the kernel (`Date.now()`, `performance.timeOrigin`,
 * libuv's timers), as a machine whose clock is off would. Without it, the fixture shifts the clocks
 * the JavaScript reads (`Date.now`, `performance.now`) instead.
 */
export const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((path) => existsSync(path));

export interface WorkerProcessConfig {
  /** The Redis server; with `cluster`, not used. */
  readonly url: string;
  /** A Redis Cluster's startup nodes: the worker connects to it instead of `url`. */
  readonly cluster?: readonly { readonly host: string; readonly port: number }[];
  readonly prefix: string;
  readonly queue: string;
  readonly concurrency?: number;
  readonly leaseMs?: number;
  readonly workMs?: number;
  readonly rateLimit?: { readonly allowed: number; readonly periodMs: number; readonly per?: 'job' | 'call' };
  /** The pipeline's group rules (`GroupRules`). */
  readonly groups?: {
    readonly concurrency?: number;
    readonly rateLimit?: { readonly allowed: number; readonly periodMs: number };
  };
  /** Without a provider: each handler calls `ctx.limit.sent()` as it starts (its work leaves at once). */
  readonly sentAtStart?: boolean;
  /** Each handler reports when its work ended (`ends`). */
  readonly reportEnds?: boolean;
  /** Batches of up to `size` jobs (waiting at most `timeMs` for a full one): one call per batch. */
  readonly batch?: { readonly size: number; readonly timeMs: number };
  /**
   * Shifts every clock of the worker process by this many ms: with {@link LIBFAKETIME} preloaded
   * (whole seconds; a fixed offset, no speed-up: its speed factors make node's event loop spin),
   * else in the fixture's JavaScript.
   */
  readonly clockOffsetMs?: number;
  /** Each handler POSTs here once (see `ProviderProcess`). */
  readonly providerUrl?: string;
  /** The queue is partitioned in this many (a `PartitionedStore` over the worker's Redis store). */
  readonly partitions?: number;
  /** The pipeline's `globalConcurrency`: jobs of the queue running at once across every worker. */
  readonly globalConcurrency?: number;
}

export interface StartReport {
  readonly id: string;
  readonly attempt: number;
  /** Lease start: Redis time at the reservation. */
  readonly startedAt: number;
  /** The worker's own (possibly offset) clock when its handler started. */
  readonly at: number;
  /** Under a limit: the store time the job's unit is recorded at (its slot, after any move). */
  readonly slot?: number;
  /** With a provider: the worker's own clock when the handler's request was handed to the OS. */
  readonly sentAt?: number;
  /** This (test) process's clock when the report arrived. */
  readonly received: number;
}

/** How a worker's rate-limited starts kept to their slots, as it reported on close. */
export interface StartTiming {
  readonly started: number;
  readonly moved: number;
  readonly handedBack: number;
  readonly maxLateMs: number;
  readonly maxLeadMs: number;
  /** How late requests left after their slots, at most (`ctx.limit.sent()`). */
  readonly maxSendLateMs: number;
  /** How late requests left after their slots (ms). */
  readonly sendLateMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
  /** The widest margin the worker asked the store for. */
  readonly maxMarginMs: number;
  /** Requests that left past the margin, moved in the store's log to when they left. */
  readonly corrected: number;
  /** How late moved units were found past their slots (ms). */
  readonly movedLateMs: { readonly p50: number; readonly p90: number; readonly max: number };
  /** CPU time the process used, from its start to its close (user and system, ms). */
  readonly cpuMs: number;
  /** How late the worker's event loop ran (perf_hooks' event-loop delay, ms). */
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

type Message =
  | { type: 'ready' }
  | {
      type: 'start';
      id: string;
      attempt: number;
      startedAt: number;
      at: number;
      slot?: number;
      sentAt?: number;
    }
  | { type: 'end'; id: string; attempt: number; at: number }
  | { type: 'outcome'; id: string; kind: string }
  | { type: 'closed'; drained: boolean; timing: StartTiming };

/** Every worker process a test file started, so `afterAll` can stop the ones still running. */
const running = new Set<WorkerProcess>();

/** A worker process started from `fixtures/worker.js`, with what it reported. */
export class WorkerProcess {
  readonly starts: StartReport[] = [];
  readonly outcomes: { id: string; kind: string }[] = [];
  /** With `reportEnds`: when each handler's work ended (the machine's wall clock). */
  readonly ends: { id: string; attempt: number; at: number }[] = [];
  /** This process's wall clock when `kill()` killed it. */
  killedAt: number | undefined;
  /** Set by a graceful close. */
  timing: StartTiming | undefined;
  /** How its clocks were shifted (`clockOffsetMs`). */
  readonly skewedBy: 'none' | 'libfaketime' | 'javascript';
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private ready = false;

  private constructor(
    readonly name: string,
    config: WorkerProcessConfig,
  ) {
    const offset = config.clockOffsetMs ?? 0;
    this.skewedBy = offset === 0 ? 'none' : LIBFAKETIME && offset % 1000 === 0 ? 'libfaketime' : 'javascript';
    const env =
      this.skewedBy === 'libfaketime'
        ? {
            ...process.env,
            LD_PRELOAD: LIBFAKETIME,
            FAKETIME: `${offset > 0 ? '+' : '-'}${Math.abs(offset) / 1000}s`,
          }
        : process.env;
    const forked = this.skewedBy === 'libfaketime' ? { ...config, clockOffsetMs: 0 } : config;
    this.child = fork(FIXTURE, [JSON.stringify(forked)], {
      // SLUICE_FIXTURE_ARGS: node flags for the worker processes, to look inside a run (for
      // example `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--trace-gc`).
      execArgv: process.env.SLUICE_FIXTURE_ARGS ? process.env.SLUICE_FIXTURE_ARGS.split(' ') : [],
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    running.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        running.delete(this);
        resolve();
        this.notify();
      });
    });
    this.child.on('message', (message: Message | { type: 'batch'; messages: Message[] }) => {
      for (const m of message.type === 'batch' ? message.messages : [message]) this.take(m);
      this.notify();
    });
  }

  /** One report of the process (see `fixtures/worker.js`). */
  private take(message: Message): void {
    switch (message.type) {
      case 'ready':
        this.ready = true;
        break;
      case 'start':
        this.starts.push({ ...message, received: Date.now() });
        break;
      case 'end':
        this.ends.push({ id: message.id, attempt: message.attempt, at: message.at });
        break;
      case 'outcome':
        this.outcomes.push({ id: message.id, kind: message.kind });
        break;
      case 'closed':
        this.timing = message.timing;
        break;
    }
  }

  /** Starts a worker process and resolves once it runs. */
  static async start(name: string, config: WorkerProcessConfig, timeoutMs = 20_000): Promise<WorkerProcess> {
    const worker = new WorkerProcess(name, config);
    await worker.until(() => worker.ready, timeoutMs, 'to start');
    return worker;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Resolves when `predicate` holds (checked on every message of this worker and every 50 ms, so it may
   * depend on other workers too), rejects after `timeoutMs`.
   */
  until(predicate: () => boolean, timeoutMs: number, what = 'the condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (predicate()) {
          done();
          resolve();
        } else if (!this.alive) {
          done();
          reject(new Error(`worker ${this.name} exited before ${what}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`worker ${this.name}: timed out waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 50);
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** SIGKILL: no drain, no settle, leases left to expire. */
  async kill(): Promise<void> {
    if (this.alive) {
      this.killedAt = Date.now();
      this.child.kill('SIGKILL');
    }
    await this.exited;
  }

  /** Graceful: drain in-flight jobs, close the store, exit. */
  async close(timeoutMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.child.send({ type: 'close', timeoutMs });
    const killer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs + 5000);
    await this.exited;
    clearTimeout(killer);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** Kills every worker process still running (for `afterAll`). */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...running].map((w) => w.kill()));
}

/** What a provider saw: each arrival's time on its own clock and the status it answered. */
export interface Arrival {
  readonly at: number;
  readonly status: number;
  /** The job whose handler made the call. */
  readonly id: string;
}

/**
 * A rate-limited third-party API in a process of its own (`fixtures/provider.js`), timestamping
 * every call as it arrives; with `refuse`, it answers 429 with a Retry-After past that limit. It
 * runs ahead of the workers where permitted (`priority`), as a provider on its own machine would
 * not wait for a core the workers hold.
 */
export class ProviderProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** How it is scheduled (what this process was permitted to set; see `runAhead`). */
    readonly priority: ProcessPriority,
  ) {}

  static start(refuse?: {
    allowed: number;
    periodMs: number;
    retryAfterMs?: number;
  }): Promise<ProviderProcess> {
    const most = priorityFromEnv('SLUICE_PROVIDER_PRIORITY'); // before the fork: a bad value leaves nothing running
    const child = fork(
      join(__dirname, 'fixtures', 'provider.js'),
      [JSON.stringify(refuse ? { refuse } : {})],
      {
        // Node options for the provider from SLUICE_PROVIDER_ARGS (for example `--trace-gc`).
        execArgv: process.env.SLUICE_PROVIDER_ARGS ? process.env.SLUICE_PROVIDER_ARGS.split(' ') : [],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    // A provider has cores of its own; here it shares two with four workers, Redis and Jest, and
    // would stamp arrivals when it gets a core rather than when they came. Measured at nice -10
    // alone: up to 9-33 ms from a request's `finish` in a worker to the provider's stamp on a busy
    // day, enough to put 401-407 calls into one of its windows although at most 400 left in any;
    // at real-time priority, at most 1.1-6.5 ms (p99 1.0 ms) in 40 runs, and it counted 400.
    // SLUICE_PROVIDER_PRIORITY=higher or normal holds it at most there (to compare).
    const priority = runAhead(child.pid, most);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('message', (m: { type: string; url: string }) => {
        resolve(new ProviderProcess(child, m.url, priority));
      });
    });
  }

  /** Every arrival so far. */
  arrivals(): Promise<Arrival[]> {
    return new Promise((resolve) => {
      this.child.once('message', (m: { arrivals: [number, number, string][] }) => {
        resolve(m.arrivals.map(([at, status, id]) => ({ at, status, id })));
      });
      this.child.send({ type: 'report' });
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** A process spinning one CPU core until stopped: the "busy machine" of the load tests. */
export function cpuHog(): { stop(): void } {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return {
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

/**
 * Waits until the workers together completed `jobs` jobs (within `timeoutMs`), then closes them all.
 * A loaded machine moves late starts to later slots: the default allows far more than the full rate.
 */
export async function runUntilCompleted(
  workers: readonly WorkerProcess[],
  jobs: number,
  timeoutMs = 100_000,
): Promise<void> {
  const completed = (): number =>
    workers.reduce((sum, w) => sum + w.outcomes.filter((o) => o.kind === 'completed').length, 0);
  await workers[0]!.until(() => completed() >= jobs, timeoutMs, `${jobs} outcomes`);
  await Promise.all(workers.map((w) => w.close()));
}

/**
 * Checks that the workers completed `jobs` jobs, each once (besides the units their start gates
 * handed back, which never started), and returns every handler start on the true clock (each
 * worker's `offsets[i]` taken back) and how many units were handed back.
 */
export function startsOnceEach(
  workers: readonly WorkerProcess[],
  jobs: number,
  offsets: readonly number[] = [],
): { starts: number[]; handedBack: number } {
  const outcomes = workers.flatMap((w) => w.outcomes);
  const handedBack = outcomes.filter((o) => o.kind === 'snoozed').length;
  expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(jobs);
  expect(outcomes).toHaveLength(jobs + handedBack);
  expect(new Set(workers.flatMap((w) => w.starts.map((s) => s.id))).size).toBe(jobs);
  const starts = workers.flatMap((w, i) => w.starts.map((s) => s.at - (offsets[i] ?? 0)));
  return { starts, handedBack };
}

/**
 * The share of a limit of `allowed` per `periodMs` that `starts` reached: at the full rate every start
 * is one period after the start `allowed` before it; the mean of those gaps, against the period.
 */
export function shareOfLimit(starts: readonly number[], allowed: number, periodMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let gaps = 0;
  for (let k = allowed; k < sorted.length; k++) gaps += sorted[k]! - sorted[k - allowed]!;
  return periodMs / (gaps / (sorted.length - allowed));
}

import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { withTimeout } from './clock';
import type { ParentMessage, WorkerMessage, WorkerReport, WorkerSpec } from './protocol';

/** The two systems compared. */
export type System = 'sluice' | 'bullmq';

const SCRIPTS: Readonly<Record<System, string>> = {
  sluice: join(__dirname, 'workers', 'sluice-worker.js'),
  bullmq: join(__dirname, 'workers', 'bullmq-worker.js'),
};

export interface ForkOptions {
  /** Write a V8 CPU profile of the worker (`node --cpu-prof`) into this directory. */
  readonly cpuProfileDir?: string;
  /** Give up if the worker is not ready within this long. Default `30_000`. */
  readonly readyTimeoutMs?: number;
  /** Another worker script of the system (a file name in `dist/workers`). Default: the system's own. */
  readonly script?: string;
}

/**
 * A worker process forked from the compiled script of one system (`dist/workers/<system>-worker.js`),
 * driven over IPC: `ready` → {@link start} → `done` (after `expect` jobs) → {@link stop} → report.
 */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private readonly readyPromise: Promise<void>;
  private readonly donePromise: Promise<WorkerReport>;
  private readonly stoppedPromise: Promise<WorkerReport>;
  private failure: Error | undefined;

  private constructor(
    readonly system: System,
    spec: WorkerSpec,
    options: ForkOptions,
  ) {
    const execArgv: string[] = [];
    const env = { ...process.env };
    if (options.cpuProfileDir !== undefined) {
      mkdirSync(options.cpuProfileDir, { recursive: true });
      execArgv.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir);
      env['BENCH_PROFILE_DIR'] = options.cpuProfileDir;
    }
    this.child = fork(
      options.script === undefined ? SCRIPTS[system] : join(__dirname, 'workers', options.script),
      [JSON.stringify(spec)],
      {
        execArgv,
        env,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    const messages = new Map<WorkerMessage['type'], (m: WorkerMessage) => void>();
    const waitFor = <T>(type: WorkerMessage['type'], pick: (m: WorkerMessage) => T): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        messages.set(type, (m) => {
          resolve(pick(m));
        });
        void this.exited.then((code) => {
          reject(
            this.failure ?? new Error(`${system} worker exited (code ${String(code)}) before '${type}'`),
          );
        });
      });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        resolve(code);
      });
    });
    this.readyPromise = waitFor('ready', () => undefined);
    this.donePromise = waitFor('done', (m) => (m.type === 'done' ? m.report : emptyReport()));
    this.stoppedPromise = waitFor('stopped', (m) => (m.type === 'stopped' ? m.report : emptyReport()));
    // Unhandled until a scenario asks for them.
    this.donePromise.catch(() => undefined);
    this.stoppedPromise.catch(() => undefined);
    this.child.on('message', (message: WorkerMessage) => {
      if (message.type === 'failed') {
        this.failure = new Error(`${system} worker failed: ${message.message}`);
        return;
      }
      messages.get(message.type)?.(message);
    });
  }

  /** Forks a worker and resolves once it is connected and idle. */
  static async fork(system: System, spec: WorkerSpec, options: ForkOptions = {}): Promise<WorkerProcess> {
    const worker = new WorkerProcess(system, spec, options);
    const timeoutMs = options.readyTimeoutMs ?? 30_000;
    try {
      await withTimeout(worker.readyPromise, timeoutMs, `${system} worker not ready within ${timeoutMs} ms`);
    } catch (error) {
      worker.kill();
      throw error;
    }
    return worker;
  }

  start(): void {
    this.send({ type: 'start' });
  }

  /** Resolves with the report sent when `expect` jobs completed; rejects after `timeoutMs`. */
  done(timeoutMs: number): Promise<WorkerReport> {
    return withTimeout(this.donePromise, timeoutMs, `${this.system} worker: not done within ${timeoutMs} ms`);
  }

  /** Graceful stop: the worker drains, closes its connections, reports and exits. */
  async stop(timeoutMs = 60_000): Promise<WorkerReport> {
    this.send({ type: 'stop' });
    try {
      return await withTimeout(
        this.stoppedPromise,
        timeoutMs,
        `${this.system} worker: not stopped within ${timeoutMs} ms`,
      );
    } finally {
      const killer = setTimeout(() => {
        this.kill();
      }, 5000);
      await this.exited;
      clearTimeout(killer);
    }
  }

  /** SIGKILL (cleanup after a failure). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private send(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }
}

function emptyReport(): WorkerReport {
  return {
    completed: 0,
    startedAt: 0,
    doneAt: 0,
    latencies: [],
    enqueuedAt: [],
    callTimes: [],
    callSizes: [],
    callGrants: [],
    rssAtStart: 0,
    rssPeak: 0,
    heapPeak: 0,
    cpuMs: 0,
  };
}

/** Runs `fn` with the workers, killing any still alive if it throws. */
export async function withWorkers<T>(workers: readonly WorkerProcess[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    for (const w of workers) w.kill();
    throw error;
  }
}

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import type { Logger } from './logger';

/**
 * How a worker treats the helper threads of its Node.js process (`WorkerConfig.helperThreads`):
 * `'adaptive'` runs them under Linux's `SCHED_IDLE` while the process and the machine are lightly
 * loaded, `'normal'` leaves them alone.
 */
export type HelperThreadsPolicy = 'adaptive' | 'normal';

/** Where the helper threads are: `background` (`SCHED_IDLE`) or `normal` (`SCHED_OTHER`). */
export type HelperThreadsMode = 'background' | 'normal';

/** What {@link HelperThreads} decides on at each check, both between 0 and 1. */
export interface HelperThreadsLoad {
  /** The main thread's event-loop utilization since the last check. */
  readonly eventLoop: number;
  /** The share of the machine's CPU time that was idle since the last check (every core). */
  readonly machineIdle: number;
}

export interface HelperThreadsOptions {
  /** How often the load is read and the mode decided. Default `1000`. */
  readonly checkEveryMs?: number;
  /** The program that sets a thread's scheduling policy (util-linux or BusyBox `chrt`). Default `'chrt'`. */
  readonly command?: string;
  /** The load since the last call. Default: the main thread's event-loop utilization and `os.cpus()`. */
  readonly load?: () => HelperThreadsLoad;
  /** The threads to move (ids in `/proc/self/task`). Default {@link startupThreads}. */
  readonly threads?: () => readonly number[];
}

/**
 * Past this event-loop utilization the helpers go back to normal: a busy process needs its compiler
 * and collector running beside it, not only in idle time.
 */
const BUSY_EVENT_LOOP = 0.6;
/** Below this (and with {@link LIGHT_MACHINE_IDLE} of the machine idle) they go to the background. */
const LIGHT_EVENT_LOOP = 0.4;
/**
 * Below this share of idle CPU the helpers go back to normal: other processes keep the cores busy,
 * and a thread under `SCHED_IDLE` would get next to no time (a garbage collection waiting on it
 * would wait too).
 */
const BUSY_MACHINE_IDLE = 0.35;
const LIGHT_MACHINE_IDLE = 0.5;

/**
 * Moves the helper threads of this Node.js process between Linux's `SCHED_IDLE` and `SCHED_OTHER`
 * while at least one worker holds it ({@link acquire}), following the load.
 *
 * Why: V8 runs its optimizing compiler and parts of its garbage collector on helper threads. A new
 * worker compiles its per-job path for its first seconds, in bursts of several milliseconds, and on
 * a machine of few cores the thread that starts jobs, woken by a job's arrival, can wait behind such
 * a burst on its core for as long: measured on 2 vCPUs at 500 jobs/s, those waits were most of the
 * slowest 1.5 % of job starts (bench/README.md). Under `SCHED_IDLE` a helper thread gives its core
 * up at once to any other thread that wakes, and still runs whenever a core has nothing else to do,
 * which on a lightly loaded machine is most of the time. When the process's event loop is busy or
 * the machine's cores are (see the thresholds above), the helpers are put back to `SCHED_OTHER`,
 * so that a loaded process is never short of its compiler and collector; when the last worker
 * releases it, they are put back too.
 *
 * Which threads: those Node.js started before V8 itself (its platform's worker threads, made at
 * process start, before any code of the application runs), read from `/proc/self/task`; threads
 * the application starts (`worker_threads`, libuv's pool) are left alone. Only on Linux, only from
 * the main thread (a worker running inside a `worker_threads` thread leaves the process alone), and
 * only where `chrt` runs (util-linux, in every Debian and Ubuntu image; BusyBox has one too):
 * elsewhere nothing changes, logged once at debug level. Lowering one's own threads' policy needs no
 * privilege.
 */
export class HelperThreads {
  private holders = 0;
  private timer: NodeJS.Timeout | undefined;
  private current: HelperThreadsMode = 'normal';
  /** Set once `chrt` failed: nothing more is tried in this process. */
  private unavailable = false;
  /** Set once the reason nothing moves was logged. */
  private noted = false;
  /** The mode being applied, and the one wanted after it (a change during an apply waits for it). */
  private applying: Promise<void> | undefined;
  private wanted: HelperThreadsMode = 'normal';
  private logger: Logger | undefined;
  private readonly checkEveryMs: number;
  private readonly command: string;
  private readonly load: () => HelperThreadsLoad;
  private readonly threads: () => readonly number[];

  constructor(options: HelperThreadsOptions = {}) {
    this.checkEveryMs = options.checkEveryMs ?? 1000;
    this.command = options.command ?? 'chrt';
    this.load = options.load ?? measuredLoad();
    this.threads = options.threads ?? startupThreads;
  }

  /** Where the helper threads are now (after the last apply finished). */
  get mode(): HelperThreadsMode {
    return this.current;
  }

  /** How many workers hold the adaptive policy now. */
  get holding(): number {
    return this.holders;
  }

  /** False once moving threads failed (no `chrt`, not Linux, not the main thread). */
  get available(): boolean {
    return !this.unavailable && supported();
  }

  /**
   * Holds the helpers under the adaptive policy until the returned function is called (once per
   * holder; the last release puts them back to normal). They stay where they are until the first
   * check, one period later, has measured the load. `logger` receives the debug lines.
   */
  acquire(logger: Logger): () => void {
    this.logger = logger;
    if (!this.available) {
      this.noteUnavailable('not linux or not the main thread');
      return () => undefined;
    }
    this.holders++;
    if (this.holders === 1) {
      this.load(); // the first check, one period from now, measures from here
      this.timer = setInterval(() => {
        this.check();
      }, this.checkEveryMs);
      this.timer.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
      if (this.holders === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.set('normal');
      }
    };
  }

  /** Resolves when every change asked for so far has been applied (tests). */
  async settled(): Promise<void> {
    while (this.applying) await this.applying;
  }

  private check(): void {
    const { eventLoop, machineIdle } = this.load();
    if (eventLoop > BUSY_EVENT_LOOP || machineIdle < BUSY_MACHINE_IDLE) this.set('normal');
    else if (eventLoop < LIGHT_EVENT_LOOP && machineIdle > LIGHT_MACHINE_IDLE) this.set('background');
  }

  private set(mode: HelperThreadsMode): void {
    this.wanted = mode;
    if (this.applying || this.unavailable) return;
    if (mode === this.current) return;
    this.applying = this.apply(mode).finally(() => {
      this.applying = undefined;
      if (this.wanted !== this.current && !this.unavailable) this.set(this.wanted);
    });
  }

  private async apply(mode: HelperThreadsMode): Promise<void> {
    const args = mode === 'background' ? ['-i', '-p', '0'] : ['-o', '-p', '0'];
    let moved = 0;
    for (const tid of this.threads()) {
      try {
        await run(this.command, [...args, String(tid)]);
        moved++;
      } catch (error) {
        if (isGone(tid)) continue; // the thread ended meanwhile
        this.unavailable = true;
        this.noteUnavailable(error instanceof Error ? error.message : String(error));
        return;
      }
    }
    this.current = mode;
    this.logger?.debug('helper threads moved', { mode, threads: moved });
  }

  private noteUnavailable(why: string): void {
    if (this.noted) return;
    this.noted = true;
    this.logger?.debug('helper threads left at their scheduling policy', { why });
  }
}

function supported(): boolean {
  return process.platform === 'linux' && isMainThread;
}

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 5000 }, (error: Error | null) => {
      if (error) reject(error);
      else resolve();
    });
  });
}

function isGone(tid: number): boolean {
  try {
    readFileSync(`/proc/self/task/${tid}/stat`);
    return false;
  } catch {
    return true;
  }
}

/**
 * Fields of `/proc/<pid>/task/<tid>/stat` after the command name (which may hold spaces), from field
 * 3 (state) on: `fields[k]` is field `k + 3` of proc(5).
 */
function statFields(tid: number): string[] {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Field 22 of proc(5): when the thread started, in clock ticks after boot. */
const startTicks = (tid: number): number => Number(statFields(tid)[19]);

/** Field 41 of proc(5): the thread's scheduling policy (0 `SCHED_OTHER`, 5 `SCHED_IDLE`). */
export function schedulingPolicy(tid: number): number {
  return Number(statFields(tid)[38]);
}

/**
 * The threads of this process that Node.js started before V8 (`performance.nodeTiming.v8Start`):
 * its platform's helper threads. Start times are in clock ticks (10 ms on Linux), so the bound is
 * rounded up; the application's code runs only after bootstrap, later still.
 */
export function startupThreads(): number[] {
  const pid = process.pid;
  const mainStart = startTicks(pid);
  const v8StartMs = performance.nodeTiming.v8Start;
  const bound = mainStart + Math.ceil(v8StartMs / 10);
  const found: number[] = [];
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    if (tid === pid) continue;
    try {
      if (startTicks(tid) <= bound) found.push(tid);
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** The load since the previous call, from the main thread's event loop and `os.cpus()`. */
function measuredLoad(): () => HelperThreadsLoad {
  let elu: EventLoopUtilization | undefined;
  let cpu = cpuTimes();
  return () => {
    const nextElu = performance.eventLoopUtilization();
    const eventLoop = elu ? performance.eventLoopUtilization(nextElu, elu).utilization : 0;
    elu = nextElu;
    const nextCpu = cpuTimes();
    const total = nextCpu.total - cpu.total;
    const machineIdle = total > 0 ? (nextCpu.idle - cpu.idle) / total : 1;
    cpu = nextCpu;
    return { eventLoop, machineIdle };
  };
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const c of cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, total };
}

/** The process's one controller, shared by every worker in it. */
export const helperThreads = new HelperThreads();

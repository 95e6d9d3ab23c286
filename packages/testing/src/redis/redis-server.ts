import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { track } from './cleanup';
import { getFreePort, LOOPBACK } from './free-port';
import { RespError, sendCommands } from './resp';
import type { SpawnedRedis } from './types';

/**
 * A redis.conf value. Strings are written verbatim (quote values containing spaces yourself, e.g.
 * `'"a b"'`), except `''` which becomes `""`; booleans become `yes`/`no`; arrays produce one line per
 * element (e.g. `save: ['900 1', '300 10']`, `user: ['alice on >pw ~* +@all']`).
 */
export type RedisConfigValue = string | number | boolean | readonly (string | number)[];

export interface SpawnRedisOptions {
  /** Fixed port. Default: a free loopback port chosen by the kernel (retried on EADDRINUSE). */
  readonly port?: number;
  /** `appendonly` (default `false`). */
  readonly appendonly?: boolean;
  /** `appendfsync` (Redis' default is `everysec`). Use `always` for kill/restart durability tests. */
  readonly appendfsync?: 'always' | 'everysec' | 'no';
  /** `requirepass`; the handle's `url` then carries the password. */
  readonly requirepass?: string;
  /** ACL users as `user` directive bodies, e.g. `'worker on >secret ~jobs:* +@all'`. */
  readonly users?: readonly string[];
  /** `maxmemory`, e.g. `'10mb'` or a byte count. */
  readonly maxmemory?: string | number;
  /** `maxmemory-policy`, e.g. `'noeviction'`. */
  readonly maxmemoryPolicy?: string;
  /**
   * Any other redis.conf directives (they override the harness defaults `save ""` and
   * `appendonly no`). `port`, `bind`, `dir`, `daemonize` and `logfile` are managed by the harness.
   */
  readonly config?: Readonly<Record<string, RedisConfigValue>>;
  /** The redis-server binary. Default: `$SLUICE_REDIS_SERVER` or `redis-server` from PATH. */
  readonly redisServerPath?: string;
  /** Give up when the server does not answer PING within this many ms (default 10 000). */
  readonly startTimeoutMs?: number;
  /** `stop()`/`restart()` send SIGTERM, then SIGKILL after this many ms (default 5 000). */
  readonly stopGraceMs?: number;
  /** Parent of the per-server temp dir (default `os.tmpdir()`). */
  readonly tmpDir?: string;
}

/** Internal knobs used by the cluster launcher. */
export interface LaunchOptions {
  readonly pickPort?: () => Promise<number>;
  readonly extraConfig?: Readonly<Record<string, RedisConfigValue>>;
}

const MANAGED_DIRECTIVES = new Set(['port', 'bind', 'dir', 'daemonize', 'logfile']);
const NOT_READY_ERRORS = ['LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN'];
const FRESH_PORT_ATTEMPTS = 10;
const READY_LINE = /Ready to accept connections/;

interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: NodeJS.ErrnoException;
}

interface Run {
  readonly pid: number | undefined;
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function renderValue(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return String(value);
  return value === '' ? '""' : value;
}

function renderConfig(directives: ReadonlyMap<string, RedisConfigValue>): string {
  const lines: string[] = [];
  for (const [name, value] of directives) {
    const values: readonly (string | number | boolean)[] = Array.isArray(value)
      ? (value as readonly (string | number)[])
      : [value as string | number | boolean];
    for (const v of values) lines.push(`${name} ${renderValue(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

function buildDirectives(
  options: SpawnRedisOptions,
  launch: LaunchOptions,
  port: number,
  dir: string,
  logFile: string,
): Map<string, RedisConfigValue> {
  const directives = new Map<string, RedisConfigValue>([
    ['port', port],
    ['bind', LOOPBACK],
    ['dir', quote(dir)],
    ['daemonize', false],
    ['logfile', quote(logFile)],
    ['save', ''],
    ['appendonly', options.appendonly ?? false],
  ]);
  if (options.appendfsync !== undefined) directives.set('appendfsync', options.appendfsync);
  if (options.requirepass !== undefined) directives.set('requirepass', quote(options.requirepass));
  if (options.users !== undefined && options.users.length > 0) directives.set('user', options.users);
  if (options.maxmemory !== undefined) directives.set('maxmemory', options.maxmemory);
  if (options.maxmemoryPolicy !== undefined) directives.set('maxmemory-policy', options.maxmemoryPolicy);
  for (const source of [launch.extraConfig, options.config]) {
    for (const [rawName, value] of Object.entries(source ?? {})) {
      const name = rawName.toLowerCase();
      if (MANAGED_DIRECTIVES.has(name)) {
        throw new Error(`spawnRedis: the '${name}' directive is managed by the harness`);
      }
      directives.set(name, value);
    }
  }
  return directives;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number, maxBytes = 16_384): Promise<string> {
  try {
    const handle = await open(path, 'r');
    try {
      const size = (await handle.stat()).size;
      const start = Math.max(offset, size - maxBytes);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buffer, 0, buffer.length, start);
      return buffer.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/** Resolves true once the run exited, false after `timeoutMs` (the timer is cleared either way). */
function waitForExit(run: Run, timeoutMs: number): Promise<boolean> {
  if (run.exit !== undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, timeoutMs);
    void run.exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function signalProcess(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

class SpawnedRedisServer implements SpawnedRedis {
  readonly source = 'spawned';
  readonly owned = true;
  readonly host = LOOPBACK;
  readonly logFile: string;
  private readonly outputFile: string;
  private readonly confFile: string;
  private readonly serverPath: string;
  private readonly startTimeoutMs: number;
  private readonly stopGraceMs: number;
  /** The ready line is logged at `notice` level: with a quieter `loglevel` only PING is used. */
  private readonly logsReadyLine: boolean;
  private currentPort = 0;
  private run: Run | undefined;
  private lastPid = -1;
  private paused = false;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly options: SpawnRedisOptions,
    private readonly launch: LaunchOptions,
  ) {
    this.logFile = join(dir, 'redis.log');
    this.outputFile = join(dir, 'redis.out');
    this.confFile = join(dir, 'redis.conf');
    this.serverPath = options.redisServerPath ?? process.env['SLUICE_REDIS_SERVER'] ?? 'redis-server';
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.stopGraceMs = options.stopGraceMs ?? 5_000;
    const loglevel = options.config?.['loglevel'] ?? launch.extraConfig?.['loglevel'];
    this.logsReadyLine = loglevel !== 'warning' && loglevel !== 'nothing';
  }

  get port(): number {
    return this.currentPort;
  }

  get url(): string {
    const auth =
      this.options.requirepass === undefined ? '' : `:${encodeURIComponent(this.options.requirepass)}@`;
    return `redis://${auth}${this.host}:${this.currentPort}`;
  }

  get pid(): number {
    return this.lastPid;
  }

  get running(): boolean {
    return this.run !== undefined && this.run.exit === undefined;
  }

  /** First start: picks a port (a fresh one on EADDRINUSE unless it was fixed). */
  async start(): Promise<void> {
    const fixed = this.options.port;
    const pickPort = this.launch.pickPort ?? (() => getFreePort());
    const deadline = Date.now() + this.startTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      this.currentPort = fixed ?? (await pickPort());
      const outcome = await this.startOnce(deadline);
      if (outcome === 'ready') return;
      if (fixed !== undefined || attempt >= FRESH_PORT_ATTEMPTS) {
        throw new Error(`redis-server could not listen on ${this.host}:${this.currentPort}: address in use`);
      }
    }
  }

  async restart(): Promise<void> {
    if (this.stopping) throw new Error('restart() after stop()');
    if (this.run) await this.terminate(this.run);
    const deadline = Date.now() + this.startTimeoutMs;
    // Same port: retry while something (usually our own previous process' socket) still holds it.
    while ((await this.startOnce(deadline)) === 'addrinuse') {
      if (Date.now() > deadline) {
        throw new Error(
          `redis-server could not listen again on ${this.host}:${this.currentPort}: address in use`,
        );
      }
      await sleep(100);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const run = this.run;
    if (run === undefined || run.exit !== undefined) return;
    signalProcess(run.pid, signal);
    if (this.paused && signal !== 'SIGKILL') signalProcess(run.pid, 'SIGCONT');
    this.paused = false;
    const timeoutMs = Math.max(this.stopGraceMs, 10_000);
    if (!(await waitForExit(run, timeoutMs))) {
      throw new Error(`redis-server (pid ${run.pid ?? '?'}) still runs ${timeoutMs} ms after ${signal}`);
    }
  }

  pause(): void {
    if (!this.running) throw new Error('pause(): redis-server is not running');
    signalProcess(this.run?.pid, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    signalProcess(this.run?.pid, 'SIGCONT');
    this.paused = false;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.run) await this.terminate(this.run);
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return this.stopping;
  }

  /** SIGTERM (after SIGCONT if paused), SIGKILL after the grace period; resolves once it exited. */
  private async terminate(run: Run): Promise<void> {
    if (run.exit !== undefined) return;
    signalProcess(run.pid, 'SIGTERM');
    if (this.paused) signalProcess(run.pid, 'SIGCONT');
    this.paused = false;
    if (!(await waitForExit(run, this.stopGraceMs))) signalProcess(run.pid, 'SIGKILL');
    await run.exited;
  }

  private async startOnce(deadline: number): Promise<'ready' | 'addrinuse'> {
    const directives = buildDirectives(this.options, this.launch, this.currentPort, this.dir, this.logFile);
    await writeFile(this.confFile, renderConfig(directives));
    const logOffset = await fileSize(this.logFile);
    const outputFd = openSync(this.outputFile, 'w');
    let child: ChildProcess;
    try {
      child = spawn(this.serverPath, [this.confFile], {
        cwd: this.dir,
        stdio: ['ignore', outputFd, outputFd],
      });
    } finally {
      closeSync(outputFd);
    }
    child.unref();
    const pid = child.pid;
    const untrack = pid === undefined ? undefined : track(pid, this.dir);
    if (pid !== undefined) this.lastPid = pid;
    const run: Run = {
      pid,
      exit: undefined,
      exited: new Promise<ExitInfo>((resolve) => {
        const done = (info: ExitInfo): void => {
          if (run.exit !== undefined) return;
          run.exit = info;
          untrack?.();
          resolve(info);
        };
        child.once('exit', (code, signal) => {
          done({ code, signal });
        });
        child.once('error', (error: NodeJS.ErrnoException) => {
          done({ code: null, signal: null, error });
        });
      }),
    };
    this.run = run;
    this.paused = false;

    const ready = await this.waitUntilReady(run, logOffset, deadline);
    if (ready) return 'ready';

    if (run.exit === undefined) {
      // Timed out while the process is alive (hung or still loading): do not leave it behind.
      signalProcess(run.pid, 'SIGKILL');
      await run.exited;
      throw new Error(
        `redis-server on port ${this.currentPort} did not answer PING within ${this.startTimeoutMs} ms\n` +
          (await this.diagnostics(logOffset)),
      );
    }
    const exit = run.exit;
    if (exit.error) {
      throw new Error(
        exit.error.code === 'ENOENT'
          ? `'${this.serverPath}' not found: install Redis (redis-server on PATH), set SLUICE_REDIS_SERVER, ` +
              'set REDIS_URL, or run a Docker engine'
          : `could not start '${this.serverPath}': ${exit.error.message}`,
      );
    }
    const output = await this.diagnostics(logOffset);
    if (/address already in use/i.test(output)) return 'addrinuse';
    throw new Error(
      `redis-server exited during startup (code ${exit.code ?? 'none'}, signal ${exit.signal ?? 'none'})\n${output}`,
    );
  }

  /**
   * Ready = our own log (since this start) says "Ready to accept connections" (so the port is bound by
   * *this* process, not by someone else we would happen to reach, and any AOF/RDB is loaded) and the
   * server answers a PING probe. Returns false when the process exited or the deadline passed.
   */
  private async waitUntilReady(run: Run, logOffset: number, deadline: number): Promise<boolean> {
    const password = this.options.requirepass;
    const probe: string[][] = password === undefined ? [['PING']] : [['AUTH', password], ['PING']];
    const exited = run.exited.then(() => 'exited' as const);
    let listening = false;
    while (run.exit === undefined && Date.now() < deadline) {
      listening ||= !this.logsReadyLine || READY_LINE.test(await readFrom(this.logFile, logOffset));
      if (listening) {
        const reply = await Promise.race([
          sendCommands(this.host, this.currentPort, probe, 1_000).then(
            (replies) => replies[replies.length - 1],
            () => undefined,
          ),
          exited,
        ]);
        if (reply === 'exited') return false;
        if (reply === 'PONG') return true;
        if (reply instanceof RespError && !NOT_READY_ERRORS.some((e) => reply.message.startsWith(e))) {
          // NOAUTH/WRONGPASS/NOPERM: it is up, we just may not PING as the default user.
          return true;
        }
      }
      await waitForExit(run, 10);
    }
    return false;
  }

  private async diagnostics(logOffset: number): Promise<string> {
    const log = await readFrom(this.logFile, logOffset);
    const output = await readFrom(this.outputFile, 0);
    return [output.trim(), log.trim()].filter((s) => s !== '').join('\n');
  }
}

/** Starts a redis-server process (always a new one; see `findRedis` for the env/container order). */
export async function spawnRedis(options: SpawnRedisOptions = {}): Promise<SpawnedRedis> {
  return launchRedis(options, {});
}

/** `spawnRedis` with the cluster launcher's internal knobs. */
export async function launchRedis(options: SpawnRedisOptions, launch: LaunchOptions): Promise<SpawnedRedis> {
  // Validate the config before creating anything.
  buildDirectives(options, launch, 0, '', '');
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'sluice-redis-'));
  const server = new SpawnedRedisServer(dir, options, launch);
  try {
    await server.start();
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }
  return server;
}

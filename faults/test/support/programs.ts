import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type {
  ConnectCheckConfig,
  ConnectCheckReport,
  ParentMessage,
  ProducerProgramConfig,
  ProgramMessage,
  ResourceSample,
  WorkerProgramConfig,
} from '../../src/protocol';

const FAULTS_DIR = join(__dirname, '..', '..');
const SRC_DIR = join(FAULTS_DIR, 'src');
const DIST_DIR = join(FAULTS_DIR, 'dist');

export type ProgramName = 'worker' | 'producer' | 'connect-check';

let checked = false;

/**
 * Throws a clear error when `faults/dist` is missing or older than `faults/src`: the programs run
 * compiled, as real deployments do, and nothing here compiles them behind the test's back.
 */
export function assertProgramsBuilt(): void {
  if (checked) return;
  for (const file of readdirSync(SRC_DIR).filter((f) => f.endsWith('.ts'))) {
    const compiled = join(DIST_DIR, file.replace(/\.ts$/, '.js'));
    if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(join(SRC_DIR, file)).mtimeMs) {
      throw new Error(
        `faults/dist/${file.replace(/\.ts$/, '.js')} is missing or older than faults/src/${file}: ` +
          'build with `npx tsc -b faults/tsconfig.json` (npm run test:faults does it in its global setup)',
      );
    }
  }
  checked = true;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** `Date.now()` when the exit was seen. */
  readonly at: number;
}

const OUTPUT_LIMIT = 64 * 1024;

/** Every program started and not yet seen to exit, so a failed test can kill what it left behind. */
const live = new Set<ProgramProcess>();

/**
 * One running fault program (`faults/dist/<program>.js`) with what it reported: samples, its `closed`
 * result, its output (the last 64 KiB, for diagnostics) and its exit.
 */
export class ProgramProcess {
  readonly samples: ResourceSample[] = [];
  closed: { readonly drained: boolean; readonly abandoned: number } | undefined;
  done = false;
  ready = false;
  connected = false;
  exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private output = '';
  private readonly probes: ((sample: ResourceSample) => void)[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly program: ProgramName,
    readonly name: string,
    config: object,
  ) {
    assertProgramsBuilt();
    this.child = fork(join(DIST_DIR, `${program}.js`), [JSON.stringify(config)], {
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    live.add(this);
    const collect = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
      if (process.env['FAULTS_LOG'] === '1') process.stderr.write(chunk);
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this);
        this.exitInfo = { code, signal, at: Date.now() };
        resolve(this.exitInfo);
        this.notify();
      });
    });
    this.child.on('message', (message: ProgramMessage) => {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          break;
        case 'connected':
          this.connected = true;
          break;
        case 'sample':
          this.samples.push(message.sample);
          break;
        case 'probe':
          this.samples.push(message.sample);
          this.probes.shift()?.(message.sample);
          break;
        case 'closed':
          this.closed = { drained: message.drained, abandoned: message.abandoned };
          break;
        case 'done':
          this.done = true;
          break;
      }
      this.notify();
    });
  }

  /** Starts a program (see {@link waitReady}). */
  static spawn(program: ProgramName, name: string, config: object): ProgramProcess {
    return new ProgramProcess(program, name, config);
  }

  /** Starts a program and resolves once it reports `ready` (workers, producers) or at once (others). */
  static async start(
    program: ProgramName,
    name: string,
    config: object,
    options: { readonly waitReady?: boolean; readonly timeoutMs?: number } = {},
  ): Promise<ProgramProcess> {
    const p = new ProgramProcess(program, name, config);
    if (options.waitReady ?? program !== 'connect-check') await p.waitReady(options.timeoutMs);
    return p;
  }

  /** Resolves once the program reports `ready` (connected; a worker's pipelines run); rejects if it exits first. */
  waitReady(timeoutMs = 20_000): Promise<void> {
    return this.until(() => this.ready, timeoutMs, 'ready');
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** What the program wrote on stdout and stderr (the last 64 KiB). */
  get text(): string {
    return this.output;
  }

  /** The largest RSS the program reported, in bytes. */
  get peakRss(): number {
    return this.samples.reduce((max, s) => Math.max(max, s.rss), 0);
  }

  /** Asks the program for a fresh resource sample (over IPC, not through Redis). */
  probe(timeoutMs = 5000): Promise<ResourceSample> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no answer to a probe within ${timeoutMs} ms`));
      }, timeoutMs);
      this.probes.push((sample) => {
        clearTimeout(timer);
        resolve(sample);
      });
      const message: ParentMessage = { type: 'probe' };
      this.child.send(message);
    });
  }

  /** Tells a worker started with `holdStart` to start its pipelines. */
  start(): void {
    const message: ParentMessage = { type: 'start' };
    this.child.send(message);
  }

  /** Sends a signal (default SIGKILL); returns `Date.now()` at the moment it was sent. */
  signal(signal: NodeJS.Signals = 'SIGKILL'): number {
    const at = Date.now();
    if (this.alive) this.child.kill(signal);
    return at;
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<ExitInfo> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** SIGTERM (a graceful drain), SIGKILL if still running after `graceMs`; resolves on exit. */
  async terminate(graceMs: number): Promise<ExitInfo> {
    if (!this.alive) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }

  /**
   * Resolves when `predicate` holds (checked on every message of this program and every 50 ms, so it
   * may depend on anything), rejects after `timeoutMs` or if the program exits first.
   */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (predicate()) {
          finish();
          resolve();
        } else if (!this.alive) {
          finish();
          reject(
            new Error(`${this.name} exited (${describeExit(this.exitInfo)}) before ${what}:\n${this.text}`),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const poll = setInterval(check, 50);
      const finish = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

export function describeExit(info: ExitInfo | undefined): string {
  if (!info) return 'running';
  return info.signal ? `signal ${info.signal}` : `code ${String(info.code)}`;
}

/** Kills every program still running (a safety net for failed tests). */
export async function killAllPrograms(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** Starts a worker program; wait for it with `waitReady()`. */
export function spawnWorker(name: string, config: WorkerProgramConfig): ProgramProcess {
  return ProgramProcess.spawn('worker', name, config);
}

export function startProducer(name: string, config: ProducerProgramConfig): Promise<ProgramProcess> {
  return ProgramProcess.start('producer', name, config, { waitReady: true });
}

/** Runs `connect-check` to its end: its report, or `undefined` with the exit when it crashed. */
export async function runConnectCheck(config: ConnectCheckConfig): Promise<{
  readonly report: ConnectCheckReport | undefined;
  readonly exit: ExitInfo;
  readonly output: string;
}> {
  const p = await ProgramProcess.start('connect-check', 'connect-check', config, { waitReady: false });
  const exit = await p.exited;
  const line = p.text
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"results"'));
  return { report: line ? (JSON.parse(line) as ConnectCheckReport) : undefined, exit, output: p.text };
}

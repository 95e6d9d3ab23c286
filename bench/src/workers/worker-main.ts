import { Agent, request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { now, sleep } from '../clock';
import type {
  BenchPayload,
  HandlerSpec,
  ParentMessage,
  WorkerMessage,
  WorkerReport,
  WorkerSpec,
} from '../protocol';

/** What one system's worker script supplies; {@link workerMain} does the rest. */
export interface WorkerImplementation {
  /** Connects and builds the worker, without taking jobs yet. */
  prepare(spec: WorkerSpec, recorder: Recorder): Promise<RunningWorker>;
}

export interface RunningWorker {
  /** Starts taking jobs. */
  start(): void;
  /** Stops taking jobs, lets the ones in flight finish, closes every connection. */
  stop(): Promise<void>;
}

/**
 * The measurements of one worker process. The system-specific scripts call {@link Recorder.call} at
 * the start of every handler call and {@link Recorder.completed} for every job their library reports
 * as completed (settled in Redis); everything else (RSS sampling, CPU time, reporting) lives here so
 * both systems are measured by the same code.
 */
export class Recorder {
  private count = 0;
  private startedAt = 0;
  private doneAt = 0;
  private cpuAtStart: NodeJS.CpuUsage = process.cpuUsage();
  private cpuAtDone: NodeJS.CpuUsage | undefined;
  private rssAtStart = 0;
  private rssPeak = 0;
  private heapPeak = 0;
  /** CLOCK_MONOTONIC µs (the clock of V8 CPU profiles) at `start` and at done. */
  private monoStartUs = 0;
  private monoDoneUs = 0;
  private sampler: NodeJS.Timeout | undefined;
  private readonly latencies: number[] = [];
  private readonly enqueuedAt: number[] = [];
  private readonly callTimes: number[] = [];
  private readonly callSizes: number[] = [];
  private readonly callGrants: number[] = [];
  /** Completions before the measured window opened (0 until a warm-up ends, or without one). */
  private warmCount = 0;
  private warmup: WorkerReport['warmup'];

  constructor(
    private readonly spec: WorkerSpec,
    private readonly onDone: (report: WorkerReport) => void,
  ) {}

  /** `start` arrived. */
  begin(): void {
    this.monoStartUs = monotonicUs();
    this.startedAt = now();
    this.cpuAtStart = process.cpuUsage();
    this.rssAtStart = process.memoryUsage.rss();
    this.rssPeak = this.rssAtStart;
    const every = this.spec.rssEveryMs;
    if (every !== undefined) {
      this.sampler = setInterval(() => {
        this.sampleRss();
      }, every);
    }
  }

  /**
   * A handler call starts with these payloads (one, or a batch); `grantedAt` is when the first of its
   * jobs was handed to this worker (see {@link WorkerReport.callGrants}); `at` is the call's start
   * when the caller already read the clock for it (a limiter that admitted the call at that time).
   */
  call(payloads: readonly BenchPayload[], grantedAt = NaN, at = now()): void {
    if (this.spec.recordCalls) {
      this.callTimes.push(at);
      this.callSizes.push(payloads.length);
      this.callGrants.push(grantedAt);
    }
    if (this.spec.recordLatency) {
      for (const p of payloads) {
        if (p.t === undefined) continue;
        this.latencies.push(at - p.t);
        this.enqueuedAt.push(p.t);
      }
    }
  }

  /** `n` jobs completed. */
  completed(n: number): void {
    this.count += n;
    const warm = this.spec.warmup ?? 0;
    if (warm > 0 && this.warmup === undefined && this.count >= warm) this.openWindow();
    const expect = this.spec.expect;
    if (expect !== undefined && this.count >= warm + expect && this.cpuAtDone === undefined) {
      this.doneAt = now();
      this.monoDoneUs = monotonicUs();
      this.cpuAtDone = process.cpuUsage();
      this.onDone(this.report());
    }
  }

  /**
   * The warm-up's last job completed: its figures are kept, and the measured window (span, CPU time,
   * count, recordings) starts now.
   */
  private openWindow(): void {
    const cpu = process.cpuUsage(this.cpuAtStart);
    const at = now();
    this.warmup = { completed: this.count, cpuMs: (cpu.user + cpu.system) / 1000, ms: at - this.startedAt };
    this.warmCount = this.count;
    this.startedAt = at;
    this.monoStartUs = monotonicUs();
    this.cpuAtStart = process.cpuUsage();
    for (const list of [this.latencies, this.enqueuedAt, this.callTimes, this.callSizes, this.callGrants]) {
      list.length = 0;
    }
  }

  report(): WorkerReport {
    this.sampleRss();
    const cpu = process.cpuUsage(this.cpuAtStart);
    const cpuDone = this.cpuAtDone
      ? {
          user: this.cpuAtDone.user - this.cpuAtStart.user,
          system: this.cpuAtDone.system - this.cpuAtStart.system,
        }
      : cpu;
    return {
      completed: this.count - this.warmCount,
      ...(this.warmup ? { warmup: this.warmup } : {}),
      startedAt: this.startedAt,
      doneAt: this.cpuAtDone ? this.doneAt : now(),
      latencies: this.latencies,
      enqueuedAt: this.enqueuedAt,
      callTimes: this.callTimes,
      callSizes: this.callSizes,
      callGrants: this.callGrants,
      rssAtStart: this.rssAtStart,
      rssPeak: this.rssPeak,
      heapPeak: this.heapPeak,
      cpuMs: (cpuDone.user + cpuDone.system) / 1000,
    };
  }

  /**
   * Stops sampling. When the process writes a CPU profile (`BENCH_PROFILE_DIR`), also writes the
   * measured span (from `start` to done) next to it, so `profile-summary` can look at just that span.
   */
  end(): void {
    if (this.sampler) clearInterval(this.sampler);
    const dir = process.env['BENCH_PROFILE_DIR'];
    if (dir !== undefined && this.monoStartUs > 0) {
      const window = { pid: process.pid, fromUs: this.monoStartUs, toUs: this.monoDoneUs || monotonicUs() };
      writeFileSync(join(dir, `window-${process.pid}.json`), JSON.stringify(window));
    }
  }

  private sampleRss(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.rssPeak) this.rssPeak = rss;
    if (this.spec.sampleHeap) {
      const heap = process.memoryUsage().heapUsed;
      if (heap > this.heapPeak) this.heapPeak = heap;
    }
  }
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The handler body both systems run, per call. */
export function runHandler(spec: HandlerSpec, sent?: () => void): Promise<void> {
  switch (spec.kind) {
    case 'noop':
      return Promise.resolve();
    case 'sleep':
      return sleep(spec.ms);
    case 'http':
      return post(spec.url, sent);
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** One POST, resolved when its answer has been read; `sent` is told when the request has left. */
function post(url: string, sent?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    if (sent) req.on('finish', sent);
    req.end('{}');
  });
}

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(message, () => {
      resolve();
    });
  });
}

/**
 * The main function of a worker process: reads the spec from `argv[2]`, prepares the worker, says
 * `ready`, starts on `start`, reports `done` when `expect` jobs completed, and on `stop` closes,
 * reports `stopped` and exits. It exits too when the parent goes away.
 */
export function workerMain(impl: WorkerImplementation): void {
  const spec = JSON.parse(process.argv[2] ?? '{}') as WorkerSpec;
  const fail = (error: unknown): void => {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    void send({ type: 'failed', message }).then(() => process.exit(1));
  };
  const recorder = new Recorder(spec, (report) => {
    void send({ type: 'done', report });
  });
  process.on('disconnect', () => process.exit(0));
  impl.prepare(spec, recorder).then(
    (worker) => {
      let stopping = false;
      process.on('message', (message: ParentMessage) => {
        switch (message.type) {
          case 'start':
            recorder.begin();
            worker.start();
            break;
          case 'stop':
            if (stopping) return;
            stopping = true;
            worker.stop().then(async () => {
              const report = recorder.report();
              recorder.end();
              await send({ type: 'stopped', report });
              process.exit(0);
            }, fail);
            break;
        }
      });
      void send({ type: 'ready' });
    },
    (error: unknown) => {
      fail(error);
    },
  );
}

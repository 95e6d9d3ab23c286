/**
 * `npm run bench:drain` — one Sluice worker, in this process, draining a backlog of no-op jobs from
 * a redis-server of its own: the worker's CPU per job (`process.cpuUsage`), Redis's (`INFO cpu`) and
 * script calls per 1,000 jobs (`INFO commandstats`), measured around the drain only. No producer,
 * parent or second system shares the machine with it, so two checkouts compare more closely than in
 * `npm run bench`: run it in each checkout in turn, a round at a time.
 *
 * ```
 * npm run bench:drain                              # concurrency 100, prefetch 100; 100,000 jobs; 3 rounds
 * npm run bench:drain -- --batch                   # batches of 100, 10 calls at once, prefetch 1,000
 * npm run bench:drain -- --jobs 200000 --rounds 5
 * npm run bench:drain -- --jobs 1000000 --rounds 1 --window 100000   # worker CPU per 100,000 jobs
 * ```
 */
import { definePipeline, Queue, silentLogger, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { RedisTarget } from './redis-target';

export interface DrainOptions {
  /** Batches of 100 (10 handler calls at once) instead of one job per call at concurrency 100. */
  readonly batch: boolean;
  readonly jobs: number;
  readonly rounds: number;
  /**
   * Also measure the worker's CPU per job over each `window` completions in turn (the first window
   * from the start): how a long drain's cost moves as the JIT compiles the worker. Default: none.
   */
  readonly window?: number;
}

export interface DrainRound {
  readonly mode: 'concurrency 100' | 'batches of 100';
  readonly jobs: number;
  readonly jobsPerSecond: number;
  /** User and system CPU of this process during the drain, per job. */
  readonly workerUsPerJob: number;
  readonly redisUsPerJob: number;
  /** `EVALSHA` and `EVAL` calls per 1,000 jobs during the drain. */
  readonly callsPerThousand: number;
  /** With `window`: the worker's CPU per job in each window of that many completions, in order. */
  readonly windows: readonly number[];
}

const BULK = 1000;

function scriptCalls(commands: Readonly<Record<string, { readonly calls: number }>>): number {
  return (commands['evalsha']?.calls ?? 0) + (commands['eval']?.calls ?? 0);
}

/** One round: fill a fresh queue with `jobs` jobs, then drain it with one worker. */
async function round(target: RedisTarget, options: DrainOptions, n: number): Promise<DrainRound> {
  const prefix = `sluice-drain-${process.pid}-${n}`;
  const store = await RedisStore.connect({ url: target.url, prefix });
  try {
    const queue = new Queue<{ readonly i: number }>(store, 'drain');
    for (let i = 0; i < options.jobs; i += BULK) {
      const size = Math.min(BULK, options.jobs - i);
      await queue.addBulk(Array.from({ length: size }, (_, j) => ({ data: { i: i + j } })));
    }
    let done = 0;
    let finish: () => void = () => undefined;
    const drained = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const windows: number[] = [];
    const every = options.window ?? 0;
    let windowCpu = 0;
    let windowJobs = 0;
    const count = (n: number): void => {
      done += n;
      if (every > 0 && done - windowJobs >= every) {
        const c = process.cpuUsage();
        windows.push((c.user + c.system - windowCpu) / (done - windowJobs));
        windowCpu = c.user + c.system;
        windowJobs = done;
      }
      if (done >= options.jobs) finish();
    };
    const pipeline = options.batch
      ? definePipeline<{ readonly i: number }>({
          queue: 'drain',
          concurrency: 10,
          prefetch: 1000,
          batch: { size: 100, timeMs: 5 },
          handler: (jobs) => {
            count(jobs.length);
          },
        })
      : definePipeline<{ readonly i: number }>({
          queue: 'drain',
          concurrency: 100,
          prefetch: 100,
          handler: () => {
            count(1);
          },
        });
    const worker = new Worker({ store, pipelines: [pipeline], logger: silentLogger });
    const before = await target.counters();
    const cpu = process.cpuUsage();
    windowCpu = cpu.user + cpu.system;
    const started = performance.now();
    worker.start();
    await drained;
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const after = await target.counters();
    await worker.close({ timeoutMs: 30_000 });
    return {
      mode: options.batch ? 'batches of 100' : 'concurrency 100',
      jobs: options.jobs,
      jobsPerSecond: Math.round((options.jobs * 1000) / ms),
      workerUsPerJob: (used.user + used.system) / options.jobs,
      redisUsPerJob: ((after.cpuSeconds - before.cpuSeconds) * 1e6) / options.jobs,
      callsPerThousand: ((scriptCalls(after.commands) - scriptCalls(before.commands)) * 1000) / options.jobs,
      windows,
    };
  } finally {
    await store.close();
    await target.reset([prefix]);
  }
}

/** Every round, each on a queue of its own on one server (own, or `BENCH_REDIS_URL`). */
export async function drain(options: DrainOptions): Promise<DrainRound[]> {
  const target = await RedisTarget.open(process.env['BENCH_REDIS_URL']);
  try {
    const rounds: DrainRound[] = [];
    for (let n = 1; n <= options.rounds; n++) rounds.push(await round(target, options, n));
    return rounds;
  } finally {
    await target.close();
  }
}

function parse(argv: readonly string[]): DrainOptions {
  let batch = false;
  let jobs = 100_000;
  let rounds = 3;
  let window: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${arg} needs a whole number ≥ 1`);
      return v;
    };
    if (arg === '--batch') batch = true;
    else if (arg === '--jobs') jobs = value();
    else if (arg === '--rounds') rounds = value();
    else if (arg === '--window') window = value();
    else
      throw new Error(
        `usage: node bench/dist/drain.js [--batch] [--jobs N] [--rounds N] [--window N]; got ${arg}`,
      );
  }
  return { batch, jobs, rounds, ...(window === undefined ? {} : { window }) };
}

if (require.main === module) {
  drain(parse(process.argv.slice(2))).then(
    (rounds) => {
      for (const r of rounds) {
        console.log(
          `[bench:drain] ${r.mode}: ${r.jobs} jobs, ${r.jobsPerSecond} jobs/s, worker ${r.workerUsPerJob.toFixed(2)} µs/job, ` +
            `Redis ${r.redisUsPerJob.toFixed(2)} µs/job, ${r.callsPerThousand.toFixed(1)} script calls per 1,000 jobs` +
            (r.windows.length > 0
              ? `; worker µs/job by window: ${r.windows.map((w) => w.toFixed(2)).join(', ')}`
              : ''),
        );
      }
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}

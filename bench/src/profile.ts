/**
 * Sizes of a benchmark run. `full` is what the issue asks for; `quick` (`--quick`) finishes in under
 * three minutes on a two-core machine; `smoke` (`--smoke`) only proves the machinery works end to end
 * (the test suite runs it) and its numbers mean nothing.
 */
export interface Profile {
  readonly name: 'full' | 'quick' | 'smoke';
  /** Rounds per scenario; each round runs every system once, alternating. Medians are reported. */
  readonly rounds: number;
  readonly throughput: {
    readonly jobs: number;
    /** Jobs per bulk add call, both systems. */
    readonly chunk: number;
    readonly concurrency: number;
    readonly batchSize: number;
    readonly batchTimeMs: number;
    /** Handler calls at once in the batched variant (each of up to `batchSize` jobs). */
    readonly batchConcurrency: number;
    /**
     * Jobs the worker drains first, in the same backlog, before its measured window opens: the window
     * is then a long-running worker's steady state (its code compiled by the JIT). 0: the window opens
     * at `start`, a fresh process.
     */
    readonly warmupJobs: number;
    /**
     * The batched run's warm-up, in jobs. It makes one reserve and one settle call per 1,000 jobs
     * and drains about 400,000 jobs a second, so `warmupJobs` of it is a worker's first second and
     * its first 400 calls, while V8 still compiles the code those calls run (bench/README.md, "The
     * batched run's warm-up"). The one-job runs make a call or more per job, and their windows after
     * `warmupJobs` moved by no more than their spread with a longer warm-up.
     */
    readonly batchWarmupJobs: number;
  };
  readonly latency: {
    /** Adds per second of each latency run: a light load and a busy one. */
    readonly perSecond: number;
    readonly busyPerSecond: number;
    readonly durationMs: number;
    /** Jobs enqueued in the first `warmupMs` are left out of the percentiles (both systems). */
    readonly warmupMs: number;
    /**
     * The steady light run adds at `perSecond` for this long before its measured `durationMs`
     * (both systems): its window is a long-running worker's, whose code the JIT has compiled, where
     * the light run's is a new process's first seconds.
     */
    readonly steadyWarmupMs: number;
    readonly concurrency: number;
  };
  readonly rateLimit: {
    readonly allowed: number;
    readonly periodMs: number;
    readonly workers: number;
    readonly concurrency: number;
    /** How long the limit is measured while saturated. */
    readonly durationMs: number;
  };
  readonly backlog: {
    /** Jobs queued for the Redis-memory figure and the first drain. */
    readonly big: number;
    /** Jobs queued for the comparison drain. */
    readonly small: number;
    /** Jobs the slow handler drains from each backlog (at most the whole small backlog). */
    readonly drain: number;
    readonly sleepMs: number;
    readonly concurrency: number;
    readonly chunk: number;
    readonly rssEveryMs: number;
  };
  readonly batchApi: {
    /** Handler calls allowed per period. */
    readonly calls: number;
    readonly periodMs: number;
    readonly size: number;
    readonly timeMs: number;
    /** Single-job adds per second by the producer (more than the limit lets through). */
    readonly perSecond: number;
    readonly durationMs: number;
    /** Calls in the first `warmupMs` after the producer starts are left out of the rate. */
    readonly warmupMs: number;
  };
}

const FULL: Profile = {
  name: 'full',
  rounds: 3,
  throughput: {
    jobs: 100_000,
    chunk: 1000,
    concurrency: 100,
    batchSize: 100,
    batchTimeMs: 10,
    batchConcurrency: 10,
    warmupJobs: 400_000,
    batchWarmupJobs: 2_000_000,
  },
  latency: {
    perSecond: 500,
    busyPerSecond: 5000,
    durationMs: 10_000,
    warmupMs: 1000,
    steadyWarmupMs: 20_000,
    concurrency: 100,
  },
  rateLimit: { allowed: 400, periodMs: 1000, workers: 4, concurrency: 100, durationMs: 20_000 },
  backlog: {
    big: 1_000_000,
    small: 10_000,
    drain: 20_000,
    sleepMs: 10,
    concurrency: 100,
    chunk: 1000,
    rssEveryMs: 20,
  },
  batchApi: {
    calls: 10,
    periodMs: 1000,
    size: 100,
    timeMs: 50,
    perSecond: 1200,
    durationMs: 10_000,
    warmupMs: 1000,
  },
};

const QUICK: Profile = {
  ...FULL,
  name: 'quick',
  throughput: { ...FULL.throughput, jobs: 20_000, warmupJobs: 20_000, batchWarmupJobs: 100_000 },
  latency: { ...FULL.latency, durationMs: 3000, warmupMs: 500, steadyWarmupMs: 5000 },
  rateLimit: { ...FULL.rateLimit, durationMs: 4000 },
  backlog: { ...FULL.backlog, big: 100_000, small: 10_000, drain: 5000 },
  batchApi: { ...FULL.batchApi, durationMs: 4000 },
};

const SMOKE: Profile = {
  ...FULL,
  name: 'smoke',
  rounds: 1,
  throughput: { ...FULL.throughput, jobs: 2000, warmupJobs: 1000, batchWarmupJobs: 1500 },
  latency: { ...FULL.latency, durationMs: 1000, warmupMs: 200, steadyWarmupMs: 500 },
  rateLimit: { ...FULL.rateLimit, durationMs: 2000 },
  backlog: { ...FULL.backlog, big: 5000, small: 1000, drain: 1000 },
  batchApi: { ...FULL.batchApi, durationMs: 2000, warmupMs: 200 },
};

export const PROFILES: Readonly<Record<Profile['name'], Profile>> = {
  full: FULL,
  quick: QUICK,
  smoke: SMOKE,
};

/**
 * `npm run bench:limits` — what a rate limit costs as it rises above the rate the workers reach:
 * one worker process of 100 handlers drains a backlog under limits from 2,000 to 1,000,000 per
 * second, and with no limit, on a redis-server of its own, one after another in one process (a
 * limit of 1,000,000 first, in the new process, and again later), with handlers that return at once
 * and with handlers of 20 ms. Reported per run: jobs/s, Redis CPU per job (`INFO cpu`), Redis
 * script calls per job and the starts the worker moved (found late against their slots,
 * `start-timing` telemetry). A limit the workers cannot reach should cost about what no limit
 * costs.
 *
 * ```
 * npm run bench:limits                      # full sizes (about a minute)
 * npm run bench:limits -- --smoke --out DIR # tiny sizes (the test suite runs this)
 * ```
 *
 * Writes `RESULTS-limits.md` and `results/limits.json` into `bench/` (or `--out DIR`).
 */
import { Redis } from 'ioredis';
import { definePipeline, silentLogger, Telemetry, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { spawnRedis, uniquePrefix } from '@sluice/testing';
import { benchMain, runAsProgram } from './cli';
import { now, sleep } from './clock';
import { load1, runMachine, type RunMachine } from './machine';
import { markdownTable } from './report';
import { significant } from './stats';

/** One run: a limit per 1,000 ms (`null`: none) and how long each handler call takes. */
export interface LimitRun {
  readonly allowed: number | null;
  readonly handlerMs: number;
}

export interface LimitsProfile {
  readonly name: 'full' | 'smoke';
  readonly jobs: number;
  readonly concurrency: number;
  /** Run in this order in one worker process (the first run is the process's first). */
  readonly runs: readonly LimitRun[];
}

const noop = (allowed: number | null): LimitRun => ({ allowed, handlerMs: 0 });

export const LIMITS_PROFILES: Readonly<Record<LimitsProfile['name'], LimitsProfile>> = {
  full: {
    name: 'full',
    jobs: 5_000,
    concurrency: 100,
    runs: [
      noop(1_000_000),
      noop(1_000_000),
      noop(2_000),
      noop(5_000),
      noop(20_000),
      noop(null),
      noop(1_000_000),
      { allowed: 1_000_000, handlerMs: 20 },
      { allowed: null, handlerMs: 20 },
    ],
  },
  smoke: {
    name: 'smoke',
    jobs: 300,
    concurrency: 20,
    runs: [noop(2_000), { allowed: 1_000_000, handlerMs: 5 }],
  },
};

export interface LimitFigures extends LimitRun {
  readonly jobsPerSec: number;
  readonly redisUsPerJob: number;
  readonly scriptCallsPerJob: number;
  readonly moved: number;
  readonly handedBack: number;
}

export interface LimitsResults {
  readonly machine: RunMachine;
  readonly profile: LimitsProfile;
  readonly figures: readonly LimitFigures[];
}

async function redisFigures(admin: Redis): Promise<{ cpuUs: number; scriptCalls: number }> {
  const [cpu, stats] = await Promise.all([admin.info('cpu'), admin.info('commandstats')]);
  const field = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  return {
    cpuUs: (field(cpu, /^used_cpu_user:([\d.]+)/m) + field(cpu, /^used_cpu_sys:([\d.]+)/m)) * 1e6,
    scriptCalls: field(stats, /^cmdstat_evalsha:calls=(\d+)/m) + field(stats, /^cmdstat_eval:calls=(\d+)/m),
  };
}

async function measure(
  url: string,
  admin: Redis,
  run: LimitRun,
  profile: LimitsProfile,
): Promise<LimitFigures> {
  const { allowed, handlerMs } = run;
  const store = await RedisStore.connect({ url, prefix: uniquePrefix(`limits-${allowed ?? 'none'}`) });
  const telemetry = new Telemetry();
  let moved = 0;
  let handedBack = 0;
  telemetry.events$.subscribe((e) => {
    if (e.type !== 'start-timing') return;
    if (e.kind === 'moved') moved++;
    else if (e.kind === 'handed-back') handedBack++;
  });
  const worker = new Worker({
    store,
    logger: silentLogger,
    telemetry,
    pipelines: [
      definePipeline<number>({
        queue: 'limited',
        concurrency: profile.concurrency,
        ...(allowed === null ? {} : { rateLimit: { allowed, periodMs: 1_000 } }),
        handler: handlerMs > 0 ? () => sleep(handlerMs) : () => undefined,
      }),
    ],
  });
  try {
    for (let from = 0; from < profile.jobs; from += 1000) {
      const count = Math.min(1000, profile.jobs - from);
      await new Promise<void>((resolve, reject) =>
        store
          .enqueue(Array.from({ length: count }, (_, i) => ({ queue: 'limited', data: from + i })))
          .subscribe({ error: reject, complete: resolve }),
      );
    }
    let completed = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    worker.outcomes$.subscribe((o) => {
      if (o.kind === 'completed' && ++completed === profile.jobs) done();
    });
    const before = await redisFigures(admin);
    const started = now();
    worker.start();
    await finished;
    const seconds = (now() - started) / 1000;
    const after = await redisFigures(admin);
    return {
      allowed,
      handlerMs,
      jobsPerSec: Math.round(profile.jobs / seconds),
      redisUsPerJob: significant((after.cpuUs - before.cpuUs) / profile.jobs, 3),
      scriptCallsPerJob: significant((after.scriptCalls - before.scriptCalls) / profile.jobs, 3),
      moved,
      handedBack,
    };
  } finally {
    await worker.close({ timeoutMs: 10_000 });
    await store.close();
  }
}

export async function runLimits(profile: LimitsProfile, log: (m: string) => void): Promise<LimitsResults> {
  const loadBefore = load1();
  const server = await spawnRedis();
  const admin = new Redis(server.port, server.host);
  try {
    const redis = /^redis_version:(\S+)/m.exec(await admin.info('server'))?.[1] ?? 'unknown';
    const figures: LimitFigures[] = [];
    for (const run of profile.runs) {
      const f = await measure(server.url, admin, run, profile);
      figures.push(f);
      log(JSON.stringify(f));
      await admin.flushall();
    }
    return { machine: runMachine(redis, loadBefore), profile, figures };
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

export function limitsMarkdown(r: LimitsResults): string {
  return `${[
    '# Rate limits above the rate reached',
    '',
    'Generated by `npm run bench:limits` (`bench/src/limits.ts`). A redis-server of its own',
    `(${r.machine.redis}) on ${r.machine.cpuCount} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Node ${r.machine.node};`,
    `load ${r.machine.loadBefore} before, ${r.machine.loadAfter} after; ${r.machine.date}. One run per row: one worker`,
    `process of ${r.profile.concurrency} handlers drains ${r.profile.jobs.toLocaleString('en-US')} jobs added beforehand (the first`,
    "window's `allowed` may start at once).",
    '',
    markdownTable(
      [
        'run',
        'limit per 1,000 ms',
        'handler call (ms)',
        'jobs/s',
        'Redis CPU per job (µs)',
        'script calls per job',
        'starts moved',
        'handed back',
      ],
      r.figures.map((f, i) => [
        String(i + 1),
        f.allowed === null ? 'none' : f.allowed.toLocaleString('en-US'),
        String(f.handlerMs),
        f.jobsPerSec.toLocaleString('en-US'),
        String(f.redisUsPerJob),
        String(f.scriptCallsPerJob),
        f.moved.toLocaleString('en-US'),
        f.handedBack.toLocaleString('en-US'),
      ]),
      ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    'The runs follow one another in one worker process, each with a store and a worker of its own.',
    'A start found later than its margin after its slot is moved to a new slot (one script call) or',
    'handed back. A limit grants jobs ahead of their slots (at most two rounds of handlers), and none',
    'while jobs whose slots came wait past half their margin for a handler (`GrantsAhead`), so',
    'under a limit far above the rate reached jobs do not wait behind busy handlers until they are late.',
  ].join('\n')}\n`;
}

export const main = benchMain({
  name: 'limits',
  profiles: LIMITS_PROFILES,
  run: runLimits,
  markdown: limitsMarkdown,
});

runAsProgram(module, main);

/**
 * `npm run bench:limits` — what a rate limit costs as it rises above the rate the workers reach:
 * one worker process of 100 handlers (no-op) drains a backlog under limits from 2,000 to 1,000,000
 * per second, on a redis-server of its own, one after another in one process (a limit of 1,000,000
 * first, in the new process, and again at the end). Reported per limit: jobs/s, Redis CPU per job
 * (`INFO cpu`), Redis script calls per job and the starts the worker moved (found late against
 * their slots, `start-timing` telemetry). A limit the workers cannot reach should cost what no
 * limit costs; today it does not (see the README's rate-limit section).
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
import { now } from './clock';
import { load1, runMachine, type RunMachine } from './machine';
import { markdownTable } from './report';
import { significant } from './stats';

export interface LimitsProfile {
  readonly name: 'full' | 'smoke';
  readonly jobs: number;
  readonly concurrency: number;
  /** Limits per 1,000 ms, run in this order in one worker process (the first run is the process's first). */
  readonly limits: readonly number[];
}

export const LIMITS_PROFILES: Readonly<Record<LimitsProfile['name'], LimitsProfile>> = {
  full: {
    name: 'full',
    jobs: 5_000,
    concurrency: 100,
    limits: [1_000_000, 1_000_000, 2_000, 5_000, 20_000, 1_000_000],
  },
  smoke: { name: 'smoke', jobs: 300, concurrency: 20, limits: [2_000] },
};

export interface LimitFigures {
  readonly allowed: number;
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
  allowed: number,
  profile: LimitsProfile,
): Promise<LimitFigures> {
  const store = await RedisStore.connect({ url, prefix: uniquePrefix(`limits-${allowed}`) });
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
        rateLimit: { allowed, periodMs: 1_000 },
        handler: () => undefined,
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
    for (const allowed of profile.limits) {
      const f = await measure(server.url, admin, allowed, profile);
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
    `process of ${r.profile.concurrency} handlers (no-op) drains ${r.profile.jobs.toLocaleString('en-US')} jobs added beforehand (the first`,
    "window's `allowed` may start at once).",
    '',
    markdownTable(
      [
        'run',
        'limit per 1,000 ms',
        'jobs/s',
        'Redis CPU per job (µs)',
        'script calls per job',
        'starts moved',
        'handed back',
      ],
      r.figures.map((f, i) => [
        String(i + 1),
        f.allowed.toLocaleString('en-US'),
        f.jobsPerSec.toLocaleString('en-US'),
        String(f.redisUsPerJob),
        String(f.scriptCallsPerJob),
        f.moved.toLocaleString('en-US'),
        f.handedBack.toLocaleString('en-US'),
      ]),
      ['right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
    'The runs follow one another in one worker process, each with a store and a worker of its own.',
    'A start found later than its margin after its slot is moved to a new slot (one script call) or',
    'handed back. Far above the rate reached, the units of a reserve all fall due at one millisecond;',
    'once the first ones are found late, nearly every start may be moved from then on, each move a',
    'script call (it finds the old slot by bisection where the limit has room). Not yet fixed.',
  ].join('\n')}\n`;
}

export const main = benchMain({
  name: 'limits',
  profiles: LIMITS_PROFILES,
  run: runLimits,
  markdown: limitsMarkdown,
});

runAsProgram(module, main);

/**
 * `npm run bench:instructions` — Redis work per job as instructions, counted by Valgrind's callgrind
 * on a redis-server of its own: the same count for the same code and inputs whatever else the
 * machine does, so two checkouts can be compared on a busy two-core machine where CPU seconds move
 * by 10–30 % from one run to the next. Sluice only (the comparison with BullMQ is `npm run bench`).
 *
 * Phases, each on the same server, its counters zeroed before and dumped after
 * (`callgrind_control -z` / `-d`):
 * - enqueue: `RedisStore.enqueue` of small payloads in calls of 1,000 (as the throughput scenario);
 * - add, one job per call, none parked: the same one job at a time (as `Queue.add`), on a queue no
 *   worker waits on;
 * - process, batches of 100: reserve 100, settle the 100 as completed, until the backlog is drained;
 * - process, one job per call: the same with reserve 1 (the shape of a lightly loaded queue);
 * - add, one job handed over to a parked worker: a worker's reserve found the queue empty and
 *   parked its demand, and each add of one job leases it to the park and publishes it on the park's
 *   channel (the add on the path of every job of a lightly loaded queue, as in the latency scenario);
 * - two floors, for scale: what a processed job's record alone costs, from one script per 100 jobs
 *   (`FLOORS`): read (`HGETALL`), written finished (`HSET`) and deleted (`DEL` of the 100) as the
 *   hash Sluice keeps per job; and the same as one string per job (`MGET`, `MSET`, `DEL`). Nothing
 *   else a queue needs (order, leases, counts, events) is in them.
 *
 * Only the counts are figures: under callgrind the server runs some fifty times slower, so its
 * timers (`hz`) run more often per job than at full speed; the counts include them, the same way
 * for both checkouts of a comparison.
 *
 * ```
 * npm run bench:instructions                      # about two minutes
 * npm run bench:instructions -- --smoke --out DIR # tiny sizes (the test suite runs this)
 * ```
 *
 * Needs `valgrind` (Debian: `apt-get install -y valgrind`). Writes `RESULTS-instructions.md` and
 * `results/instructions.json` into `bench/` (or `--out DIR`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { firstValueFrom } from 'rxjs';
import { Redis } from 'ioredis';
import { OutcomeKind } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { benchMain, runAsProgram } from './cli';
import { sleep, withTimeout } from './clock';
import { load1, runMachine, type RunMachine } from './machine';
import { payload } from './producers';
import { markdownTable } from './report';

const run = promisify(execFile);

export interface InstructionsProfile {
  readonly name: 'full' | 'smoke';
  /** Jobs added, and processed in batches of 100. */
  readonly jobs: number;
  /** Jobs processed one per call. */
  readonly singleJobs: number;
}

export const INSTRUCTIONS_PROFILES: Readonly<Record<InstructionsProfile['name'], InstructionsProfile>> = {
  full: { name: 'full', jobs: 10_000, singleJobs: 2_000 },
  smoke: { name: 'smoke', jobs: 300, singleJobs: 50 },
};

export interface PhaseCount {
  readonly phase: string;
  readonly jobs: number;
  /** Instructions redis-server executed in the phase (callgrind's `summary`). */
  readonly instructions: number;
  readonly perJob: number;
}

export interface InstructionsResults {
  readonly machine: RunMachine;
  readonly profile: InstructionsProfile;
  readonly valgrind: string;
  readonly phases: readonly PhaseCount[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** redis-server under callgrind, its dumps in a temporary directory. */
class CountedRedis {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<CountedRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-callgrind-'));
    const port = await freePort();
    const child = spawn(
      'valgrind',
      [
        '--tool=callgrind',
        `--callgrind-out-file=${join(dir, 'callgrind.out.%p')}`,
        'redis-server',
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) => {
        reject(new Error(`valgrind redis-server exited (${String(code)})`));
      });
    });
    const url = `redis://127.0.0.1:${port}`;
    const ready = (async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const probe = new Redis(url, {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        probe.on('error', () => undefined); // refused until the server listens: retried below
        try {
          await probe.connect();
          await probe.ping();
          return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(250);
        } finally {
          probe.disconnect();
        }
      }
    })();
    await Promise.race([ready, exited]);
    return new CountedRedis(url, child, dir);
  }

  /** Zeroes the counters. */
  async zero(): Promise<void> {
    await run('callgrind_control', ['-z', String(this.child.pid)]);
  }

  /** Dumps the counters and answers the instructions since the last zero. */
  async dump(): Promise<number> {
    const before = new Set(readdirSync(this.dir));
    await run('callgrind_control', ['-d', String(this.child.pid)]);
    const file = readdirSync(this.dir).find((f) => f.startsWith('callgrind.out.') && !before.has(f));
    if (!file) throw new Error('callgrind wrote no dump');
    const summary = /^summary:\s*(\d+)/m.exec(readFileSync(join(this.dir, file), 'utf8'));
    if (!summary?.[1]) throw new Error(`no summary line in ${file}`);
    return Number(summary[1]);
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      this.child.once('exit', () => {
        resolve();
      });
    });
    this.child.kill('SIGTERM');
    // At most 30 s: a server that has not exited by then is left to its SIGTERM.
    await withTimeout(exited, 30_000, 'counted server still running').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Reserves `batch` at a time and settles each batch as completed, until `jobs` are done. */
async function drain(store: RedisStore, queue: string, jobs: number, batch: number): Promise<number> {
  let done = 0;
  while (done < jobs) {
    const { jobs: leased } = await firstValueFrom(
      store.reserve(queue, batch, { leaseMs: 600_000, workerId: 'bench' }),
    );
    if (leased.length === 0) break;
    await firstValueFrom(
      store.settle(
        leased.map((j) => ({
          queue,
          id: j.id,
          token: j.lease.token,
          kind: OutcomeKind.Completed,
          result: undefined,
          durationMs: 0,
        })),
      ),
    );
    done += leased.length;
  }
  return done;
}

/**
 * Parks a demand of `jobs` on an empty queue (one reserve), then adds `jobs` jobs one per call, each
 * handed over to the park; answers how many the park's channel delivered.
 */
async function handOver(store: RedisStore, queue: string, jobs: number): Promise<() => Promise<number>> {
  const channel = store.openHandoffs(queue, 'bench-park');
  await channel.ready;
  const parked = await firstValueFrom(
    store.reserve(queue, jobs, {
      leaseMs: 600_000,
      workerId: 'bench',
      park: { id: 'bench-park', seq: 1, ttlMs: 600_000 },
    }),
  );
  if (parked.jobs.length !== 0) throw new Error(`queue ${queue} is not empty`);
  let delivered = 0;
  const counting = channel.handoffs.subscribe((h) => {
    delivered += h.jobs.length;
  });
  return async () => {
    try {
      for (let i = 0; i < jobs; i++) await firstValueFrom(store.enqueue([{ queue, data: payload(i) }]));
      // The last messages are published by now; their delivery to this process may lag.
      for (let waited = 0; delivered < jobs && waited < 10_000; waited += 10) await sleep(10);
      return delivered;
    } finally {
      counting.unsubscribe();
      channel.close();
    }
  };
}

/**
 * The floor phases: one script call per 100 records (KEYS), with the finish time (ARGV 1) and a
 * record's packed form (ARGV 2). Each answers how many records it handled.
 */
const FLOORS = [
  {
    phase: "floor: a job's record read, finished and deleted (hash per job), 100 a call",
    kind: 'hash',
    script: `for i = 1, #KEYS do redis.call('HGETALL', KEYS[i]) end
for i = 1, #KEYS do redis.call('HSET', KEYS[i], 's', 'c', 'f', ARGV[1]) end
redis.call('DEL', unpack(KEYS))
return #KEYS`,
  },
  {
    phase: 'floor: the same with one string per job (MGET, MSET, DEL), 100 a call',
    kind: 'string',
    script: `redis.call('MGET', unpack(KEYS))
local kv = {}
for i = 1, #KEYS do
  kv[2 * i - 1] = KEYS[i]
  kv[2 * i] = ARGV[2]
end
redis.call('MSET', unpack(kv))
redis.call('DEL', unpack(KEYS))
return #KEYS`,
  },
] as const;

/** Writes `jobs` records for a floor phase (not counted), then answers the counted work. */
async function floor(
  client: Redis,
  kind: (typeof FLOORS)[number]['kind'],
  script: string,
  jobs: number,
): Promise<() => Promise<number>> {
  const key = (i: number) => `sluice-bench-instructions:{floor}:${kind}:${i}`;
  const created = String(Date.now());
  for (let i = 0; i < jobs; i += 1_000) {
    const pipeline = client.pipeline();
    for (let j = i; j < Math.min(jobs, i + 1_000); j++) {
      const data = JSON.stringify(payload(j));
      if (kind === 'hash') pipeline.hset(key(j), 'd', data, 'c', created);
      else pipeline.set(key(j), `${data}\0${created}`);
    }
    await pipeline.exec();
  }
  const sha = String(await client.script('LOAD', script));
  const finished = `${JSON.stringify(payload(0))}\0${created}\0c\0${created}`;
  return async () => {
    let done = 0;
    for (let i = 0; i < jobs; i += 100) {
      const keys = Array.from({ length: Math.min(100, jobs - i) }, (_, j) => key(i + j));
      done += Number(await client.evalsha(sha, keys.length, ...keys, created, finished));
    }
    return done;
  };
}

/** Adds `jobs` jobs in calls of 1,000; answers how many were added. */
async function add(store: RedisStore, queue: string, jobs: number): Promise<number> {
  let added = 0;
  for (let i = 0; i < jobs; i += 1_000) {
    const n = Math.min(1_000, jobs - i);
    const results = await firstValueFrom(
      store.enqueue(Array.from({ length: n }, (_, j) => ({ queue, data: payload(i + j) }))),
    );
    added += results.length;
  }
  return added;
}

/** Adds `jobs` jobs one per call (as `Queue.add` does); answers how many were added. */
async function addOneByOne(store: RedisStore, queue: string, jobs: number): Promise<number> {
  let added = 0;
  for (let i = 0; i < jobs; i++) {
    added += (await firstValueFrom(store.enqueue([{ queue, data: payload(i) }]))).length;
  }
  return added;
}

export async function runInstructions(
  profile: InstructionsProfile,
  log: (message: string) => void,
): Promise<InstructionsResults> {
  const valgrind = (await run('valgrind', ['--version'])).stdout.trim();
  const loadBefore = load1();
  const redis = await CountedRedis.start();
  const phases: PhaseCount[] = [];
  try {
    const store = await RedisStore.connect({ url: redis.url, prefix: 'sluice-bench-instructions' });
    const redisVersion = String((await store.client.info('server')).match(/redis_version:(\S+)/)?.[1]);
    try {
      // One add, reserve and settle first: every script is loaded before anything is counted.
      await add(store, 'warm', 1);
      await drain(store, 'warm', 1, 1);
      // `work` answers how many jobs it added or processed.
      const measure = async (phase: string, jobs: number, work: () => Promise<number>) => {
        await redis.zero();
        const counted = await work();
        const instructions = await redis.dump();
        if (counted !== jobs) throw new Error(`${phase}: ${counted} jobs of ${jobs}`);
        phases.push({ phase, jobs, instructions, perJob: Math.round(instructions / jobs) });
        log(`${phase}: ${Math.round(instructions / jobs).toLocaleString('en')} instructions per job`);
      };
      await measure('enqueue, calls of 1,000', profile.jobs, () => add(store, 'bench', profile.jobs));
      await measure('process, batches of 100', profile.jobs, () => drain(store, 'bench', profile.jobs, 100));
      await measure('add, one job per call, none parked', profile.singleJobs, () =>
        addOneByOne(store, 'single', profile.singleJobs),
      );
      await measure('process, one job per call', profile.singleJobs, () =>
        drain(store, 'single', profile.singleJobs, 1),
      );
      await measure(
        'add, one job handed over to a parked worker',
        profile.singleJobs,
        await handOver(store, 'handoff', profile.singleJobs),
      );
      for (const f of FLOORS) {
        await measure(
          f.phase,
          profile.jobs,
          await floor(store.client as Redis, f.kind, f.script, profile.jobs),
        );
      }
    } finally {
      await store.close();
    }
    return { machine: runMachine(redisVersion, loadBefore), profile, valgrind, phases };
  } finally {
    await redis.stop();
  }
}

export function instructionsMarkdown(r: InstructionsResults): string {
  const m = r.machine;
  return [
    '# Redis instructions per job',
    '',
    `Generated by \`npm run bench:instructions\` (${r.profile.name} sizes) on ${m.date}. Do not edit by hand.`,
    '',
    `- Machine: ${m.cpuModel}, ${m.cpuCount} CPUs, ${m.memoryGiB} GiB; Node ${m.node}, Redis ${m.redis}, ${r.valgrind}`,
    '- redis-server runs under callgrind, which counts the instructions it executes: the count does',
    "  not move with the machine's load, so two checkouts compare on any machine (the server runs",
    '  about fifty times slower meanwhile, so only the counts are figures).',
    '',
    markdownTable(
      ['Phase', 'Jobs', 'Instructions', 'Per job'],
      r.phases.map((p) => [
        p.phase,
        p.jobs.toLocaleString('en'),
        p.instructions.toLocaleString('en'),
        p.perJob.toLocaleString('en'),
      ]),
      ['left', 'right', 'right', 'right'],
    ),
    '',
  ].join('\n');
}

export const main = benchMain({
  name: 'instructions',
  profiles: INSTRUCTIONS_PROFILES,
  run: runInstructions,
  markdown: instructionsMarkdown,
});

runAsProgram(module, main);

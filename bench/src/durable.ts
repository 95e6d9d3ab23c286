/**
 * `npm run bench:durable` — the cost of durable adds (`RedisStore`'s `durableAdds`: each add waits
 * for a replica's acknowledgement with `WAIT`) on a master of its own with one replica:
 *
 * - **Latency of one add** (sequential `Queue.add` calls): p50 and p99, plain and durable; BullMQ's
 *   `Queue.add` on the same master for reference (BullMQ has no such option: its adds are plain).
 * - **Bulk adds** (100 jobs a call): jobs/s, plain and durable; BullMQ's `addBulk` for reference.
 * - **Redis CPU per added job** on the master (`INFO cpu`), each way.
 *
 * Rounds alternate the modes; medians are reported. Checks on the way that a durable add's jobs are
 * on the replica the moment the add resolves.
 *
 * ```
 * npm run bench:durable                      # full sizes (about a minute)
 * npm run bench:durable -- --smoke --out DIR # tiny sizes (the test suite runs this)
 * ```
 *
 * Writes `RESULTS-durable.md` and `results/durable.json` into `bench/` (or `--out DIR`).
 */
import { Queue as BullQueue } from 'bullmq';
import { Redis } from 'ioredis';
import { Queue } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { spawnRedis, uniquePrefix, type SpawnedRedis } from '@sluice/testing';
import { bullmqConnection } from './bullmq-connection';
import { benchMain, runAsProgram } from './cli';
import { now, sleep } from './clock';
import { load1, runMachine, type RunMachine } from './machine';
import { markdownTable } from './report';
import { median, percentile, significant } from './stats';

export interface DurableProfile {
  readonly name: 'full' | 'smoke';
  /** Sequential single adds per mode and round. */
  readonly singles: number;
  /** Jobs added in calls of `batch` per mode and round. */
  readonly bulk: number;
  readonly batch: number;
  readonly rounds: number;
}

export const DURABLE_PROFILES: Readonly<Record<DurableProfile['name'], DurableProfile>> = {
  full: { name: 'full', singles: 5_000, bulk: 100_000, batch: 100, rounds: 3 },
  smoke: { name: 'smoke', singles: 50, bulk: 1_000, batch: 100, rounds: 1 },
};

export type Mode = 'plain' | 'durable' | 'bullmq';
export const MODES: readonly Mode[] = ['plain', 'durable', 'bullmq'];

/** One mode's figures in one round. */
export interface ModeFigures {
  readonly singleP50Ms: number;
  readonly singleP99Ms: number;
  readonly bulkJobsPerSec: number;
  /** Master CPU (user + sys) per job added, over both parts. */
  readonly redisUsPerJob: number;
  /** Durable mode: jobs of the last bulk call found on the replica right after it resolved. */
  readonly onReplicaAtOnce?: number;
}

export interface DurableResults {
  readonly machine: RunMachine;
  readonly profile: DurableProfile;
  readonly rounds: Readonly<Record<Mode, readonly ModeFigures[]>>;
  readonly median: Readonly<Record<Mode, ModeFigures>>;
}

async function cpuUs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

interface Adder {
  one(n: number): Promise<unknown>;
  many(from: number, count: number): Promise<readonly string[]>;
  /** Whether `client` holds job `id`'s record (Sluice: its own hash or its compact record). */
  readonly stored?: (client: Redis, id: string) => Promise<boolean>;
  close(): Promise<void>;
}

async function adder(mode: Mode, master: SpawnedRedis, prefix: string): Promise<Adder> {
  if (mode === 'bullmq') {
    const queue = new BullQueue('bench', { connection: bullmqConnection(master.url), prefix });
    await queue.waitUntilReady();
    return {
      one: (n) => queue.add('job', { n }),
      many: async (from, count) => {
        const jobs = await queue.addBulk(
          Array.from({ length: count }, (_, i) => ({ name: 'job', data: { n: from + i } })),
        );
        return jobs.map((j) => j.id ?? '');
      },
      close: () => queue.close(),
    };
  }
  const store = await RedisStore.connect({
    connection: master.url,
    prefix,
    ...(mode === 'durable' ? { durableAdds: { replicas: 1, timeoutMs: 5_000 } } : {}),
  });
  const queue = new Queue<{ n: number }>(store, 'bench');
  return {
    one: (n) => queue.add({ n }),
    many: async (from, count) => {
      const added = await queue.addBulk(Array.from({ length: count }, (_, i) => ({ data: { n: from + i } })));
      return added.map((a) => a.id);
    },
    stored: async (client, id) => {
      if ((await client.hexists(store.keys.compact('bench', id), id)) === 1) return true;
      return (await client.exists(store.keys.job('bench', id))) === 1;
    },
    close: () => store.close(),
  };
}

async function measure(
  mode: Mode,
  master: SpawnedRedis,
  admin: Redis,
  replica: Redis,
  profile: DurableProfile,
): Promise<ModeFigures> {
  const prefix = uniquePrefix(`durable-${mode}`);
  const add = await adder(mode, master, prefix);
  try {
    const cpuBefore = await cpuUs(admin);
    const latencies: number[] = [];
    for (let n = 0; n < profile.singles; n++) {
      const started = now();
      await add.one(n);
      latencies.push(now() - started);
    }
    const bulkStarted = now();
    let last: readonly string[] = [];
    for (let from = 0; from < profile.bulk; from += profile.batch) {
      last = await add.many(from, Math.min(profile.batch, profile.bulk - from));
    }
    const bulkSeconds = (now() - bulkStarted) / 1000;
    const cpuAfter = await cpuUs(admin);
    let onReplicaAtOnce: number | undefined;
    const stored = add.stored;
    if (mode === 'durable' && stored) {
      // Right after the last bulk add resolved: its jobs must be on the replica already.
      const found = await Promise.all(last.map((id) => stored(replica, id)));
      onReplicaAtOnce = found.filter(Boolean).length;
    }
    return {
      singleP50Ms: significant(percentile(latencies, 50), 3),
      singleP99Ms: significant(percentile(latencies, 99), 3),
      bulkJobsPerSec: Math.round(profile.bulk / bulkSeconds),
      redisUsPerJob: significant((cpuAfter - cpuBefore) / (profile.singles + profile.bulk), 3),
      ...(onReplicaAtOnce === undefined ? {} : { onReplicaAtOnce }),
    };
  } finally {
    await add.close();
    // Keep the master small between rounds (a server of our own).
    await admin.flushall();
  }
}

export async function runDurable(profile: DurableProfile, log: (m: string) => void): Promise<DurableResults> {
  const loadBefore = load1();
  const master = await spawnRedis();
  const replicaServer = await spawnRedis({ config: { replicaof: `${master.host} ${master.port}` } });
  const admin = new Redis(master.port, master.host);
  const replica = new Redis(replicaServer.port, replicaServer.host);
  try {
    for (const deadline = Date.now() + 30_000; ;) {
      if (/^master_link_status:up/m.test(await replica.info('replication'))) break;
      if (Date.now() > deadline) throw new Error('the replica did not catch up with its master');
      await sleep(50);
    }
    const redis = /^redis_version:(\S+)/m.exec(await admin.info('server'))?.[1] ?? 'unknown';
    const rounds: Record<Mode, ModeFigures[]> = { plain: [], durable: [], bullmq: [] };
    for (let round = 1; round <= profile.rounds; round++) {
      // Alternate the order each round, so no mode always runs first.
      const order = round % 2 === 1 ? MODES : [...MODES].reverse();
      for (const mode of order) {
        const figures = await measure(mode, master, admin, replica, profile);
        rounds[mode].push(figures);
        log(`round ${round} ${mode}: ${JSON.stringify(figures)}`);
      }
    }
    const med = (list: readonly ModeFigures[]): ModeFigures => ({
      singleP50Ms: median(list.map((f) => f.singleP50Ms)),
      singleP99Ms: median(list.map((f) => f.singleP99Ms)),
      bulkJobsPerSec: median(list.map((f) => f.bulkJobsPerSec)),
      redisUsPerJob: median(list.map((f) => f.redisUsPerJob)),
      ...(list[0]?.onReplicaAtOnce === undefined
        ? {}
        : { onReplicaAtOnce: Math.min(...list.map((f) => f.onReplicaAtOnce ?? 0)) }),
    });
    return {
      machine: runMachine(redis, loadBefore),
      profile,
      rounds,
      median: { plain: med(rounds.plain), durable: med(rounds.durable), bullmq: med(rounds.bullmq) },
    };
  } finally {
    admin.disconnect();
    replica.disconnect();
    await replicaServer.stop();
    await master.stop();
  }
}

export function durableMarkdown(r: DurableResults): string {
  const m = r.median;
  const ratio = (a: number, b: number): string => `${significant(a / b, 3)}×`;
  const row = (label: string, mode: Mode): string[] => [
    label,
    String(m[mode].singleP50Ms),
    String(m[mode].singleP99Ms),
    m[mode].bulkJobsPerSec.toLocaleString('en-US'),
    String(m[mode].redisUsPerJob),
  ];
  return `${[
    '# Durable adds: what waiting for a replica costs',
    '',
    'Generated by `npm run bench:durable` (`bench/src/durable.ts`). A master and one replica of its own',
    `(redis-server ${r.machine.redis}) on ${r.machine.cpuCount} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB,`,
    `Node ${r.machine.node}; ${r.profile.rounds} round(s) alternating the modes, medians; load ${r.machine.loadBefore} before,`,
    `${r.machine.loadAfter} after; ${r.machine.date}. Profile \`${r.profile.name}\`: ${r.profile.singles.toLocaleString('en-US')}`,
    `sequential single adds and ${r.profile.bulk.toLocaleString('en-US')} jobs in calls of ${r.profile.batch} per mode and round.`,
    '',
    markdownTable(
      ['adds', 'one add p50 (ms)', 'one add p99 (ms)', 'bulk (jobs/s)', 'master CPU per job (µs)'],
      [
        row('Sluice, plain (the default)', 'plain'),
        row('Sluice, `durableAdds: { replicas: 1 }`', 'durable'),
        row('BullMQ 6.7 `add` / `addBulk` (no such option)', 'bullmq'),
      ],
      ['left', 'right', 'right', 'right', 'right'],
    ),
    '',
    `Durable against plain: one add ${ratio(m.durable.singleP50Ms, m.plain.singleP50Ms)} the p50 latency,`,
    `${ratio(m.durable.singleP99Ms, m.plain.singleP99Ms)} the p99; bulk adds at ${ratio(m.durable.bulkJobsPerSec, m.plain.bulkJobsPerSec)}`,
    `the plain rate. Jobs of the last durable bulk call on the replica the moment it resolved:`,
    `${m.durable.onReplicaAtOnce ?? 0} of ${r.profile.batch}.`,
    '',
    'A durable add pipelines `WAIT 1 <timeout>` after its script on the same connection: one round trip',
    'still, plus the time the replica takes to acknowledge. Everything else (reserve, settle, the rate',
    'limit) is unchanged.',
  ].join('\n')}\n`;
}

export const main = benchMain({
  name: 'durable',
  profiles: DURABLE_PROFILES,
  run: runDurable,
  markdown: durableMarkdown,
});

runAsProgram(module, main);

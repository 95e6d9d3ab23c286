/**
 * `npm run bench:partitions` — one queue spread over 1, 2 and 3 masters of a Redis Cluster
 * (`PartitionedStore`, one partition per master), consumed by one worker process at concurrency 100:
 *
 * - **Throughput** of the whole queue (jobs/s, from the first reserve to the last completion).
 * - **Redis CPU per job on each master** (`INFO cpu`, user + sys, over the processing phase) and each
 *   master's share of the Redis CPU the queue cost: with the work spread evenly, each master used
 *   carries 1/N of it.
 * - BullMQ 6.7 on the same Cluster for reference: one queue lives in one slot there (its keys share
 *   the `{prefix}` hash tag), so it uses one master whatever the Cluster's size.
 *
 * On a machine with few cores the worker process and the masters share them, so throughput cannot
 * grow with the masters there: the CPU split is the evidence that the work spreads. Rounds alternate
 * the order of the layouts; medians are reported.
 *
 * ```
 * npm run bench:partitions                      # full sizes (about two minutes)
 * npm run bench:partitions -- --smoke --out DIR # tiny sizes (the test suite runs this)
 * ```
 *
 * Writes `RESULTS-partitions.md` and `results/partitions.json` into `bench/` (or `--out DIR`).
 */
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  definePipeline,
  parsePartitionName,
  PartitionedStore,
  partitionName,
  silentLogger,
  Worker,
} from '@sluice/core';
import { keySlot, RedisStore } from '@sluice/redis';
import { clusterStartupNodes, spawnRedisCluster, uniquePrefix } from '@sluice/testing';
import { benchMain, runAsProgram } from './cli';
import { now, sleep } from './clock';
import { load1, runMachine, type RunMachine } from './machine';
import { markdownTable } from './report';
import { median, significant } from './stats';

export interface PartitionsProfile {
  readonly name: 'full' | 'smoke';
  /** Jobs processed per layout and round. */
  readonly jobs: number;
  /** Jobs processed per layout and round under the rate limit. */
  readonly limitJobs: number;
  readonly concurrency: number;
  readonly rounds: number;
}

export const PARTITIONS_PROFILES: Readonly<Record<PartitionsProfile['name'], PartitionsProfile>> = {
  full: { name: 'full', jobs: 60_000, limitJobs: 10_000, concurrency: 100, rounds: 3 },
  smoke: { name: 'smoke', jobs: 600, limitJobs: 300, concurrency: 20, rounds: 1 },
};

/** Sluice on 1, 2 or 3 masters, or BullMQ's one queue. */
export type Layout = 'sluice-1' | 'sluice-2' | 'sluice-3' | 'queue-limit' | 'sluice-3-limit' | 'bullmq';
export const LAYOUTS: readonly Layout[] = [
  'sluice-1',
  'sluice-2',
  'sluice-3',
  'queue-limit',
  'sluice-3-limit',
  'bullmq',
];

/**
 * The rate limit of the `queue-limit` (one queue, not partitioned, on master 1) and `sluice-3-limit`
 * layouts: the queue runs at it, so the two show what keeping it exact across partitions costs.
 */
export const LIMIT = { allowed: 2_000, periodMs: 1_000 } as const;

/** One layout's figures in one round. */
export interface LayoutFigures {
  readonly jobsPerSec: number;
  /** Redis CPU per processed job on each master (µs), in master order. */
  readonly masterUsPerJob: readonly number[];
  /** Each master's share of the Redis CPU of the run, in master order. */
  readonly masterShare: readonly number[];
  /** Redis CPU per processed job, all masters (µs). */
  readonly totalUsPerJob: number;
  /** Jobs completed per partition (Sluice). */
  readonly perPartition?: readonly number[];
}

export interface PartitionsResults {
  readonly machine: RunMachine;
  readonly profile: PartitionsProfile;
  readonly rounds: Readonly<Record<Layout, readonly LayoutFigures[]>>;
  readonly median: Readonly<Record<Layout, LayoutFigures>>;
}

async function cpuUs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

/** The slot ranges each master holds (`CLUSTER SLOTS`), keyed by `host:port`. */
async function slotRanges(admin: Redis): Promise<Map<string, [number, number][]>> {
  const ranges = new Map<string, [number, number][]>();
  for (const [from, to, master] of await admin.cluster('SLOTS')) {
    if (!master) continue;
    const key = `${master[0]}:${master[1]}`;
    ranges.set(key, [...(ranges.get(key) ?? []), [from, to]]);
  }
  return ranges;
}

/**
 * A hash tag for `name` whose slot one of `ranges` holds: `name.1`, `name.2`, … (how a user pins a
 * partition to a chosen master with `RedisStore`'s `hashTag` option).
 */
function tagWithin(name: string, ranges: readonly [number, number][]): string {
  for (let s = 1; ; s++) {
    const tag = `${name}.${s}`;
    const slot = keySlot(tag);
    if (ranges.some(([from, to]) => slot >= from && slot <= to)) return tag;
  }
}

interface Cluster {
  readonly nodes: readonly { host: string; port: number }[];
  /** One admin connection per master, in `nodes` order. */
  readonly admins: readonly Redis[];
  readonly ranges: Map<string, [number, number][]>;
}

/** `masters` partitions, partition i on master i; 0: one queue, not partitioned, on master 1. */
async function runSluice(
  cluster: Cluster,
  masters: number,
  profile: PartitionsProfile,
  limited: boolean,
): Promise<LayoutFigures> {
  const jobs = limited ? profile.limitJobs : profile.jobs;
  const prefix = uniquePrefix(`partitions-${masters}`);
  // Partition i on master i (the first `masters` masters).
  const pin = new Map<string, string>();
  for (let i = 0; i < masters; i++) {
    const node = cluster.nodes[i] as { host: string; port: number };
    const name = partitionName('bench', i, masters);
    pin.set(name, tagWithin(name, cluster.ranges.get(`${node.host}:${node.port}`) ?? []));
  }
  // The queue's own slot (its rate limit's log) on master 1 as well.
  const first = cluster.nodes[0] as { host: string; port: number };
  pin.set('bench', tagWithin('bench', cluster.ranges.get(`${first.host}:${first.port}`) ?? []));
  const redis = await RedisStore.connect({
    connection: { cluster: { nodes: [...cluster.nodes] } },
    prefix,
    hashTag: (queue) => pin.get(queue) ?? queue,
  });
  const store = masters > 0 ? new PartitionedStore(redis, { partitions: { bench: masters } }) : redis;
  const worker = new Worker({
    store,
    logger: silentLogger,
    pipelines: [
      definePipeline<{ n: number }>({
        queue: 'bench',
        concurrency: profile.concurrency,
        ...(limited ? { rateLimit: LIMIT } : {}),
        handler: () => undefined,
      }),
    ],
  });
  try {
    for (let from = 0; from < jobs; from += 1000) {
      const count = Math.min(1000, jobs - from);
      await new Promise<void>((resolve, reject) =>
        store
          .enqueue(Array.from({ length: count }, (_, i) => ({ queue: 'bench', data: { n: from + i } })))
          .subscribe({ error: reject, complete: resolve }),
      );
    }
    let completed = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    worker.outcomes$.subscribe((o) => {
      if (o.kind === 'completed' && ++completed === jobs) done();
    });
    const before = await Promise.all(cluster.admins.map(cpuUs));
    const started = now();
    worker.start();
    await finished;
    const seconds = (now() - started) / 1000;
    const after = await Promise.all(cluster.admins.map(cpuUs));
    const names =
      masters > 0 ? Array.from({ length: masters }, (_, i) => partitionName('bench', i, masters)) : ['bench'];
    const perPartition = await Promise.all(names.map(async (p) => (await redis.stats(p)).totals.completed));
    return figures(jobs, seconds, before, after, perPartition);
  } finally {
    await worker.close({ timeoutMs: 10_000 });
    for (const queue of await redis.queues()) {
      if ((parsePartitionName(queue)?.queue ?? queue) === 'bench')
        await redis.obliterate(queue, { force: true });
    }
    await redis.close();
  }
}

async function runBullmq(cluster: Cluster, profile: PartitionsProfile): Promise<LayoutFigures> {
  const { Cluster: IoCluster } = await import('ioredis');
  const connection = (): InstanceType<typeof IoCluster> =>
    new IoCluster([...cluster.nodes], { redisOptions: { maxRetriesPerRequest: null } });
  const prefix = `{${uniquePrefix('partitions-bullmq')}}`;
  const queue = new BullQueue('bench', { connection: connection(), prefix });
  await queue.waitUntilReady();
  let worker: BullWorker | undefined;
  try {
    for (let from = 0; from < profile.jobs; from += 1000) {
      const count = Math.min(1000, profile.jobs - from);
      await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'job', data: { n: from + i } })));
    }
    let completed = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const before = await Promise.all(cluster.admins.map(cpuUs));
    const started = now();
    worker = new BullWorker('bench', () => Promise.resolve(undefined), {
      connection: connection(),
      prefix,
      concurrency: profile.concurrency,
      removeOnComplete: { count: 1000 },
    });
    worker.on('completed', () => {
      if (++completed === profile.jobs) done();
    });
    await finished;
    const seconds = (now() - started) / 1000;
    const after = await Promise.all(cluster.admins.map(cpuUs));
    return figures(profile.jobs, seconds, before, after);
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

function figures(
  jobs: number,
  seconds: number,
  before: readonly number[],
  after: readonly number[],
  perPartition?: readonly number[],
): LayoutFigures {
  const used = after.map((a, i) => Math.max(0, a - (before[i] ?? 0)));
  const total = used.reduce((a, b) => a + b, 0);
  return {
    jobsPerSec: Math.round(jobs / seconds),
    masterUsPerJob: used.map((u) => significant(u / jobs, 3)),
    masterShare: used.map((u) => significant(total > 0 ? u / total : 0, 3)),
    totalUsPerJob: significant(total / jobs, 3),
    ...(perPartition ? { perPartition } : {}),
  };
}

export async function runPartitions(
  profile: PartitionsProfile,
  log: (m: string) => void,
): Promise<PartitionsResults> {
  const loadBefore = load1();
  const handle = await spawnRedisCluster({ masters: 3 });
  const nodes = clusterStartupNodes(handle);
  const admins = nodes.map((n) => new Redis(n.port, n.host));
  try {
    const cluster: Cluster = { nodes, admins, ranges: await slotRanges(admins[0] as Redis) };
    const redis = /^redis_version:(\S+)/m.exec(await (admins[0] as Redis).info('server'))?.[1] ?? 'unknown';
    const rounds: Record<Layout, LayoutFigures[]> = {
      'sluice-1': [],
      'sluice-2': [],
      'sluice-3': [],
      'queue-limit': [],
      'sluice-3-limit': [],
      bullmq: [],
    };
    for (let round = 1; round <= profile.rounds; round++) {
      const order = round % 2 === 1 ? LAYOUTS : [...LAYOUTS].reverse();
      for (const layout of order) {
        const f =
          layout === 'bullmq'
            ? await runBullmq(cluster, profile)
            : await runSluice(
                cluster,
                layout === 'queue-limit' ? 0 : Number(layout.slice(7, 8)),
                profile,
                layout.endsWith('-limit'),
              );
        rounds[layout].push(f);
        log(`round ${round} ${layout}: ${JSON.stringify(f)}`);
        await sleep(200);
      }
    }
    const med = (list: readonly LayoutFigures[]): LayoutFigures => {
      const at = (pick: (f: LayoutFigures) => readonly number[]): number[] =>
        pick(list[0] as LayoutFigures).map((_, i) => median(list.map((f) => pick(f)[i] ?? 0)));
      return {
        jobsPerSec: median(list.map((f) => f.jobsPerSec)),
        masterUsPerJob: at((f) => f.masterUsPerJob),
        masterShare: at((f) => f.masterShare),
        totalUsPerJob: median(list.map((f) => f.totalUsPerJob)),
        ...(list[0]?.perPartition ? { perPartition: at((f) => f.perPartition ?? []) } : {}),
      };
    };
    return {
      machine: runMachine(redis, loadBefore),
      profile,
      rounds,
      median: {
        'sluice-1': med(rounds['sluice-1']),
        'sluice-2': med(rounds['sluice-2']),
        'sluice-3': med(rounds['sluice-3']),
        'queue-limit': med(rounds['queue-limit']),
        'sluice-3-limit': med(rounds['sluice-3-limit']),
        bullmq: med(rounds.bullmq),
      },
    };
  } finally {
    for (const a of admins) a.disconnect();
    await handle.stop();
  }
}

export function partitionsMarkdown(r: PartitionsResults): string {
  const m = r.median;
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
  const row = (label: string, layout: Layout): string[] => [
    label,
    m[layout].jobsPerSec.toLocaleString('en-US'),
    String(m[layout].totalUsPerJob),
    m[layout].masterUsPerJob.join(' / '),
    m[layout].masterShare.map(pct).join(' / '),
  ];
  const spread = (layout: Layout, n: number): string => {
    const shares = m[layout].masterShare.slice(0, n);
    const worst = Math.max(...shares.map((s) => Math.abs(s - 1 / n) * n));
    return `${n} master(s): each used master's share within ${(worst * 100).toFixed(1)} % of 1/${n}`;
  };
  return `${[
    '# One queue over several Redis Cluster masters',
    '',
    'Generated by `npm run bench:partitions` (`bench/src/partitions.ts`). A 3-master Redis Cluster of its',
    `own (redis-server ${r.machine.redis}) on ${r.machine.cpuCount} × ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB,`,
    `Node ${r.machine.node}; ${r.profile.rounds} round(s) alternating the layouts, medians; load ${r.machine.loadBefore} before,`,
    `${r.machine.loadAfter} after; ${r.machine.date}. Profile \`${r.profile.name}\`: ${r.profile.jobs.toLocaleString('en-US')} jobs`,
    `added, then processed by one worker process at concurrency ${r.profile.concurrency} (no-op handler).`,
    '',
    markdownTable(
      [
        'layout',
        'jobs/s',
        'Redis CPU per job, all masters (µs)',
        'per master (µs)',
        'share of Redis CPU per master',
      ],
      [
        row('Sluice, 1 partition (master 1)', 'sluice-1'),
        row('Sluice, 2 partitions (masters 1, 2)', 'sluice-2'),
        row('Sluice, 3 partitions (one per master)', 'sluice-3'),
        row(`Sluice, one queue (master 1), limit ${LIMIT.allowed.toLocaleString('en-US')}/s`, 'queue-limit'),
        row(
          `Sluice, 3 partitions, limit ${LIMIT.allowed.toLocaleString('en-US')}/s (its log on master 1)`,
          'sluice-3-limit',
        ),
        row('BullMQ 6.7, one queue (one slot)', 'bullmq'),
      ],
      ['left', 'right', 'right', 'right', 'right'],
    ),
    '',
    `Spread: ${spread('sluice-2', 2)}; ${spread('sluice-3', 3)}.`,
    `Jobs completed per partition (3 partitions): ${(m['sluice-3'].perPartition ?? []).join(' / ')}.`,
    '',
    `The cost of a rate limit kept exact across partitions, at ${LIMIT.allowed.toLocaleString('en-US')} jobs/s (${r.profile.limitJobs.toLocaleString('en-US')} jobs`,
    'per round, the queue running at its limit): one queue holds its log in its own slot and checks it in',
    "the reserve; partitions take units on the queue's own slot first (master 1), then the jobs, and give",
    `back units no job took. Redis CPU per job ${m['queue-limit'].totalUsPerJob} → ${m['sluice-3-limit'].totalUsPerJob} µs in all,`,
    `${m['queue-limit'].jobsPerSec.toLocaleString('en-US')} → ${m['sluice-3-limit'].jobsPerSec.toLocaleString('en-US')} jobs/s; master 1 carries the log (${pct(m['sluice-3-limit'].masterShare[0] ?? 0)} of the partitioned run's Redis CPU).`,
    '',
    `The worker process and the masters share ${r.machine.cpuCount} cores here, so the queue's throughput`,
    'cannot grow with the masters on this machine; what shows the spread is that each master used carries',
    'an even share of the Redis CPU. On machines of their own, a queue bound by one master (see the',
    'README) gains up to that master count in Redis capacity.',
  ].join('\n')}\n`;
}

export const main = benchMain({
  name: 'partitions',
  profiles: PARTITIONS_PROFILES,
  run: runPartitions,
  markdown: partitionsMarkdown,
});

runAsProgram(module, main);

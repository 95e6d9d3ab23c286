/**
 * `npm run bench:groups` — groups (per-tenant turns and concurrency) on the benchmark's Redis:
 *
 * - **Fairness**: a group with a big backlog (1,000,000 ready jobs) and 1,000 other groups receiving
 *   10 jobs each afterwards; p99 from add to handler start of the small groups' jobs, against the
 *   same with the big group absent.
 * - **Scale**: Redis CPU per processed job with 100,000 groups against 10; Redis memory per group
 *   holding one waiting job, and per idle (drained) group.
 * - **1,000 tenants side by side**: Sluice (one queue, a group per tenant, `groups: { concurrency: 1 }`)
 *   against BullMQ's open-source workaround (a queue and a `Worker` per tenant): throughput, Redis
 *   CPU per job, connections, worker memory.
 *
 * ```
 * npm run bench:groups                      # full sizes (a few minutes on two cores)
 * npm run bench:groups -- --quick           # smaller sizes (about a minute)
 * npm run bench:groups -- --smoke --out DIR # tiny sizes (the test suite runs this)
 * ```
 *
 * Writes `RESULTS-groups.md` and `results/groups.json` into `bench/` (or `--out DIR`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue as BullQueue } from 'bullmq';
import { Queue } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { bullmqConnection } from './bullmq-connection';
import { profileArgs, runAsProgram } from './cli';
import { now, sleep } from './clock';
import { load1, machineInfo, type MachineInfo } from './machine';
import { PROFILES } from './profile';
import type { BenchPayload, WorkerReport } from './protocol';
import { RedisTarget } from './redis-target';
import { markdownTable } from './report';
import { median, percentile, significant } from './stats';
import { WorkerProcess, withWorkers, type System } from './worker-process';
import type { GroupsBullmqSpec } from './workers/groups-bullmq-worker';
import type { GroupsSluiceSpec } from './workers/groups-sluice-worker';

export interface GroupsProfile {
  readonly name: 'full' | 'quick' | 'smoke';
  readonly fairness: {
    /** Ready jobs of the big group, added first. */
    readonly big: number;
    /** Small groups, each receiving `perGroup` jobs once the big group is being worked on. */
    readonly groups: number;
    readonly perGroup: number;
    readonly concurrency: number;
  };
  readonly scale: {
    /** Jobs processed in each run. */
    readonly jobs: number;
    readonly fewGroups: number;
    readonly manyGroups: number;
    readonly concurrency: number;
    /** `groups.concurrency` of both runs; absent: groups only take turns (the default). */
    readonly groupConcurrency?: number;
  };
  readonly tenants: {
    readonly tenants: number;
    readonly perTenant: number;
    /** Sluice's pipeline concurrency (one job per tenant at a time: `groups.concurrency` 1). */
    readonly sluiceConcurrency: number;
    readonly rounds: number;
    /** Redis CPU is also measured while the worker waits with nothing to do, this long. */
    readonly idleMs: number;
  };
}

const FULL: GroupsProfile = {
  name: 'full',
  fairness: { big: 1_000_000, groups: 1000, perGroup: 10, concurrency: 100 },
  scale: { jobs: 100_000, fewGroups: 10, manyGroups: 100_000, concurrency: 100 },
  tenants: { tenants: 1000, perTenant: 50, sluiceConcurrency: 100, rounds: 3, idleMs: 3000 },
};

export const GROUPS_PROFILES: Readonly<Record<GroupsProfile['name'], GroupsProfile>> = {
  full: FULL,
  quick: {
    name: 'quick',
    fairness: { ...FULL.fairness, big: 100_000 },
    scale: { ...FULL.scale, jobs: 20_000, manyGroups: 20_000 },
    tenants: { ...FULL.tenants, perTenant: 20, rounds: 1 },
  },
  smoke: {
    name: 'smoke',
    fairness: { big: 2000, groups: 20, perGroup: 3, concurrency: 10 },
    scale: { jobs: 500, fewGroups: 10, manyGroups: 500, concurrency: 10 },
    tenants: { tenants: 10, perTenant: 5, sluiceConcurrency: 10, rounds: 1, idleMs: 200 },
  },
};

type Figures = Record<string, number>;

interface Context {
  readonly target: RedisTarget;
  readonly profile: GroupsProfile;
  readonly log: (message: string) => void;
}

const CHUNK = 1000;

async function sluiceQueue(url: string, prefix: string, queue: string) {
  const store = await RedisStore.connect({ url, prefix });
  return { store, queue: new Queue<BenchPayload>(store, queue) };
}

/** Keys under `prefix` whose name marks them as group state (`…:gs:<g>`, `…:gw:<g>`). */
async function groupKeyCount(target: RedisTarget, prefix: string): Promise<number> {
  return (await target.keys(`${prefix}*`)).filter((k) => /:g[sw]:/.test(k)).length;
}

/**
 * Fairness: with the big group (`withBig`), its jobs are added first and the worker runs until it
 * has completed some; then the small groups' jobs are added in calls of 1,000, each payload
 * carrying the producer's clock; the worker records add → start for them.
 */
export async function fairness(ctx: Context, withBig: boolean): Promise<Figures> {
  const p = ctx.profile.fairness;
  const prefix = `sluice-bench-groups-fair-${withBig ? 'big' : 'alone'}`;
  await ctx.target.reset([prefix]);
  const small = p.groups * p.perGroup;
  const spec: GroupsSluiceSpec = {
    url: ctx.target.url,
    prefix,
    queue: 'fair',
    concurrency: p.concurrency,
    mode: { kind: 'single' },
    handler: { kind: 'noop' },
    expect: small,
    countTimedOnly: true,
    recordLatency: true,
    recordCalls: true,
  };
  const worker = await WorkerProcess.fork('sluice', spec, { script: 'groups-sluice-worker.js' });
  const { store, queue } = await sluiceQueue(ctx.target.url, prefix, 'fair');
  try {
    return await withWorkers([worker], async () => {
      // The worker is warmed up the same way in both runs: it completes `warm` jobs first (of the big
      // group, or of a warm-up group as big); without the big group it is then idle.
      const warm = Math.min(5000, Math.floor(p.big / 10));
      const first = withBig ? p.big : warm;
      const firstGroup = withBig ? 'big' : 'warm-up';
      for (let i = 0; i < first; i += 5000) {
        const n = Math.min(5000, first - i);
        await queue.addBulk(
          Array.from({ length: n }, (_, j) => ({
            data: { to: `${firstGroup}${i + j}@example.com` },
            options: { group: firstGroup },
          })),
        );
      }
      worker.start();
      const started = now();
      while ((await store.stats('fair')).totals.completed < warm) await sleep(20);
      if (!withBig) await sleep(200);
      const bigDoneAtAdd = (await store.stats('fair')).totals.completed;
      ctx.log(`fairness ${withBig ? 'with' : 'without'} the big group: adding the small groups' jobs`);
      const jobs = Array.from({ length: small }, (_, i) => {
        const g = Math.floor(i / p.perGroup);
        return { to: `g${g}-${i % p.perGroup}@example.com`, group: `g${g}` };
      });
      for (let i = 0; i < small; i += CHUNK) {
        const t = now();
        await queue.addBulk(
          jobs.slice(i, i + CHUNK).map(({ to, group }) => ({ data: { to, t }, options: { group } })),
        );
      }
      const report = await worker.done(300_000);
      const stats = await store.stats('fair');
      await worker.stop();
      const latencies = report.latencies;
      // Starts of the big group's jobs from the first small add to the last small start: every start
      // in that span that is not a small group's.
      const firstAdd = Math.min(...report.enqueuedAt);
      const lastSmall = Math.max(...report.enqueuedAt.map((t, i) => t + (latencies[i] ?? 0)));
      const startsMeanwhile = report.callTimes.filter((t) => t >= firstAdd && t <= lastSmall).length;
      return {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: percentile(latencies, 100),
        smallJobs: latencies.length,
        bigStartedMeanwhile: withBig ? startsMeanwhile - latencies.length : 0,
        // Jobs of the big group still waiting once every small job had started (its backlog).
        bigWaitingAfter: stats.counts.ready,
        bigDoneBeforeAdds: bigDoneAtAdd,
        warmUpMs: now() - started,
      };
    });
  } finally {
    await store.close();
    await ctx.target.reset([prefix]);
  }
}

/** Scale: `jobs` jobs over `groups` groups, drained by one worker; Redis CPU and memory around it. */
export async function scale(ctx: Context, groups: number): Promise<Figures> {
  const p = ctx.profile.scale;
  const prefix = `sluice-bench-groups-scale-${groups}`;
  await ctx.target.reset([prefix]);
  const { store, queue } = await sluiceQueue(ctx.target.url, prefix, 'scale');
  try {
    // The queue's own keys exist before the first measurement.
    await queue.add({ to: 'warm-up@example.com' });
    const spec: GroupsSluiceSpec = {
      url: ctx.target.url,
      prefix,
      queue: 'scale',
      concurrency: p.concurrency,
      ...(p.groupConcurrency === undefined ? {} : { groupConcurrency: p.groupConcurrency }),
      mode: { kind: 'single' },
      handler: { kind: 'noop' },
      expect: p.jobs + 1,
    };
    const worker = await WorkerProcess.fork('sluice', spec, { script: 'groups-sluice-worker.js' });
    return await withWorkers([worker], async () => {
      const mem0 = await ctx.target.usedMemory();
      for (let i = 0; i < p.jobs; i += CHUNK) {
        const n = Math.min(CHUNK, p.jobs - i);
        await queue.addBulk(
          Array.from({ length: n }, (_, j) => ({
            data: { to: `user${i + j}@example.com` },
            options: { group: `t${(i + j) % groups}` },
          })),
        );
      }
      const mem1 = await ctx.target.usedMemory();
      const c1 = await ctx.target.counters();
      worker.start();
      const report = await worker.done(600_000);
      const c2 = await ctx.target.counters();
      await worker.stop();
      const mem2 = await ctx.target.usedMemory();
      const left = await groupKeyCount(ctx.target, prefix);
      return {
        groups,
        jobs: p.jobs,
        processing: ((p.jobs + 1) * 1000) / (report.doneAt - report.startedAt),
        redisUsPerJob: ((c2.cpuSeconds - c1.cpuSeconds) * 1e6) / (p.jobs + 1),
        bytesPerQueuedJob: (mem1 - mem0) / p.jobs,
        bytesPerGroupQueued: (mem1 - mem0) / groups,
        bytesLeft: mem2 - mem0,
        groupKeysLeft: left,
      };
    });
  } finally {
    await store.close();
    await ctx.target.reset([prefix]);
  }
}

/** Connected clients now (`INFO clients`). */
async function clients(target: RedisTarget): Promise<number> {
  return Number((await target.info('clients')).get('connected_clients'));
}

/** 1,000 tenants: one system's run. */
export async function tenants(ctx: Context, system: System, round: number): Promise<Figures> {
  const p = ctx.profile.tenants;
  const prefix = `sluice-bench-groups-tenants-${system}-${round}`;
  await ctx.target.reset([prefix]);
  const total = p.tenants * p.perTenant;
  try {
    // Enqueue: Sluice, one queue with a group per tenant; BullMQ, a queue per tenant.
    if (system === 'sluice') {
      const { store, queue } = await sluiceQueue(ctx.target.url, prefix, 'tenants');
      for (let i = 0; i < total; i += CHUNK) {
        const n = Math.min(CHUNK, total - i);
        await queue.addBulk(
          Array.from({ length: n }, (_, j) => ({
            data: { to: `user${i + j}@example.com` },
            options: { group: `tenant-${(i + j) % p.tenants}` },
          })),
        );
      }
      await store.close();
    } else {
      for (let t = 0; t < p.tenants; t += 20) {
        await Promise.all(
          Array.from({ length: Math.min(20, p.tenants - t) }, async (_, k) => {
            const tenant = t + k;
            const q = new BullQueue<BenchPayload>(`tenants-${tenant}`, {
              connection: bullmqConnection(ctx.target.url),
              prefix,
            });
            await q.addBulk(
              Array.from({ length: p.perTenant }, (_, j) => ({
                name: 'job',
                data: { to: `user${j * p.tenants + tenant}@example.com` },
              })),
            );
            await q.close();
          }),
        );
      }
    }
    await sleep(200);
    const baseline = await clients(ctx.target);
    const common = {
      url: ctx.target.url,
      prefix,
      mode: { kind: 'single' },
      handler: { kind: 'noop' },
      expect: total,
      rssEveryMs: 50,
      sampleHeap: true,
    } as const;
    const sluiceSpec: GroupsSluiceSpec = {
      ...common,
      queue: 'tenants',
      concurrency: p.sluiceConcurrency,
      groupConcurrency: 1,
    };
    const bullmqSpec: GroupsBullmqSpec = { ...common, queue: 'tenants', concurrency: 1, tenants: p.tenants };
    const worker =
      system === 'sluice'
        ? await WorkerProcess.fork('sluice', sluiceSpec, { script: 'groups-sluice-worker.js' })
        : await WorkerProcess.fork('bullmq', bullmqSpec, {
            script: 'groups-bullmq-worker.js',
            readyTimeoutMs: 120_000,
          });
    return await withWorkers([worker], async () => {
      const idleConnections = (await clients(ctx.target)) - baseline;
      const c1 = await ctx.target.counters();
      worker.start();
      let peak = 0;
      let done: WorkerReport | undefined;
      const finished = worker.done(600_000).then((r) => {
        done = r;
      });
      while (!done) {
        peak = Math.max(peak, await clients(ctx.target));
        await Promise.race([finished, sleep(100)]);
      }
      const report = done;
      const c2 = await ctx.target.counters();
      await sleep(p.idleMs);
      const c3 = await ctx.target.counters();
      await worker.stop();
      return {
        processing: (total * 1000) / (report.doneAt - report.startedAt),
        redisUsPerJob: ((c2.cpuSeconds - c1.cpuSeconds) * 1e6) / total,
        workerUsPerJob: (report.cpuMs * 1000) / total,
        connections: Math.max(peak - baseline, idleConnections),
        rssMiB: report.rssPeak / 2 ** 20,
        heapMiB: report.heapPeak / 2 ** 20,
        idleRedisCpuMsPerS: ((c3.cpuSeconds - c2.cpuSeconds) * 1e6) / p.idleMs,
      };
    });
  } finally {
    await ctx.target.reset([prefix]);
  }
}

export interface GroupsResults {
  readonly machine: MachineInfo;
  readonly profile: GroupsProfile;
  readonly fairness: { readonly withBig: Figures; readonly alone: Figures; readonly p99Ratio: number };
  readonly scale: { readonly few: Figures; readonly many: Figures; readonly cpuRatio: number };
  readonly tenants: {
    readonly sluice: Figures;
    readonly bullmq: Figures;
    readonly rounds: { readonly sluice: readonly Figures[]; readonly bullmq: readonly Figures[] };
  };
}

function medianFigures(runs: readonly Figures[]): Figures {
  const out: Figures = {};
  for (const key of Object.keys(runs[0] ?? {})) out[key] = median(runs.map((r) => r[key] ?? NaN));
  return out;
}

export async function runGroups(
  target: RedisTarget,
  profile: GroupsProfile,
  log: (message: string) => void,
): Promise<GroupsResults> {
  const machine = await machineInfo(
    target,
    { ...PROFILES[profile.name], rounds: profile.tenants.rounds },
    new Date(),
  );
  const ctx: Context = { target, profile, log };
  const alone = await fairness(ctx, false);
  log(`fairness without the big group: ${format(alone)}`);
  const withBig = await fairness(ctx, true);
  log(`fairness with the big group: ${format(withBig)}`);
  const few = await scale(ctx, profile.scale.fewGroups);
  log(`scale, ${profile.scale.fewGroups} groups: ${format(few)}`);
  const many = await scale(ctx, profile.scale.manyGroups);
  log(`scale, ${profile.scale.manyGroups} groups: ${format(many)}`);
  const rounds = { sluice: [] as Figures[], bullmq: [] as Figures[] };
  for (let round = 1; round <= profile.tenants.rounds; round++) {
    for (const system of ['sluice', 'bullmq'] as const) {
      const figures = await tenants(ctx, system, round);
      rounds[system].push(figures);
      log(`tenants round ${round} ${system}: ${format(figures)}`);
    }
  }
  return {
    machine: { ...machine, loadAfter: load1() },
    profile,
    fairness: { withBig, alone, p99Ratio: (withBig['p99'] ?? NaN) / (alone['p99'] ?? NaN) },
    scale: { few, many, cpuRatio: (many['redisUsPerJob'] ?? NaN) / (few['redisUsPerJob'] ?? NaN) },
    tenants: { sluice: medianFigures(rounds.sluice), bullmq: medianFigures(rounds.bullmq), rounds },
  };
}

function format(f: Figures): string {
  return Object.entries(f)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(', ');
}

const n = (x: number | undefined, digits = 3): string => {
  if (x === undefined || !Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en');
  return String(significant(x, digits));
};

export function groupsMarkdown(r: GroupsResults): string {
  const p = r.profile;
  const m = r.machine;
  const f = r.fairness;
  const s = r.scale;
  const t = r.tenants;
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined || b === 0 ? 'n/a' : `${n(a / b)}x`;
  const command = p.name === 'full' ? 'npm run bench:groups' : `npm run bench:groups -- --${p.name}`;
  const lines = [
    '# Benchmarks: groups',
    '',
    `Generated by \`${command}\` (${p.name} sizes) on ${m.date}. Do not edit by hand; run the benchmark again`,
    'instead.',
    '',
    `- Machine: ${m.cpuModel}, ${m.cpuCount} CPUs, ${m.memoryGiB} GiB, ${m.os}`,
    `- Node ${m.node}, Redis ${m.redis} (${m.redisSource === 'spawned' ? 'a private `redis-server` started by the benchmark, `save ""`, `appendonly no`' : 'from `BENCH_REDIS_URL`'})`,
    `- Sluice ${m.sluice} (checkout ${m.sluiceCheckout}), BullMQ ${m.bullmq}`,
    `- 1-minute load average ${m.loadBefore} before the run, ${m.loadAfter ?? 'n/a'} after it (other work on the machine`,
    '  shares the CPUs and moves every figure)',
    '',
    '## Fairness',
    '',
    `A group with ${p.fairness.big.toLocaleString('en')} ready jobs is being worked on (one worker process, concurrency ` +
      `${p.fairness.concurrency}, no-op handler, groups take turns, no per-group cap) when ` +
      `${p.fairness.groups.toLocaleString('en')} other groups receive ${p.fairness.perGroup} jobs each (added in calls of ` +
      `${CHUNK.toLocaleString('en')}, each payload carrying the producer's clock, read just before its call). Add → ` +
      'handler start of those jobs, against the same adds with the big group absent. In both runs the worker ' +
      `first completes the same ${Math.min(5000, Math.floor(p.fairness.big / 10)).toLocaleString('en')} jobs (of the big group, or of a warm-up group when it is ` +
      'absent, after which the worker is idle), so both are equally warmed up.',
    '',
    markdownTable(
      ['add → start of the small groups’ jobs', 'big group absent', 'big group present', 'ratio'],
      [
        ['p50 (ms)', n(f.alone['p50']), n(f.withBig['p50']), ratio(f.withBig['p50'], f.alone['p50'])],
        ['p99 (ms)', n(f.alone['p99']), n(f.withBig['p99']), ratio(f.withBig['p99'], f.alone['p99'])],
        ['max (ms)', n(f.alone['max']), n(f.withBig['max']), ratio(f.withBig['max'], f.alone['max'])],
        [
          'big group’s jobs started from the first small add to the last small start',
          '',
          n(f.withBig['bigStartedMeanwhile']),
          '',
        ],
        ['big group’s jobs still waiting after', '', n(f.withBig['bigWaitingAfter']), ''],
      ],
      ['left', 'right', 'right', 'right'],
    ),
    '',
    `Target: p99 with the big group within 2x of the p99 without it: ${n(f.p99Ratio)}x, ${f.p99Ratio <= 2 ? 'met' : 'MISSED'}.`,
    '',
    '## Scale',
    '',
    `${p.scale.jobs.toLocaleString('en')} no-op jobs spread evenly over ${p.scale.fewGroups} groups, then over ` +
      `${p.scale.manyGroups.toLocaleString('en')} groups, drained by one worker process (concurrency ` +
      `${p.scale.concurrency}, ` +
      (p.scale.groupConcurrency === undefined
        ? 'groups take turns, no per-group cap'
        : `\`groups: { concurrency: ${p.scale.groupConcurrency} }\``) +
      '). Redis CPU is `used_cpu_user + used_cpu_sys` over the drain; memory is `used_memory` ' +
      'before the adds, after them, and after the drain (the queue keeps its newest 1,000 completed records).',
    '',
    markdownTable(
      [
        'measure',
        `${p.scale.fewGroups} groups`,
        `${p.scale.manyGroups.toLocaleString('en')} groups`,
        'ratio',
      ],
      [
        [
          'processing (jobs/s)',
          n(s.few['processing']),
          n(s.many['processing']),
          ratio(s.many['processing'], s.few['processing']),
        ],
        [
          'Redis CPU per processed job (µs)',
          n(s.few['redisUsPerJob']),
          n(s.many['redisUsPerJob']),
          ratio(s.many['redisUsPerJob'], s.few['redisUsPerJob']),
        ],
        [
          'Redis memory per queued job (bytes)',
          n(s.few['bytesPerQueuedJob']),
          n(s.many['bytesPerQueuedJob']),
          ratio(s.many['bytesPerQueuedJob'], s.few['bytesPerQueuedJob']),
        ],
        [
          'Redis memory left after the drain (bytes, in all)',
          n(s.few['bytesLeft']),
          n(s.many['bytesLeft']),
          '',
        ],
        ['group keys left after the drain', n(s.few['groupKeysLeft']), n(s.many['groupKeysLeft']), ''],
      ],
      ['left', 'right', 'right', 'right'],
    ),
    '',
    `Target: Redis CPU per job with ${p.scale.manyGroups.toLocaleString('en')} groups within 1.5x of ${p.scale.fewGroups} groups: ` +
      `${n(s.cpuRatio)}x, ${s.cpuRatio <= 1.5 ? 'met' : 'MISSED'}. With one job per group, a queued job costs ` +
      `${n((s.many['bytesPerQueuedJob'] ?? NaN) - (s.few['bytesPerQueuedJob'] ?? NaN))} bytes more than in a big group: ` +
      'the group’s state and waiting set while it holds that job. A drained group leaves no key; the memory left after ' +
      `the drain (${n((s.many['bytesLeft'] ?? NaN) / p.scale.manyGroups)} bytes per group with ` +
      `${p.scale.manyGroups.toLocaleString('en')} groups) is the retained completed records, the queue's counters ` +
      `and allocator slack, as with ${p.scale.fewGroups} groups.`,
    '',
    '## 1,000 tenants side by side',
    '',
    `${p.tenants.tenants.toLocaleString('en')} tenants, ${p.tenants.perTenant} no-op jobs each ` +
      `(${(p.tenants.tenants * p.tenants.perTenant).toLocaleString('en')} in all), one job of a tenant at a time. ` +
      `Sluice: one queue, a group per tenant, one worker process with one pipeline (concurrency ` +
      `${p.tenants.sluiceConcurrency}, \`groups: { concurrency: 1 }\`). BullMQ ${m.bullmq} (open source, no groups): ` +
      `a queue per tenant and, in one worker process, a \`Worker\` per queue with concurrency 1, each opening its ` +
      'own connections (BullMQ’s default from connection options); both keep the newest 1,000 completed jobs. ' +
      'Jobs are added before the worker starts; processing is timed in the worker from `start` to the last ' +
      'completion. Connections: `connected_clients` at its peak while processing, less the count before the ' +
      `worker process started. Worker memory: the process's peak RSS and V8 heap in use (sampled every 50 ms). ` +
      `Idle Redis CPU: over ${p.tenants.idleMs.toLocaleString('en')} ms after the last job, the worker waiting. ` +
      `Median of ${p.tenants.rounds} round(s), Sluice and BullMQ alternating.`,
    '',
    markdownTable(
      ['measure', 'Sluice', 'BullMQ', 'ratio (Sluice / BullMQ)'],
      (
        [
          ['processing (jobs/s)', 'processing'],
          ['Redis CPU per processed job (µs)', 'redisUsPerJob'],
          ['worker CPU per processed job (µs)', 'workerUsPerJob'],
          ['Redis connections of the worker process', 'connections'],
          ['worker peak RSS (MiB)', 'rssMiB'],
          ['worker peak V8 heap in use (MiB)', 'heapMiB'],
          ['Redis CPU while the worker idles (ms per s)', 'idleRedisCpuMsPerS'],
        ] as const
      ).map(([label, key]) => [
        label,
        n(t.sluice[key]),
        n(t.bullmq[key]),
        ratio(t.sluice[key], t.bullmq[key]),
      ]),
      ['left', 'right', 'right', 'right'],
    ),
  ];
  return `${lines.join('\n')}\n`;
}

const USAGE = 'usage: node bench/dist/groups.js [--quick | --smoke] [--out DIR]';

export async function main(argv: readonly string[]): Promise<void> {
  const { profile, outDir } = profileArgs(
    argv,
    { profile: GROUPS_PROFILES.full, outDir: join(__dirname, '..') },
    { quick: GROUPS_PROFILES.quick, smoke: GROUPS_PROFILES.smoke },
    USAGE,
  );
  const log = (message: string): void => {
    process.stderr.write(`[bench:groups] ${message}\n`);
  };
  const started = Date.now();
  const target = await RedisTarget.open(process.env['BENCH_REDIS_URL'] || undefined);
  try {
    log(`${profile.name} run; Redis at ${target.url}`);
    const results = await runGroups(target, profile, log);
    mkdirSync(join(outDir, 'results'), { recursive: true });
    const markdown = join(outDir, 'RESULTS-groups.md');
    const json = join(outDir, 'results', 'groups.json');
    writeFileSync(markdown, groupsMarkdown(results));
    writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote ${markdown} and ${json} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await target.close();
  }
}

runAsProgram(module, main);

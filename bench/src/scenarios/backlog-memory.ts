import { enqueueBulk, openProducer } from '../producers';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

const MB = 1024 * 1024;

interface Phase {
  /** Redis `used_memory` growth per job added, bytes. */
  readonly bytesPerJob: number;
  readonly rssPeak: number;
  readonly rssAtStart: number;
}

/**
 * Queues `backlog` jobs (measuring Redis memory before and after), then lets a worker process with a
 * slow handler drain `drain` of them while it samples its own RSS.
 */
async function phase(ctx: RunContext, system: System, backlog: number, drain: number): Promise<Phase> {
  const p = ctx.profile.backlog;
  const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
  let bytesPerJob: number;
  try {
    // One job first, so the queue's fixed structures exist before the measurement (both systems).
    await enqueueBulk(producer, 1, 1);
    const before = await ctx.target.usedMemory();
    await enqueueBulk(producer, backlog, p.chunk);
    bytesPerJob = ((await ctx.target.usedMemory()) - before) / backlog;
  } finally {
    await producer.close();
  }
  const worker = await WorkerProcess.fork(
    system,
    {
      url: ctx.target.url,
      prefix: ctx.prefix,
      queue: ctx.queue,
      concurrency: p.concurrency,
      mode: { kind: 'single' },
      handler: { kind: 'sleep', ms: p.sleepMs },
      expect: drain,
      rssEveryMs: p.rssEveryMs,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return withWorkers([worker], async () => {
    worker.start();
    await worker.done(Math.max(120_000, drain * 10));
    const report = await worker.stop();
    return { bytesPerJob, rssPeak: report.rssPeak, rssAtStart: report.rssAtStart };
  });
}

async function backlogMemory(ctx: RunContext, system: System): Promise<Measurement> {
  const p = ctx.profile.backlog;
  const big = await phase(ctx, system, p.big, Math.min(p.drain, p.big));
  await ctx.reset();
  const small = await phase(ctx, system, p.small, Math.min(p.drain, p.small));
  return {
    bytesPerJob: big.bytesPerJob,
    bytesPerJobSmall: small.bytesPerJob,
    rssPeakBig: big.rssPeak / MB,
    rssPeakSmall: small.rssPeak / MB,
    rssRatio: big.rssPeak / small.rssPeak,
    rssAtStart: big.rssAtStart / MB,
  };
}

const runs: readonly ScenarioRun[] = [
  { id: 'sluice', system: 'sluice', run: (ctx) => backlogMemory(ctx, 'sluice') },
  { id: 'bullmq', system: 'bullmq', run: (ctx) => backlogMemory(ctx, 'bullmq') },
];

const row = (key: string, metric: string, unit: string) =>
  ({
    id: `backlog.${key}`,
    metric,
    unit,
    better: 'lower',
    sluice: { run: 'sluice', key },
    bullmq: { run: 'bullmq', key },
  }) as const;

export const backlogMemoryScenario: Scenario = {
  id: 'backlog',
  title: 'Backlog memory',
  describe: (profile) => {
    const p = profile.backlog;
    const n = (x: number): string => x.toLocaleString('en');
    return (
      `${n(p.big)} small jobs (\`{"to":"user<i>@example.com"}\`, no options) bulk-added in calls of ` +
      `${n(p.chunk)} after one warm-up job; Redis bytes per job = growth of \`INFO memory\` \`used_memory\` ` +
      `/ jobs. Then one worker process (concurrency ${p.concurrency}, a handler that sleeps ${p.sleepMs} ms) ` +
      `drains ${n(Math.min(p.drain, p.big))} of them while sampling its own RSS every ${p.rssEveryMs} ms ` +
      `(peak reported). The same run on a backlog of ${n(p.small)} drains ${n(Math.min(p.drain, p.small))} ` +
      `(all of them when the backlog is smaller than the drain). The RSS ratio is each system's ` +
      `peak at ${n(p.big)} over its peak at ${n(p.small)}.`
    );
  },
  runs,
  rows: [
    row('bytesPerJob', `Redis memory per queued job`, 'bytes'),
    row('rssPeakBig', 'worker peak RSS, big backlog', 'MiB'),
    row('rssPeakSmall', 'worker peak RSS, small backlog', 'MiB'),
    row('rssRatio', 'worker peak RSS, big / small backlog', 'x'),
  ],
};

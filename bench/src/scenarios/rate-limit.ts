import { sleep } from '../clock';
import { enqueueBulk, openProducer } from '../producers';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { cycleRate, percentile, slidingWindows, sustainedRate } from '../stats';
import { Provider } from '../provider';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

/**
 * Several worker processes share one rate limit on a queue holding more jobs than the limit lets
 * through in the measured time; every handler start is recorded on the shared clock and checked
 * against the limit afterwards.
 */
async function rateLimit(ctx: RunContext, system: System): Promise<Measurement> {
  const p = ctx.profile.rateLimit;
  // Enough for the whole run and a few periods more: the queue never runs dry while measured.
  const backlog = Math.ceil((p.allowed * p.durationMs) / p.periodMs) + 4 * p.allowed;
  const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
  try {
    await enqueueBulk(producer, backlog, 1000);
  } finally {
    await producer.close();
  }
  const provider = await Provider.start();
  const spec = {
    url: ctx.target.url,
    prefix: ctx.prefix,
    queue: ctx.queue,
    concurrency: p.concurrency,
    mode: { kind: 'single' },
    handler: { kind: 'http', url: provider.url },
    rateLimit: { allowed: p.allowed, periodMs: p.periodMs, per: 'job' },
    recordCalls: true,
  } as const;
  const options = ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir };
  const workers = await Promise.all(
    Array.from({ length: p.workers }, () => WorkerProcess.fork(system, spec, options)),
  ).catch(async (error: unknown) => {
    await provider.close();
    throw error;
  });
  return withWorkers(workers, async () => {
    for (const w of workers) w.start();
    await sleep(p.durationMs + p.periodMs);
    const reports = await Promise.all(workers.map((w) => w.stop()));
    // As the provider saw the calls (network and its own event loop included).
    const arrivals = await provider.close();
    const atProvider = slidingWindows(arrivals, p.periodMs, p.allowed);
    const starts = reports.flatMap((r) => r.callTimes);
    const grants = reports.flatMap((r) => r.callGrants);
    const first = starts.reduce((a, b) => Math.min(a, b), Infinity);
    const measured = starts.filter((t) => t < first + p.durationMs);
    const windows = slidingWindows(starts, p.periodMs, p.allowed);
    // The same, leaving out the windows that start in the first period (processes starting up).
    const steady = slidingWindows(
      starts.filter((t) => t >= first + p.periodMs),
      p.periodMs,
      p.allowed,
    );
    const rate = cycleRate(measured, p.allowed, undefined, p.durationMs);
    // Diagnostics (results/diagnostics.json): the same windows on the grant clock, and the delay
    // from grant to handler start (see WorkerReport.callGrants).
    const delays = starts.map((t, i) => t - (grants[i] ?? NaN)).filter((d) => Number.isFinite(d));
    return {
      rate,
      percentOfAllowed: (100 * rate) / ((p.allowed * 1000) / p.periodMs),
      maxInWindow: windows.max,
      windowsOver: windows.over,
      windowsOverSteady: steady.over,
      providerMaxInWindow: atProvider.max,
      providerWindowsOver: atProvider.over,
      // 2: real-time scheduling, 1: nice −10, 0: normal priority (see Provider).
      providerPriority: ['normal', 'higher', 'real-time'].indexOf(provider.priority),
      starts: starts.length,
      grantWindowsOver: slidingWindows(
        grants.filter((g) => Number.isFinite(g)),
        p.periodMs,
        p.allowed,
      ).over,
      grantToStartP50: percentile(delays, 50),
      grantToStartP99: percentile(delays, 99),
      grantToStartMax: percentile(delays, 100),
      // The least-squares slope of cumulative starts, for comparison with `rate`.
      rateSlope: sustainedRate(measured),
    };
  });
}

const runs: readonly ScenarioRun[] = [
  { id: 'sluice', system: 'sluice', run: (ctx) => rateLimit(ctx, 'sluice') },
  { id: 'bullmq', system: 'bullmq', run: (ctx) => rateLimit(ctx, 'bullmq') },
];

export const rateLimitScenario: Scenario = {
  id: 'rate-limit',
  title: 'Rate-limit accuracy',
  describe: (profile) => {
    const p = profile.rateLimit;
    return (
      `A limit of ${p.allowed} jobs per ${p.periodMs.toLocaleString('en')} ms shared by ${p.workers} worker ` +
      `processes (concurrency ${p.concurrency} each; each handler POSTs once to a provider, an HTTP server in ` +
      `a process of its own, at real-time priority where permitted, that timestamps every arrival) on a queue holding more jobs than the ` +
      `limit lets through. Sluice: \`rateLimit: { allowed: ${p.allowed}, periodMs: ${p.periodMs} }\` on the ` +
      `pipeline (enforced in Redis, default margin); BullMQ: \`limiter: { max: ${p.allowed}, duration: ` +
      `${p.periodMs} }\` on each Worker. The workers run ${(p.durationMs + p.periodMs) / 1000} s; every ` +
      `handler start is recorded on the machine's monotonic clock mapped to epoch ms (\`src/clock.ts\`). The achieved rate ` +
      `is measured over whole limiter cycles within the first ${p.durationMs / 1000} s: from the first ` +
      `start to the start ${p.allowed} × k later, so it does not depend on where a window cuts a burst ` +
      `(\`cycleRate\` in \`src/stats.ts\`); the window counts look at every start of ` +
      `the run: for each start, the starts in the ${p.periodMs} ms from it (a second count leaves out ` +
      `the windows that start in the first period, while the processes warm up). The window rows ` +
      `report the worst round, the rates the median. \`results/diagnostics.json\` adds, per run, the ` +
      `delay from grant to handler start (Sluice: the reserve that leased the job, on Redis' clock; its ` +
      `slot, where the limit counts it, is up to the worker's lead later; BullMQ: the job's ` +
      `\`processedOn\`) and the windows over the limit on that grant clock (for Sluice a reserve may ` +
      `place slots ahead, so reserve times alone can crowd a window: its record is the slots).`
    );
  },
  runs,
  rows: [
    {
      id: 'rate-limit.rate',
      metric: 'achieved rate (limit 400/s)',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'rate' },
      bullmq: { run: 'bullmq', key: 'rate' },
    },
    {
      id: 'rate-limit.percent',
      metric: 'achieved share of the allowed rate',
      unit: '%',
      better: 'higher',
      sluice: { run: 'sluice', key: 'percentOfAllowed' },
      bullmq: { run: 'bullmq', key: 'percentOfAllowed' },
    },
    {
      id: 'rate-limit.max-window',
      metric: 'most handler starts in any 1,000 ms window (worst round)',
      unit: 'starts',
      better: 'lower',
      aggregate: 'max',
      sluice: { run: 'sluice', key: 'maxInWindow' },
      bullmq: { run: 'bullmq', key: 'maxInWindow' },
    },
    {
      id: 'rate-limit.windows-over',
      metric: '1,000 ms windows over the limit (worst round)',
      unit: 'windows',
      better: 'lower',
      aggregate: 'max',
      zeroOk: true,
      sluice: { run: 'sluice', key: 'windowsOver' },
      bullmq: { run: 'bullmq', key: 'windowsOver' },
    },
    {
      id: 'rate-limit.windows-over-steady',
      metric: 'windows over the limit, leaving out the first 1,000 ms (worst round)',
      unit: 'windows',
      better: 'lower',
      aggregate: 'max',
      zeroOk: true,
      sluice: { run: 'sluice', key: 'windowsOverSteady' },
      bullmq: { run: 'bullmq', key: 'windowsOverSteady' },
    },
    {
      id: 'rate-limit.provider-max-window',
      metric: 'most calls the provider saw in any 1,000 ms window (worst round)',
      unit: 'calls',
      better: 'lower',
      aggregate: 'max',
      sluice: { run: 'sluice', key: 'providerMaxInWindow' },
      bullmq: { run: 'bullmq', key: 'providerMaxInWindow' },
    },
    {
      id: 'rate-limit.provider-windows-over',
      metric: '1,000 ms windows over the limit as the provider saw the calls (worst round)',
      unit: 'windows',
      better: 'lower',
      aggregate: 'max',
      zeroOk: true,
      sluice: { run: 'sluice', key: 'providerWindowsOver' },
      bullmq: { run: 'bullmq', key: 'providerWindowsOver' },
    },
  ],
};

import { sleep } from '../clock';
import { enqueueSteady, openProducer } from '../producers';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { cycleRate, slidingWindows, sustainedRate } from '../stats';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

/**
 * The content-inspection case: a provider takes at most `calls` requests per period of up to `size`
 * items each; messages arrive one at a time faster than that. One worker process makes one call at a
 * time; the parent adds jobs one by one for the profile's duration.
 */
async function batchApi(ctx: RunContext, system: System): Promise<Measurement> {
  const p = ctx.profile.batchApi;
  const worker = await WorkerProcess.fork(
    system,
    {
      url: ctx.target.url,
      prefix: ctx.prefix,
      queue: ctx.queue,
      concurrency: 1,
      mode: { kind: 'batch', size: p.size, timeMs: p.timeMs },
      handler: { kind: 'noop' },
      rateLimit: { allowed: p.calls, periodMs: p.periodMs, per: 'call' },
      recordCalls: true,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return withWorkers([worker], async () => {
    const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
    let produced: Awaited<ReturnType<typeof enqueueSteady>>;
    try {
      worker.start();
      await sleep(500);
      produced = await enqueueSteady(producer, p.perSecond, p.durationMs);
    } finally {
      await producer.close();
    }
    const report = await worker.stop();
    const from = produced.startedAt + p.warmupMs;
    const times: number[] = [];
    const sizes: number[] = [];
    report.callTimes.forEach((t, i) => {
      if (t >= from && t <= produced.endedAt) {
        times.push(t);
        sizes.push(report.callSizes[i] ?? 0);
      }
    });
    const items = sizes.reduce((a, b) => a + b, 0);
    return {
      itemsPerSecond: cycleRate(times, p.calls, sizes, produced.endedAt - from),
      itemsPerSecondSlope: sustainedRate(times, sizes),
      itemsPerCall: items / Math.max(1, times.length),
      maxCallsInWindow: slidingWindows(report.callTimes, p.periodMs, p.calls).max,
      producerRate: produced.rate,
    };
  });
}

const runs: readonly ScenarioRun[] = [
  { id: 'sluice', system: 'sluice', run: (ctx) => batchApi(ctx, 'sluice') },
  { id: 'bullmq', system: 'bullmq', run: (ctx) => batchApi(ctx, 'bullmq') },
];

export const batchApiScenario: Scenario = {
  id: 'batch-api',
  title: 'Batch API shape',
  describe: (profile) => {
    const p = profile.batchApi;
    return (
      `A provider that takes ${p.calls} calls per ${p.periodMs.toLocaleString('en')} ms of up to ${p.size} items ` +
      `(at most ${(p.calls * p.size * 1000) / p.periodMs} items/s). The parent adds ${p.perSecond.toLocaleString('en')} ` +
      `jobs/s one at a time for ${p.durationMs / 1000} s into an idle worker process that makes one call ` +
      `at a time (a no-op batch handler). Sluice: \`batch: { size: ${p.size}, timeMs: ${p.timeMs} }\`, ` +
      `\`rateLimit: { allowed: ${p.calls}, periodMs: ${p.periodMs}, per: 'call' }\`, concurrency 1. BullMQ ` +
      `(no batch API in its open-source edition): a Worker without a processor and a loop that takes up ` +
      `to ${p.size} jobs with \`getNextJob\` (blocking for the first, then waiting at most ${p.timeMs} ms ` +
      `after it), waits for a free slot of a sliding window of ${p.calls} calls per ${p.periodMs} ms kept ` +
      `in the process (BullMQ's limiter counts jobs, not calls), calls the handler once, then ` +
      `\`moveToCompleted\` on each job. Items/s is measured over whole cycles of ${p.calls} calls ` +
      `(\`cycleRate\` in \`src/stats.ts\`), leaving out calls in the first ${p.warmupMs} ms of production.`
    );
  },
  runs,
  rows: [
    {
      id: 'batch-api.items',
      metric: 'items through a 10 calls/s x 100 items provider',
      unit: 'items/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'itemsPerSecond' },
      bullmq: { run: 'bullmq', key: 'itemsPerSecond' },
    },
    {
      id: 'batch-api.items-per-call',
      metric: 'items per call',
      unit: 'items',
      better: 'higher',
      sluice: { run: 'sluice', key: 'itemsPerCall' },
      bullmq: { run: 'bullmq', key: 'itemsPerCall' },
    },
    {
      id: 'batch-api.max-calls',
      metric: 'most calls in any 1,000 ms window (worst round)',
      unit: 'calls',
      better: 'lower',
      aggregate: 'max',
      sluice: { run: 'sluice', key: 'maxCallsInWindow' },
      bullmq: { run: 'bullmq', key: 'maxCallsInWindow' },
    },
    {
      id: 'batch-api.producer-rate',
      metric: 'adds issued by the producer',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'producerRate' },
      bullmq: { run: 'bullmq', key: 'producerRate' },
    },
  ],
};

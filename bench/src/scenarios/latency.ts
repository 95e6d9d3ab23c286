import { sleep } from '../clock';
import { enqueueSteady, openProducer } from '../producers';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { percentile } from '../stats';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

/** How long the started worker sits with an empty queue before the producer begins (it goes idle). */
const IDLE_MS = 1000;

/**
 * A worker process waits, idle, on an empty queue; the parent adds jobs one at a time at a steady
 * rate, each carrying the producer's clock; the handler subtracts it from its own clock at its start.
 */
async function latency(ctx: RunContext, system: System, perSecond: number): Promise<Measurement> {
  const p = ctx.profile.latency;
  const total = Math.round((perSecond * p.durationMs) / 1000);
  const worker = await WorkerProcess.fork(
    system,
    {
      url: ctx.target.url,
      prefix: ctx.prefix,
      queue: ctx.queue,
      concurrency: p.concurrency,
      mode: { kind: 'single' },
      handler: { kind: 'noop' },
      expect: total,
      recordLatency: true,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return withWorkers([worker], async () => {
    const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
    try {
      worker.start();
      await sleep(IDLE_MS);
      const produced = await enqueueSteady(producer, perSecond, p.durationMs);
      const report = await worker.done(p.durationMs + 60_000);
      await worker.stop();
      const first = report.enqueuedAt.reduce((a, b) => Math.min(a, b), Infinity);
      const measured = report.latencies.filter((_, i) => (report.enqueuedAt[i] ?? 0) >= first + p.warmupMs);
      return {
        p50: percentile(measured, 50),
        p95: percentile(measured, 95),
        p99: percentile(measured, 99),
        max: percentile(measured, 100),
        producerRate: produced.rate,
      };
    } finally {
      await producer.close();
    }
  });
}

const runs: readonly ScenarioRun[] = [
  { id: 'sluice', system: 'sluice', run: (ctx) => latency(ctx, 'sluice', ctx.profile.latency.perSecond) },
  { id: 'bullmq', system: 'bullmq', run: (ctx) => latency(ctx, 'bullmq', ctx.profile.latency.perSecond) },
  {
    id: 'sluice-busy',
    system: 'sluice',
    run: (ctx) => latency(ctx, 'sluice', ctx.profile.latency.busyPerSecond),
  },
  {
    id: 'bullmq-busy',
    system: 'bullmq',
    run: (ctx) => latency(ctx, 'bullmq', ctx.profile.latency.busyPerSecond),
  },
];

/** A row of the light run (`latency.<key>`) or of the busy one (`latency.<key>-busy`). */
const row = (key: string, metric: string, busy = false) =>
  ({
    id: `latency.${key}${busy ? '-busy' : ''}`,
    metric,
    unit: 'ms',
    better: 'lower',
    sluice: { run: busy ? 'sluice-busy' : 'sluice', key },
    bullmq: { run: busy ? 'bullmq-busy' : 'bullmq', key },
  }) as const;

export const latencyScenario: Scenario = {
  id: 'latency',
  title: 'Latency',
  describe: (profile) => {
    const p = profile.latency;
    return (
      `One worker process (concurrency ${p.concurrency}, no-op handler) is started on an empty queue and ` +
      `left idle for ${IDLE_MS} ms; then the parent adds ${p.perSecond} jobs/s one at a time (\`Queue.add\`, ` +
      `not awaited before the next is due) for ${p.durationMs / 1000} s; a second run adds ` +
      `${p.busyPerSecond.toLocaleString('en')} jobs/s the same way. Each payload carries the ` +
      `producer's clock (the machine's monotonic clock mapped to epoch ms, \`src/clock.ts\`) read just before its add; the handler ` +
      `reads the same clock when it starts (same machine). Jobs added in the first ${p.warmupMs} ms are ` +
      `left out for both systems. Percentiles by nearest rank; the median over rounds is reported.`
    );
  },
  runs,
  rows: [
    row('p50', 'enqueue to start, p50'),
    row('p95', 'enqueue to start, p95'),
    row('p99', 'enqueue to start, p99'),
    row('max', 'enqueue to start, max'),
    {
      id: 'latency.producer-rate',
      metric: 'adds issued by the producer',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'producerRate' },
      bullmq: { run: 'bullmq', key: 'producerRate' },
    },
    row('p50', 'busy: enqueue to start, p50', true),
    row('p95', 'busy: enqueue to start, p95', true),
    row('p99', 'busy: enqueue to start, p99', true),
    row('max', 'busy: enqueue to start, max', true),
    {
      id: 'latency.producer-rate-busy',
      metric: 'busy: adds issued by the producer',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice-busy', key: 'producerRate' },
      bullmq: { run: 'bullmq-busy', key: 'producerRate' },
    },
  ],
};

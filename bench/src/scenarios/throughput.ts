import { enqueueBulk, openProducer } from '../producers';
import type { ModeSpec } from '../protocol';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

/**
 * Bulk-enqueues the profile's no-op jobs, then one worker process drains them. Enqueue is timed from
 * the first bulk add to the last; processing from the worker's `start` to its last completion (the
 * job settled in Redis). Redis CPU time is read around each phase.
 */
export async function throughput(
  ctx: RunContext,
  system: System,
  mode: ModeSpec,
  concurrency: number,
): Promise<Measurement> {
  const p = ctx.profile.throughput;
  const worker = await WorkerProcess.fork(
    system,
    {
      url: ctx.target.url,
      prefix: ctx.prefix,
      queue: ctx.queue,
      concurrency,
      mode,
      handler: { kind: 'noop' },
      expect: p.jobs,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return withWorkers([worker], async () => {
    const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
    const redis0 = await ctx.target.counters();
    let enqueueMs: number;
    try {
      enqueueMs = await enqueueBulk(producer, p.jobs, p.chunk);
    } finally {
      await producer.close();
    }
    const redis1 = await ctx.target.counters();
    worker.start();
    const report = await worker.done(Math.max(120_000, p.jobs * 2));
    const redis2 = await ctx.target.counters();
    await worker.stop();
    return {
      enqueue: (p.jobs * 1000) / enqueueMs,
      processing: (p.jobs * 1000) / (report.doneAt - report.startedAt),
      redisUsPerEnqueued: ((redis1.cpuSeconds - redis0.cpuSeconds) * 1e6) / p.jobs,
      redisUsPerProcessed: ((redis2.cpuSeconds - redis1.cpuSeconds) * 1e6) / p.jobs,
      workerUsPerProcessed: (report.cpuMs * 1000) / p.jobs,
    };
  });
}

const runs: readonly ScenarioRun[] = [
  {
    id: 'sluice',
    system: 'sluice',
    run: (ctx) => throughput(ctx, 'sluice', { kind: 'single' }, ctx.profile.throughput.concurrency),
  },
  {
    id: 'bullmq',
    system: 'bullmq',
    run: (ctx) => throughput(ctx, 'bullmq', { kind: 'single' }, ctx.profile.throughput.concurrency),
  },
  {
    id: 'sluice-batch',
    system: 'sluice',
    run: (ctx) => {
      const p = ctx.profile.throughput;
      return throughput(
        ctx,
        'sluice',
        { kind: 'batch', size: p.batchSize, timeMs: p.batchTimeMs },
        p.batchConcurrency,
      );
    },
  },
];

export const throughputScenario: Scenario = {
  id: 'throughput',
  title: 'Throughput',
  describe: (profile) => {
    const p = profile.throughput;
    return (
      `${p.jobs.toLocaleString('en')} no-op jobs (payload \`{"to":"user<i>@example.com"}\`) bulk-enqueued by ` +
      `the parent process in calls of ${p.chunk.toLocaleString('en')} (Sluice \`Queue.addBulk\`, BullMQ ` +
      `\`Queue.addBulk\`), then processed by one worker process at concurrency ${p.concurrency} (an \`async\` ` +
      `handler that returns at once). Processing is timed in the worker from \`start\` to the last job ` +
      `completed (Sluice: its outcome, emitted after the settle; BullMQ: the \`completed\` event, after ` +
      `\`moveToFinished\`). The batched variant is a Sluice pipeline with \`batch: { size: ${p.batchSize}, ` +
      `timeMs: ${p.batchTimeMs} }\`, a batch handler and concurrency ${p.batchConcurrency} (${p.batchConcurrency} ` +
      `batch calls at once); BullMQ has no batch API in its open-source edition, so that row compares it ` +
      `with BullMQ's concurrency-${p.concurrency} run. Sluice pipelines reserve one more unit per slot ahead ` +
      `(\`prefetch: concurrency × batch size\`), the counterpart of BullMQ fetching a slot's next job in the ` +
      `call that finishes its last one. Redis CPU is the server's \`used_cpu_user + used_cpu_sys\` ` +
      `over the phase, divided by the jobs.`
    );
  },
  runs,
  rows: [
    {
      id: 'throughput.enqueue',
      metric: 'enqueue (bulk)',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'enqueue' },
      bullmq: { run: 'bullmq', key: 'enqueue' },
    },
    {
      id: 'throughput.processing',
      metric: 'processing, concurrency 100',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'processing' },
      bullmq: { run: 'bullmq', key: 'processing' },
    },
    {
      id: 'throughput.batch-processing',
      metric: 'processing, Sluice batch 100 (BullMQ: concurrency 100, no batch API)',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice-batch', key: 'processing' },
      bullmq: { run: 'bullmq', key: 'processing' },
    },
    {
      id: 'throughput.redis-cpu-enqueue',
      metric: 'Redis CPU per enqueued job',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice', key: 'redisUsPerEnqueued' },
      bullmq: { run: 'bullmq', key: 'redisUsPerEnqueued' },
    },
    {
      id: 'throughput.redis-cpu',
      metric: 'Redis CPU per processed job, concurrency 100',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice', key: 'redisUsPerProcessed' },
      bullmq: { run: 'bullmq', key: 'redisUsPerProcessed' },
    },
    {
      id: 'throughput.redis-cpu-batch',
      metric: 'Redis CPU per processed job, Sluice batch 100 (BullMQ: concurrency 100)',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice-batch', key: 'redisUsPerProcessed' },
      bullmq: { run: 'bullmq', key: 'redisUsPerProcessed' },
    },
    {
      id: 'throughput.worker-cpu',
      metric: 'worker CPU per processed job, concurrency 100',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice', key: 'workerUsPerProcessed' },
      bullmq: { run: 'bullmq', key: 'workerUsPerProcessed' },
    },
    {
      id: 'throughput.worker-cpu-batch',
      metric: 'worker CPU per processed job, Sluice batch 100 (BullMQ: concurrency 100)',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice-batch', key: 'workerUsPerProcessed' },
      bullmq: { run: 'bullmq', key: 'workerUsPerProcessed' },
    },
  ],
};

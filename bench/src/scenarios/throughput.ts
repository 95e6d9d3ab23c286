import { enqueueBulk, openProducer } from '../producers';
import type { ModeSpec } from '../protocol';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { WorkerProcess, withWorkers, type System } from '../worker-process';

/**
 * Bulk-enqueues the profile's no-op jobs (`warmup` jobs and the measured ones, one backlog), then one
 * worker process drains them. Enqueue is timed from the first bulk add to the last; processing and the
 * worker's CPU time from the warm-up's last completion (or `start`, without a warm-up) to the last
 * completion (the job settled in Redis). Redis CPU time is read around each phase.
 */
export async function throughput(
  ctx: RunContext,
  system: System,
  mode: ModeSpec,
  concurrency: number,
  warmup: number,
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
      warmup,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return withWorkers([worker], async () => {
    const producer = await openProducer(system, ctx.target.url, ctx.prefix, ctx.queue);
    const redis0 = await ctx.target.counters();
    let enqueueMs: number;
    try {
      enqueueMs = await enqueueBulk(producer, warmup + p.jobs, p.chunk);
    } finally {
      await producer.close();
    }
    const redis1 = await ctx.target.counters();
    worker.start();
    const report = await worker.done(Math.max(120_000, (warmup + p.jobs) * 2));
    const redis2 = await ctx.target.counters();
    await worker.stop();
    const all = warmup + p.jobs;
    const warm = report.warmup;
    return {
      enqueue: (all * 1000) / enqueueMs,
      processing: (report.completed * 1000) / (report.doneAt - report.startedAt),
      redisUsPerEnqueued: ((redis1.cpuSeconds - redis0.cpuSeconds) * 1e6) / all,
      // Over the whole drain, warm-up included: Redis runs no JIT, so its cost per job does not warm up.
      redisUsPerProcessed: ((redis2.cpuSeconds - redis1.cpuSeconds) * 1e6) / all,
      workerUsPerProcessed: (report.cpuMs * 1000) / report.completed,
      ...(warm ? { workerUsPerWarmupJob: (warm.cpuMs * 1000) / warm.completed } : {}),
      warmupJobs: warm?.completed ?? 0,
    };
  });
}

/** A run of one job per handler call at the profile's concurrency, measured after `warmupJobs`. */
function singleRun(system: System): ScenarioRun {
  return {
    id: system,
    system,
    run: (ctx) =>
      throughput(
        ctx,
        system,
        { kind: 'single' },
        ctx.profile.throughput.concurrency,
        ctx.profile.throughput.warmupJobs,
      ),
  };
}

const runs: readonly ScenarioRun[] = [
  singleRun('sluice'),
  singleRun('bullmq'),
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
        p.batchWarmupJobs,
      );
    },
  },
];

export const throughputScenario: Scenario = {
  id: 'throughput',
  title: 'Throughput',
  describe: (profile) => {
    const p = profile.throughput;
    const n = (x: number): string => x.toLocaleString('en');
    return (
      `${n(p.warmupJobs + p.jobs)} no-op jobs (payload \`{"to":"user<i>@example.com"}\`) bulk-enqueued by ` +
      `the parent process in calls of ${n(p.chunk)} (Sluice \`Queue.addBulk\`, BullMQ ` +
      `\`Queue.addBulk\`), then processed by one worker process at concurrency ${p.concurrency} (an \`async\` ` +
      `handler that returns at once). ` +
      (p.warmupJobs > 0
        ? `The worker is measured over the last ${n(p.jobs)} of them: the first ${n(p.warmupJobs)} warm it ` +
          `up (the JIT compiles its code, as in any long-running worker), and the rows marked "fresh process" ` +
          `are the worker CPU per job of those first jobs. Processing is timed in the worker from the warm-up's ` +
          `last completion to the last job completed `
        : `The worker process is fresh: JIT compilation is part of the measured span. Processing is timed ` +
          `in the worker from \`start\` to the last job completed `) +
      `(Sluice: its outcome, emitted after the settle; BullMQ: the \`completed\` event, after ` +
      `\`moveToFinished\`). The batched variant is a Sluice pipeline with \`batch: { size: ${p.batchSize}, ` +
      `timeMs: ${p.batchTimeMs} }\`, a batch handler and concurrency ${p.batchConcurrency} (${p.batchConcurrency} ` +
      `batch calls at once); BullMQ has no batch API in its open-source edition, so that row compares it ` +
      `with BullMQ's concurrency-${p.concurrency} run. Sluice pipelines reserve one more unit per slot ahead ` +
      `(\`prefetch: concurrency × batch size\`), the counterpart of BullMQ fetching a slot's next job in the ` +
      `call that finishes its last one. ` +
      (p.batchWarmupJobs > 0
        ? `The batched run's backlog is ${n(p.batchWarmupJobs + p.jobs)} jobs, the first ` +
          `${n(p.batchWarmupJobs)} its warm-up: it reserves and settles 1,000 jobs a call, so ` +
          `${n(p.warmupJobs)} jobs are its first ${n(p.warmupJobs / 1000)} calls and about a second of its ` +
          `life, while V8 still compiles the code those calls run (bench/README.md). `
        : '') +
      `Redis CPU is the server's \`used_cpu_user + used_cpu_sys\` ` +
      `over the phase (enqueue; the whole drain, warm-up included: Redis runs no JIT), divided by its jobs.`
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
      id: 'throughput.worker-cpu-fresh',
      metric: 'worker CPU per job, concurrency 100, fresh process (the warm-up)',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice', key: 'workerUsPerWarmupJob' },
      bullmq: { run: 'bullmq', key: 'workerUsPerWarmupJob' },
    },
    {
      id: 'throughput.worker-cpu-batch',
      metric: 'worker CPU per processed job, Sluice batch 100 (BullMQ: concurrency 100)',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice-batch', key: 'workerUsPerProcessed' },
      bullmq: { run: 'bullmq', key: 'workerUsPerProcessed' },
    },
    {
      id: 'throughput.worker-cpu-batch-fresh',
      metric: 'worker CPU per job, Sluice batch 100 (BullMQ: concurrency 100), fresh process (the warm-up)',
      unit: 'µs',
      better: 'lower',
      sluice: { run: 'sluice-batch', key: 'workerUsPerWarmupJob' },
      bullmq: { run: 'bullmq', key: 'workerUsPerWarmupJob' },
    },
  ],
};

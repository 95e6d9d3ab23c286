/**
 * The Sluice side of every benchmark: one `Worker` with one pipeline over a `RedisStore`, configured
 * from a {@link WorkerSpec}. Forked by the parent (`worker-process.ts`); loads only Sluice, so its
 * RSS is Sluice's own.
 */
import { definePipeline, silentLogger, Worker, type PipelineDefinition } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import type { BenchPayload, WorkerSpec } from '../protocol';
import { runHandler, workerMain, type Recorder, type RunningWorker } from './worker-main';

function pipelineFor(spec: WorkerSpec, recorder: Recorder): PipelineDefinition<BenchPayload> {
  const rateLimit = spec.rateLimit && {
    allowed: spec.rateLimit.allowed,
    periodMs: spec.rateLimit.periodMs,
    per: spec.rateLimit.per,
  };
  // Without a rate limit, one more unit per slot is reserved ahead (`prefetch`), as BullMQ fetches a
  // slot's next job in the same call that finishes the last one; a limited pipeline cannot prefetch.
  const unit = spec.mode.kind === 'batch' ? spec.mode.size : 1;
  const common = {
    queue: spec.queue,
    concurrency: spec.concurrency,
    ...(rateLimit ? { rateLimit } : { prefetch: spec.concurrency * unit }),
  };
  const mode = spec.mode;
  switch (mode.kind) {
    case 'single':
      return definePipeline<BenchPayload>({
        ...common,
        handler: async (job, ctx) => {
          recorder.call([job.data], job.lease.startedAt);
          // A limited handler says when its request left: the margin follows (ctx.limit.sent()).
          await runHandler(spec.handler, () => ctx.limit?.sent());
        },
      });
    case 'batch':
      return definePipeline<BenchPayload>({
        ...common,
        batch: { size: mode.size, timeMs: mode.timeMs },
        handler: async (jobs, ctx) => {
          recorder.call(
            jobs.map((j) => j.data),
            jobs[0]?.lease.startedAt,
          );
          await runHandler(spec.handler, () => ctx.limit?.sent());
        },
      });
  }
}

async function prepare(spec: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const store = await RedisStore.connect({ url: spec.url, prefix: spec.prefix });
  const worker = new Worker({ store, pipelines: [pipelineFor(spec, recorder)], logger: silentLogger });
  worker.outcomes$.subscribe((outcome) => {
    if (outcome.kind === 'completed') recorder.completed(1);
  });
  return {
    start: () => {
      worker.start();
    },
    stop: async () => {
      await worker.close({ timeoutMs: 30_000 });
      await store.close();
    },
  };
}

workerMain({ prepare });

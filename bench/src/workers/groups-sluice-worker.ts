/**
 * The Sluice side of the groups benchmark (`groups.ts`): one `Worker` with one pipeline whose jobs
 * carry a group, with `groups: { concurrency }` when the spec sets `groupConcurrency`. With
 * `countTimedOnly`, only jobs whose payload carries `t` count towards `expect` (the small groups of
 * the fairness runs, while a big group's jobs keep the worker busy).
 */
import { definePipeline, silentLogger, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import type { BenchPayload, WorkerSpec } from '../protocol';
import { runHandler, workerMain, type Recorder, type RunningWorker } from './worker-main';

export interface GroupsSluiceSpec extends WorkerSpec {
  /** `groups: { concurrency }` on the pipeline; absent: groups only take turns. */
  readonly groupConcurrency?: number;
  readonly countTimedOnly?: boolean;
}

async function prepare(base: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const spec = base as GroupsSluiceSpec;
  const store = await RedisStore.connect({ url: spec.url, prefix: spec.prefix });
  const pipeline = definePipeline<BenchPayload>({
    queue: spec.queue,
    concurrency: spec.concurrency,
    prefetch: spec.concurrency,
    ...(spec.groupConcurrency === undefined ? {} : { groups: { concurrency: spec.groupConcurrency } }),
    handler: async (job) => {
      recorder.call([job.data], job.lease.startedAt);
      await runHandler(spec.handler);
    },
  });
  const worker = new Worker({ store, pipelines: [pipeline], logger: silentLogger });
  worker.pipeline<BenchPayload>(spec.queue).outcomes$.subscribe((outcome) => {
    if (outcome.kind !== 'completed') return;
    if (!spec.countTimedOnly || outcome.job.data.t !== undefined) recorder.completed(1);
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

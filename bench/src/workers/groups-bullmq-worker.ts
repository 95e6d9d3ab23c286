/**
 * The BullMQ side of the groups benchmark (`groups.ts`): the open-source workaround for per-tenant
 * concurrency, a queue and a `Worker` per tenant (`<queue>-<i>` for `i < tenants`), each with the
 * spec's `concurrency`, all in this one process. Each Worker opens its own connections (BullMQ's
 * default from connection options).
 */
import { Worker, type Job } from 'bullmq';
import { BULLMQ_KEEP_COMPLETED, bullmqConnection } from '../bullmq-connection';
import type { BenchPayload, WorkerSpec } from '../protocol';
import { runHandler, workerMain, type Recorder, type RunningWorker } from './worker-main';

export interface GroupsBullmqSpec extends WorkerSpec {
  readonly tenants: number;
}

async function prepare(base: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const spec = base as GroupsBullmqSpec;
  const workers: Worker<BenchPayload>[] = [];
  for (let i = 0; i < spec.tenants; i++) {
    const worker = new Worker<BenchPayload>(
      `${spec.queue}-${i}`,
      async (job: Job<BenchPayload>) => {
        recorder.call([job.data], job.processedOn);
        await runHandler(spec.handler);
      },
      {
        connection: bullmqConnection(spec.url),
        prefix: spec.prefix,
        concurrency: spec.concurrency,
        autorun: false,
        removeOnComplete: BULLMQ_KEEP_COMPLETED,
      },
    );
    worker.on('completed', () => {
      recorder.completed(1);
    });
    worker.on('error', (error) => {
      process.stderr.write(`bullmq worker error: ${String(error)}\n`);
    });
    workers.push(worker);
  }
  for (let i = 0; i < workers.length; i += 50) {
    await Promise.all(workers.slice(i, i + 50).map((w) => w.waitUntilReady()));
  }
  const running: Promise<void>[] = [];
  return {
    start: () => {
      for (const w of workers) {
        running.push(
          w.run().catch((error: unknown) => {
            process.stderr.write(`bullmq worker stopped: ${String(error)}\n`);
          }),
        );
      }
    },
    stop: async () => {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(running);
    },
  };
}

workerMain({ prepare });

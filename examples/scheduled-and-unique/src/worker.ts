/**
 * A worker process for reminders, the recurring digest and welcome emails. Run several: each
 * reminder and each digest tick runs once, whichever process picks it up.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 SLUICE_PREFIX=app node dist/worker.js
 *
 * On a Redis Cluster, give its startup nodes instead: `REDIS_CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000`.
 *
 * When started by `main.ts` (or a test) with an IPC channel, it reports every job it ran.
 */
import { createLogger, definePipeline, Worker, type ReservedJob } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import {
  DIGEST_QUEUE,
  REMINDER_QUEUE,
  WELCOME_QUEUE,
  type Digest,
  type Reminder,
  type Welcome,
} from './jobs';

/** What a worker tells the process that started it. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | {
      readonly type: 'ran';
      readonly queue: string;
      readonly id: string;
      /** When the job was due (store clock). */
      readonly runAt: number;
      /** When its lease was granted (store clock). */
      readonly leaseStartedAt: number;
      /** When the handler ran (this process's clock). */
      readonly at: number;
      readonly data: unknown;
    };

function report(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send && process.connected) {
      process.send(message, () => {
        resolve();
      });
    } else {
      resolve();
    }
  });
}

/** Stands in for the real work (sending an email, building a report): reports the run, takes 20 ms. */
async function run(job: ReservedJob): Promise<void> {
  await report({
    type: 'ran',
    queue: job.queue,
    id: job.id,
    runAt: job.runAt,
    leaseStartedAt: job.lease.startedAt,
    at: Date.now(),
    data: job.data,
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
}

/** `REDIS_CLUSTER_NODES` (`host:port,host:port`) as ioredis takes startup nodes, if set. */
function clusterNodes(): { host: string; port: number }[] | undefined {
  const spec = process.env['REDIS_CLUSTER_NODES'];
  if (!spec) return undefined;
  return spec.split(',').map((node) => {
    const colon = node.lastIndexOf(':');
    return { host: node.slice(0, colon).trim(), port: Number(node.slice(colon + 1)) };
  });
}

async function main(): Promise<void> {
  const nodes = clusterNodes();
  const prefix = process.env['SLUICE_PREFIX'] ?? 'sluice';
  const store = await RedisStore.connect(
    nodes
      ? { connection: { cluster: { nodes } }, prefix }
      : { url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', prefix },
  );
  const worker = new Worker({
    store,
    pipelines: [
      definePipeline<Reminder>({ queue: REMINDER_QUEUE, concurrency: 5, handler: run }),
      // Every worker adds the digest's upcoming ticks, each under a unique key, so each runs once.
      definePipeline<Digest>({ queue: DIGEST_QUEUE, handler: run }),
      definePipeline<Welcome>({ queue: WELCOME_QUEUE, concurrency: 5, handler: run }),
    ],
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn' }),
  });
  worker.start();

  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await worker.close({ timeoutMs: 10_000 });
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('disconnect', () => void shutdown()); // the parent went away
  await report({ type: 'ready' });
}

main().catch((error: unknown) => {
  console.error('worker failed:', error);
  process.exit(1);
});

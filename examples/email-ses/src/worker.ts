/**
 * One email worker process. Run as many as you like: they share the queue, the leases and the
 * provider's rate limit through Redis.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 SLUICE_PREFIX=shop PROVIDER_URL=http://127.0.0.1:8025 node dist/worker.js
 *
 * When started by `main.ts` (or a test) with an IPC channel, it reports each outcome to its parent.
 */
import { createLogger, definePipeline, exponential, Telemetry, Worker, type OutcomeKind } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { EMAIL_QUEUE, emailSchema, type Email } from './email';
import { sendEmail } from './send-email';

/** What a worker tells the process that started it. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'outcome'; readonly id: string; readonly kind: OutcomeKind }
  /** A handler started (this machine's clock, ms): what the rate limit holds to. */
  | { readonly type: 'start'; readonly at: number }
  | { readonly type: 'closed'; readonly drained: boolean };

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

async function main(): Promise<void> {
  const providerUrl = process.env['PROVIDER_URL'] ?? 'http://127.0.0.1:8025';
  const store = await RedisStore.connect({
    url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    prefix: process.env['SLUICE_PREFIX'] ?? 'sluice',
  });

  const send = definePipeline<Email, string>({
    queue: EMAIL_QUEUE,
    schema: emailSchema,
    concurrency: 10,
    // The provider's account allows 450/s; we stay at 400/s across every process that uses this key.
    rateLimit: { allowed: 400, periodMs: 1000, key: 'ses-account' },
    // 503s are retried after a random delay of up to 200 ms, 400 ms, 800 ms… (full jitter).
    backoff: exponential({ baseMs: 200, maxMs: 10_000 }),
    timeoutMs: 10_000,
    handler: (job, { signal }) => sendEmail(providerUrl, job.data, signal),
  });

  const telemetry = new Telemetry();
  const worker = new Worker({
    store,
    pipelines: [send],
    telemetry,
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn' }),
  });
  telemetry.events$.subscribe((e) => {
    if (e.type === 'start') void report({ type: 'start', at: e.at });
  });
  worker.outcomes$.subscribe((o) => {
    void report({ type: 'outcome', id: o.job.id, kind: o.kind });
  });
  worker.start();

  // Deploys send SIGTERM: finish what is in flight, then exit. Queued emails wait in Redis.
  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    const { drained } = await worker.close({ timeoutMs: 10_000 });
    await store.close();
    await report({ type: 'closed', drained });
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

/**
 * A scraper worker process: five keywords at a time (the database pool has five connections), at
 * most 30 searches a minute across every process, and a graceful drain on SIGTERM.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 SLUICE_PREFIX=scraper node dist/worker.js
 *
 * When started by `main.ts` (or a test) with an IPC channel, it reports what it does to its parent.
 */
import { createLogger, definePipeline, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { SimulatedPool } from './db-pool';
import { KEYWORD_QUEUE, SEARCH_LIMIT, type KeywordJob } from './keyword';
import { search } from './search-api';

/** What a worker tells the process that started it. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | {
      readonly type: 'search';
      readonly keyword: string;
      readonly at: number;
      readonly leaseStartedAt: number;
      /** Where the search is counted in the shared limit's log (Redis clock). */
      readonly slot: number | undefined;
    }
  | { readonly type: 'saved'; readonly keyword: string; readonly results: number }
  | { readonly type: 'draining'; readonly inFlight: readonly string[] }
  | {
      readonly type: 'closed';
      readonly drained: boolean;
      readonly poolPeak: number;
      readonly poolExhausted: number;
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

async function main(): Promise<void> {
  const store = await RedisStore.connect({
    url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    prefix: process.env['SLUICE_PREFIX'] ?? 'sluice',
  });
  const pool = new SimulatedPool(5);
  const inFlight = new Set<string>();

  const scrape = definePipeline<KeywordJob, number>({
    queue: KEYWORD_QUEUE,
    // One database connection per running job: never more jobs than connections.
    concurrency: pool.size,
    rateLimit: SEARCH_LIMIT, // 30 searches per minute, shared by every worker process
    timeoutMs: 30_000,
    handler: async (job, { signal, limit }) => {
      const { keyword } = job.data;
      inFlight.add(keyword);
      try {
        return await pool.withConnection(async (db) => {
          void report({
            type: 'search',
            keyword,
            at: Date.now(),
            leaseStartedAt: job.lease.startedAt,
            slot: limit?.slot,
          });
          const results = await search(keyword, signal);
          await db.saveResults(keyword, results.length);
          void report({ type: 'saved', keyword, results: results.length });
          return results.length;
        });
      } finally {
        inFlight.delete(keyword);
      }
    },
  });

  const worker = new Worker({
    store,
    pipelines: [scrape],
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn' }),
  });
  worker.start();

  // A deploy sends SIGTERM: take no new keywords, let the ones in flight finish and settle, exit.
  // Keywords still queued stay in Redis for the next process.
  let closing = false;
  const shutdown = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    await report({ type: 'draining', inFlight: [...inFlight] });
    const { drained } = await worker.close({ timeoutMs: 30_000 });
    await store.close();
    await report({ type: 'closed', drained, poolPeak: pool.peak, poolExhausted: pool.exhausted });
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

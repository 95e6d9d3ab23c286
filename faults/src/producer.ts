/**
 * The fault suite's producer process: adds `total` jobs in batches of `batch` with caller-chosen ids
 * (`<idPrefix><n>`), one batch every `everyMs`, started with
 * `child_process.fork(faults/dist/producer.js, [JSON ProducerProgramConfig])`.
 *
 * Each id is written to the ledger (`Q`) once the store acknowledged its add. A batch that fails (Redis
 * unreachable, a reply lost with the connection) is retried with the same ids until acknowledged: an
 * add of an id that exists returns the existing job, so a retry never adds a job twice and an add
 * that was stored before its reply was lost is not lost either. Sends `ready` once connected, `done`
 * and exits 0 at the end.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { LedgerWriter } from './ledger-writer';
import { readConfig, send, toConnection } from './program';
import type { JobData, ProducerProgramConfig } from './protocol';

const config = readConfig() as ProducerProgramConfig;
const ledger = new LedgerWriter(join(config.ledgerDir, `${config.name}-${String(process.pid)}.log`));

async function main(): Promise<void> {
  const store = await RedisStore.connect({
    connection: toConnection(config.connection),
    prefix: config.prefix,
  });
  const queue = new Queue<JobData>(store, config.queue);
  process.on('disconnect', () => {
    process.exit(0);
  });
  await send({ type: 'ready', pid: process.pid });
  for (let start = 0; start < config.total; start += config.batch) {
    const ids: string[] = [];
    for (let n = start; n < Math.min(config.total, start + config.batch); n++)
      ids.push(`${config.idPrefix}${String(n)}`);
    for (let attempt = 1; ; attempt++) {
      try {
        await queue.addBulk(
          ids.map((id, i) => ({ data: { ...config.data, n: start + i }, options: { id } })),
        );
        const at = Date.now();
        for (const id of ids) ledger.write({ tag: 'Q', id, at });
        break;
      } catch (error) {
        ledger.write({
          tag: 'L',
          level: 'warn',
          message: 'add failed; retrying with the same ids',
          meta: JSON.stringify({ attempt, error: error instanceof Error ? error.message : String(error) }),
        });
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
    if (config.everyMs > 0) await sleep(config.everyMs);
  }
  await store.close();
  ledger.close();
  await send({ type: 'done' });
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `producer failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});

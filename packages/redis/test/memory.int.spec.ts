import { randomBytes } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { useSpawnedRedisWithAdmin } from './helpers';

const JOBS = 100_000;

async function usedMemory(info: Promise<string>): Promise<number> {
  const match = /^used_memory:(\d+)/m.exec(await info);
  return Number(match?.[1]);
}

/**
 * Redis memory per queued job, measured on a private server (so nothing else moves the figure):
 * 100,000 small jobs (`{"to":"user123@example.com"}`, no options) added in bulk. The README quotes the
 * figure; the bound catches a regression (BullMQ 5 needs about 227 bytes for the same job).
 */
describe('memory per queued job', () => {
  const redis = useSpawnedRedisWithAdmin();

  it(`stays under 135 bytes for a small job (${JOBS.toLocaleString('en')} jobs)`, async () => {
    // A prefix of its own as long as the default `sluice`, so the figure is the one users get.
    const prefix = `m${randomBytes(3).toString('hex').slice(0, 5)}`;
    const store = await RedisStore.connect({ url: redis.url, prefix });
    const fx = { store, cleanup: () => store.close().then(() => deleteKeysWithPrefix(redis.admin, prefix)) };
    try {
      await firstValueFrom(fx.store.enqueue([{ queue: 'emails', data: { to: 'warm-up@example.com' } }]));
      const before = await usedMemory(redis.admin.info('memory'));
      const started = Date.now();
      for (let i = 0; i < JOBS; i += 5000) {
        await firstValueFrom(
          fx.store.enqueue(
            Array.from({ length: 5000 }, (_, j) => ({
              queue: 'emails',
              data: { to: `user${i + j}@example.com` },
            })),
          ),
        );
      }
      const elapsed = Date.now() - started;
      const after = await usedMemory(redis.admin.info('memory'));
      const perJob = (after - before) / JOBS;
      // Jobs with every default: their records are fields of compact buckets of 10,000 jobs.
      const bucket = fx.store.keys.compact('emails', '5000');
      const records = Number(await redis.admin.memory('USAGE', bucket, 'SAMPLES', '0'));
      const perRecord = records / (await redis.admin.hlen(bucket));
      console.log(
        `memory: ${perJob.toFixed(1)} bytes per queued job (its record: ${perRecord.toFixed(1)} bytes); ` +
          `enqueue: ${Math.round((JOBS / elapsed) * 1000).toLocaleString('en')} jobs/s`,
      );
      expect((await fx.store.stats('emails')).counts.ready).toBe(JOBS + 1);
      expect(perJob).toBeLessThan(135);
    } finally {
      await fx.cleanup();
    }
  }, 60_000);
});

import { firstValueFrom } from 'rxjs';
import { loadScripts } from '@sluice/redis';
import { sleep, storeFixture, useSpawnedRedisWithAdmin } from './helpers';

/** Retries `fn` until it resolves (a client reconnecting after a restart), for at most `ms`. */
async function eventually<R>(fn: () => Promise<R>, ms = 10_000): Promise<R> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

describe('script cache loss (NOSCRIPT)', () => {
  const redis = useSpawnedRedisWithAdmin({ appendonly: true, appendfsync: 'always' });
  const reserveSha = loadScripts().reserve.sha;

  it('reloads the scripts after SCRIPT FLUSH and carries on', async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'flush');
    try {
      await firstValueFrom(fx.store.enqueue([1, 2, 3].map((n) => ({ queue: 'q', data: n }))));
      expect(await redis.admin.script('EXISTS', reserveSha)).toEqual([0]);
      expect((await firstValueFrom(fx.store.reserve('q', 1, { leaseMs: 5000 }))).jobs).toHaveLength(1);
      expect(await redis.admin.script('EXISTS', reserveSha)).toEqual([1]);

      await redis.admin.script('FLUSH');
      expect(await redis.admin.script('EXISTS', reserveSha)).toEqual([0]);
      const { jobs } = await firstValueFrom(fx.store.reserve('q', 5, { leaseMs: 5000 }));
      expect(jobs.map((j) => j.data)).toEqual([2, 3]);
      expect(await redis.admin.script('EXISTS', reserveSha)).toEqual([1]);
      const results = await firstValueFrom(
        fx.store.settle(
          jobs.map((j) => ({
            queue: 'q',
            id: j.id,
            token: j.lease.token,
            kind: 'completed',
            result: j.data,
            durationMs: 1,
          })),
        ),
      );
      expect(results.every((r) => r.applied)).toBe(true);
    } finally {
      await fx.cleanup!();
    }
  });

  it('keeps working across a Redis restart: reconnects, reloads scripts, finds its jobs', async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'restart');
    try {
      await firstValueFrom(fx.store.enqueue([1, 2, 3].map((n) => ({ queue: 'q', data: n }))));
      const first = await firstValueFrom(fx.store.reserve('q', 1, { leaseMs: 60_000 }));
      expect(first.jobs).toHaveLength(1);

      await redis.handle.restart();
      expect(await redis.admin.script('EXISTS', reserveSha)).toEqual([0]);

      // The first call after the restart may still meet the old connection; it then fails and the
      // caller (a pipeline's source) retries.
      const { jobs } = await eventually(() => firstValueFrom(fx.store.reserve('q', 5, { leaseMs: 60_000 })));
      expect(jobs.map((j) => j.data)).toEqual([2, 3]);
      const stats = await fx.store.stats('q');
      expect(stats.counts).toMatchObject({ ready: 0, running: 3 });
      const settled = await firstValueFrom(
        fx.store.settle(
          [...first.jobs, ...jobs].map((j) => ({
            queue: 'q',
            id: j.id,
            token: j.lease.token,
            kind: 'completed',
            result: null,
            durationMs: 1,
          })),
        ),
      );
      expect(settled.map((r) => r.applied)).toEqual([true, true, true]);
    } finally {
      await fx.cleanup!();
    }
  });
});

import { RedisStore, type RedisClient } from '@sluice/redis';
import { spawnRedis, type SpawnedRedis } from '@sluice/testing';
import { RedisTarget } from '../src/redis-target';

/**
 * With `BENCH_REDIS_URL` the benchmark shares a server it did not start: it must delete only its own
 * run prefixes, never flush. (Its own server is flushed between runs; that path runs in the smoke test.)
 */
describe('RedisTarget on a server it did not start', () => {
  let server: SpawnedRedis;
  let store: RedisStore; // only for its connection
  let client: RedisClient;

  beforeAll(async () => {
    server = await spawnRedis();
    store = await RedisStore.connect({ url: server.url, prefix: 'test-client' });
    client = store.client;
  });

  afterAll(async () => {
    await store.close();
    await server.stop();
  });

  it('deletes only the keys under the run prefixes', async () => {
    await client.set('someone-else:key', '1');
    await client.set('sluice-bench-x-1:{bench}:j:1', '1');
    await client.hset('sluice-bench-x-1:bench:meta', 'a', '1');
    await client.set('sluice-bench-x-10:kept', '1'); // another run's prefix that merely starts the same way
    const target = await RedisTarget.open(server.url);
    try {
      expect(target.owned).toBe(false);
      await target.reset(['sluice-bench-x-1']);
      expect((await client.keys('*')).sort()).toEqual(['sluice-bench-x-10:kept', 'someone-else:key']);
      expect(await target.usedMemory()).toBeGreaterThan(0);
      expect((await target.counters()).cpuSeconds).toBeGreaterThan(0);
      expect(await target.version()).toMatch(/^\d+\.\d+/);
    } finally {
      await target.close();
    }
  });
});

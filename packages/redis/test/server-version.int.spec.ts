import { Redis } from 'ioredis';
import { isVersionAtLeast, parseRedisVersion, RedisStore } from '@sluice/redis';
import { uniquePrefix } from '@sluice/testing';
import { useRedisWithAdmin } from './helpers';

describe('the Redis version check on a real server', () => {
  const redis = useRedisWithAdmin();

  it('the test server is Redis 7 or newer, and connecting to it passes the check', async () => {
    const version = parseRedisVersion(await redis.admin.info('server'));
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(isVersionAtLeast(version!)).toBe(true);
    const store = await RedisStore.connect({ url: redis.url, prefix: uniquePrefix('version') });
    await store.close();
  });

  it('passes with a client the application made itself', async () => {
    const client = new Redis(redis.url);
    try {
      const store = await RedisStore.connect({ connection: client, prefix: uniquePrefix('version') });
      await store.close();
      expect(client.status).toBe('ready'); // a client passed in is not closed by the store
    } finally {
      client.disconnect();
    }
  });
});

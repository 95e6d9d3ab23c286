import { createServer, type Server, type Socket } from 'node:net';
import { firstValueFrom, take, timeout } from 'rxjs';
import { definePipeline, silentLogger, StoreError, Worker } from '@sluice/core';
import { getFreePort, uniquePrefix } from '@sluice/testing';
import { openDemoStore, RedisStore } from '@sluice/redis';
import { sleep, storeFixture, useRedisWithAdmin, useSpawnedRedisWithAdmin } from './helpers';

describe('connections', () => {
  describe('ACL users', () => {
    const redis = useSpawnedRedisWithAdmin({
      users: ['default on nopass ~* &* +@all', 'worker on >s3cret ~* &* +@all'],
    });

    it('connects with a username and password from the URL, pub/sub included', async () => {
      const url = `redis://worker:s3cret@${redis.handle.host}:${redis.handle.port}`;
      const fx = await storeFixture(redis.admin, { url }, 'acl');
      try {
        const woke = firstValueFrom(fx.store.wakeups('q').pipe(take(1), timeout(2000)));
        await sleep(20);
        await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 1 }]));
        await woke;
        expect((await firstValueFrom(fx.store.reserve('q', 1, { leaseMs: 1000 }))).jobs).toHaveLength(1);
        expect(await redis.admin.acl('WHOAMI')).toBe('default');
      } finally {
        await fx.cleanup!();
      }
    });

    it('connects with ioredis options, and refuses a wrong password quickly', async () => {
      const { host, port } = redis.handle;
      const store = await RedisStore.connect({
        connection: { host, port, username: 'worker', password: 's3cret' },
        prefix: uniquePrefix('acl'),
      });
      await store.close();
      const started = Date.now();
      await expect(
        RedisStore.connect({ connection: { host, port, username: 'worker', password: 'nope' }, prefix: 'x' }),
      ).rejects.toBeInstanceOf(StoreError);
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });

  describe('openDemoStore', () => {
    const redis = useRedisWithAdmin();
    let silent: Server | undefined;

    it('rejects within about 1.5 s when nothing answers, leaving nothing running', async () => {
      const resources = (): string[] =>
        process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap');
      const closedPort = await getFreePort();
      const before = resources().length;
      let started = Date.now();
      await expect(openDemoStore(`redis://127.0.0.1:${closedPort}`, 'demo')).rejects.toBeInstanceOf(
        StoreError,
      );
      expect(Date.now() - started).toBeLessThan(5000); // gives up after ~1.5 s; a loaded machine adds to it

      // A server that accepts connections and never answers.
      const accepted: Socket[] = [];
      silent = createServer((socket) => accepted.push(socket));
      await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', resolve));
      const address = silent.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      started = Date.now();
      await expect(openDemoStore(`redis://127.0.0.1:${port}`, 'demo')).rejects.toThrow(
        /could not reach Redis/,
      );
      expect(Date.now() - started).toBeLessThan(5000); // gives up after ~1.5 s; a loaded machine adds to it
      for (const socket of accepted) socket.destroy();
      silent.close();
      // No reconnect timer, no socket left behind by either attempt (closing sockets may take a
      // moment on a loaded machine; a leak would stay for good).
      for (let waited = 0; resources().length > before && waited < 3000; waited += 50) await sleep(50);
      expect(resources().length).toBeLessThanOrEqual(before);
    });

    it('works, and dispose deletes its prefix and nothing else', async () => {
      const prefix = uniquePrefix('demo');
      const neighbour = `${uniquePrefix('neighbour')}keep`;
      await redis.admin.set(neighbour, '1');
      try {
        const { store, dispose } = await openDemoStore(redis.url, prefix);
        await firstValueFrom(store.enqueue([{ queue: 'emails', data: { to: 'a@example.com' } }]));
        await store.setQueueConfig('emails', { retention: { keep: 'none' } });
        expect((await redis.admin.keys(`${prefix}*`)).length).toBeGreaterThan(0);
        await dispose();
        await dispose(); // idempotent
        expect(await redis.admin.keys(`${prefix}*`)).toEqual([]);
        expect(await redis.admin.get(neighbour)).toBe('1');
      } finally {
        await redis.admin.del(neighbour);
      }
    });
  });

  describe('losing Redis', () => {
    const redis = useSpawnedRedisWithAdmin({ appendonly: true, appendfsync: 'always' });

    it('fails calls while Redis is down, then carries on; a running worker loses nothing', async () => {
      const fx = await storeFixture(redis.admin, { url: redis.url }, 'outage');
      const jobs = 300;
      const completed = new Set<string>();
      const worker = new Worker({
        store: fx.store,
        logger: silentLogger,
        restartDelayMs: 100,
        pipelines: [
          definePipeline({
            queue: 'q',
            concurrency: 5,
            leaseMs: 2000,
            handler: async () => {
              await sleep(10);
              return 'ok';
            },
          }),
        ],
      });
      worker.outcomes$.subscribe((o) => {
        if (o.kind === 'completed') completed.add(o.job.id);
      });
      try {
        await firstValueFrom(
          fx.store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'q', data: n }))),
        );
        worker.start();
        while (completed.size < 50) await sleep(10);

        await redis.handle.kill();
        const failure = await firstValueFrom(fx.store.reserve('other', 1, { leaseMs: 1000 })).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(StoreError);
        await sleep(500);
        await redis.handle.restart();

        const deadline = Date.now() + 20_000;
        for (;;) {
          const stats = await fx.store.stats('q').catch(() => undefined);
          if (stats?.totals.completed === jobs && stats.counts.running === 0) break;
          if (Date.now() > deadline) throw new Error(`stuck: ${JSON.stringify(stats)}`);
          await sleep(100);
        }
        const stats = await fx.store.stats('q');
        expect(stats.counts).toMatchObject({ ready: 0, running: 0, scheduled: 0, dead: 0, completed: jobs });
      } finally {
        await worker.close({ timeoutMs: 2000 });
        await fx.cleanup!();
      }
    }, 40_000);
  });
});

import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';

import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

import {
  findRedis,
  getFreePort,
  isDockerAvailable,
  isPortFree,
  spawnRedis,
  uniquePrefix,
  useRedis,
  useSpawnedRedis,
} from '../src/redis';
import type { RedisServerHandle, SpawnedRedis } from '../src/redis';
import { launchRedis } from '../src/redis/redis-server';

const handles: RedisServerHandle[] = [];
const clients: Redis[] = [];

async function spawn(options?: Parameters<typeof spawnRedis>[0]): Promise<SpawnedRedis> {
  const handle = await spawnRedis(options);
  handles.push(handle);
  return handle;
}

function client(url: string, options: Omit<RedisOptions, 'replyMapping'> = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, ...options });
  redis.on('error', () => undefined);
  clients.push(redis);
  return redis;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A loopback TCP server that accepts connections and never answers. */
async function openSilentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () =>
      new Promise((resolve) => {
        sockets.forEach((socket) => socket.destroy());
        server.close(() => {
          resolve();
        });
      }),
  };
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(handles.splice(0).map((h) => h.stop()));
});

describe('spawnRedis', () => {
  it('starts a private redis-server and cleans everything up on stop()', async () => {
    const redis = await spawn();
    expect(redis).toMatchObject({ source: 'spawned', owned: true, host: '127.0.0.1', running: true });
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.port).not.toBe(6379);
    expect(alive(redis.pid)).toBe(true);
    expect(existsSync(join(redis.dir, 'redis.conf'))).toBe(true);
    // The crash-cleanup hook sits on the real process, not on Jest's sandboxed copy (whose events never fire).
    expect((runInThisContext('process') as NodeJS.Process).listenerCount('exit')).toBeGreaterThan(0);

    const c = client(redis.url);
    expect(await c.ping()).toBe('PONG');
    expect(await c.config('GET', 'dir')).toEqual(['dir', redis.dir]);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    expect(await c.config('GET', 'save')).toEqual(['save', '']);
    c.disconnect();

    await redis.stop();
    expect(redis.running).toBe(false);
    expect(alive(redis.pid)).toBe(false);
    expect(existsSync(redis.dir)).toBe(false);
    expect(await isPortFree(redis.port)).toBe(true);
    await redis.stop(); // idempotent
  });

  it('gives parallel spawns different ports and dirs', async () => {
    const servers = await Promise.all([spawn(), spawn(), spawn(), spawn()]);
    expect(new Set(servers.map((s) => s.port)).size).toBe(servers.length);
    expect(new Set(servers.map((s) => s.dir)).size).toBe(servers.length);
    for (const s of servers) expect(await client(s.url).ping()).toBe('PONG');
  });

  it('keeps data across kill(SIGKILL) + restart() with appendonly', async () => {
    const redis = await spawn({ appendonly: true, appendfsync: 'always' });
    const key = `${uniquePrefix('aof')}k`;
    const before = client(redis.url);
    await before.set(key, 'survives');
    before.disconnect();

    const { port, pid } = redis;
    await redis.kill('SIGKILL');
    expect(redis.running).toBe(false);
    expect(alive(pid)).toBe(false);
    expect(existsSync(redis.dir)).toBe(true);

    await redis.restart();
    expect(redis.running).toBe(true);
    expect(redis.port).toBe(port);
    expect(redis.pid).not.toBe(pid);
    expect(await client(redis.url).get(key)).toBe('survives');
  });

  it('restart() of a running server shuts it down gracefully first', async () => {
    const redis = await spawn({ appendonly: true });
    const key = `${uniquePrefix('graceful')}k`;
    const before = client(redis.url);
    await before.set(key, 'v');
    before.disconnect();
    const { pid } = redis;
    await redis.restart();
    expect(alive(pid)).toBe(false);
    expect(await client(redis.url).get(key)).toBe('v');
  });

  it('pause() makes commands time out until resume()', async () => {
    const redis = await spawn();
    const c = client(redis.url, { commandTimeout: 200 });
    expect(await c.ping()).toBe('PONG');
    redis.pause();
    await expect(c.ping()).rejects.toThrow(/timed out/i);
    redis.resume();
    expect(await c.ping()).toBe('PONG');
  });

  it('stop() ends a paused server too', async () => {
    const redis = await spawn({ stopGraceMs: 2_000 });
    redis.pause();
    await redis.stop();
    expect(alive(redis.pid)).toBe(false);
    expect(existsSync(redis.dir)).toBe(false);
  });

  it('passes requirepass, ACL users, maxmemory and raw config through', async () => {
    const redis = await spawn({
      requirepass: 's3cr3t pw',
      users: ['worker on >wpass ~jobs:* +@all'],
      maxmemory: '10mb',
      maxmemoryPolicy: 'noeviction',
      config: { hz: 50, 'lazyfree-lazy-user-del': true },
    });
    expect(redis.url).toBe(`redis://:s3cr3t%20pw@127.0.0.1:${redis.port}`);
    const admin = client(redis.url);
    expect(await admin.ping()).toBe('PONG');
    expect(await admin.config('GET', 'maxmemory')).toEqual(['maxmemory', String(10 * 1024 * 1024)]);
    expect(await admin.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await admin.config('GET', 'hz')).toEqual(['hz', '50']);
    expect(await admin.config('GET', 'lazyfree-lazy-user-del')).toEqual(['lazyfree-lazy-user-del', 'yes']);

    const anonymous = client(`redis://127.0.0.1:${redis.port}`, { enableReadyCheck: false });
    await expect(anonymous.get('x')).rejects.toThrow(/NOAUTH/);

    const worker = client(`redis://worker:wpass@127.0.0.1:${redis.port}`);
    expect(await worker.set('jobs:1', 'x')).toBe('OK');
    await expect(worker.set('other', 'x')).rejects.toThrow(/NOPERM/);
  });

  it('rejects harness-managed directives and reports a failing config with the server output', async () => {
    await expect(spawnRedis({ config: { port: 1 } })).rejects.toThrow(/'port' directive is managed/);
    const root = mkdtempSync(join(tmpdir(), 'sluice-harness-test-'));
    try {
      await expect(spawnRedis({ tmpDir: root, config: { 'no-such-directive': 'x' } })).rejects.toThrow(
        /exited during startup[\s\S]*no-such-directive/,
      );
      expect(readdirSync(root)).toEqual([]); // the temp dir of the failed server is gone
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reports a missing binary clearly', async () => {
    await expect(spawnRedis({ redisServerPath: 'sluice-no-such-redis-server' })).rejects.toThrow(/not found/);
  });

  it('retries on a fresh port when the chosen one is taken (EADDRINUSE)', async () => {
    const blocker = await openSilentServer();
    const taken = blocker.port;
    try {
      const picked: number[] = [];
      const pickPort = async (): Promise<number> => {
        const port = picked.length === 0 ? taken : await getFreePort();
        picked.push(port);
        return port;
      };
      const redis = await launchRedis({}, { pickPort });
      handles.push(redis);
      expect(picked.length).toBe(2);
      expect(redis.port).toBe(picked[1]);
      expect(await client(redis.url).ping()).toBe('PONG');

      await expect(spawnRedis({ port: taken })).rejects.toThrow(/address in use/);
    } finally {
      await blocker.close();
    }
  });
});

describe('findRedis', () => {
  it('uses REDIS_URL as is (source env, not owned, stop() is a no-op)', async () => {
    const server = await spawn();
    const key = `${uniquePrefix('env')}k`;
    await client(server.url).set(key, 'kept');

    const found = await findRedis({ env: { REDIS_URL: server.url } });
    expect(found).toMatchObject({
      url: server.url,
      host: '127.0.0.1',
      port: server.port,
      source: 'env',
      owned: false,
    });
    await found.stop();
    expect(server.running).toBe(true);
    expect(await client(found.url).get(key)).toBe('kept');
  });

  it('fails fast when REDIS_URL does not answer', async () => {
    const port = await getFreePort();
    await expect(findRedis({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } })).rejects.toThrow(
      /does not answer/,
    );
  });

  it('spawns redis-server when SLUICE_TEST_REDIS=spawn', async () => {
    const found = await findRedis({ env: { SLUICE_TEST_REDIS: 'spawn' } });
    handles.push(found);
    expect(found).toMatchObject({ source: 'spawned', owned: true });
    expect(await client(found.url).ping()).toBe('PONG');
  });

  it('falls back to spawning when no Docker engine answers', async () => {
    const docker = await isDockerAvailable({ env: {} });
    const found = await findRedis({ env: {} });
    handles.push(found);
    expect(found.source).toBe(docker ? 'container' : 'spawned');
    expect(await client(found.url).ping()).toBe('PONG');
  });

  it('rejects an unknown SLUICE_TEST_REDIS', async () => {
    await expect(findRedis({ env: { SLUICE_TEST_REDIS: 'podman' } })).rejects.toThrow(/SLUICE_TEST_REDIS/);
  });
});

describe('isDockerAvailable', () => {
  it('does not hang on an engine that accepts connections but never answers', async () => {
    const blackhole = await openSilentServer();
    const port = blackhole.port;
    try {
      const baseline = await isDockerAvailable({ env: {} });
      const started = Date.now();
      const answer = await isDockerAvailable({
        env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` },
        timeoutMs: 300,
      });
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(answer).toBe(baseline); // the blackhole adds nothing; only the default sockets may answer
    } finally {
      await blackhole.close();
    }
  });

  it('is quick for a refused DOCKER_HOST', async () => {
    const port = await getFreePort();
    const started = Date.now();
    const baseline = await isDockerAvailable({ env: {} });
    expect(await isDockerAvailable({ env: { DOCKER_HOST: `tcp://127.0.0.1:${port}` } })).toBe(baseline);
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});

describe('uniquePrefix', () => {
  it('is unique, sanitised and ends with a separator', () => {
    const prefixes = new Set(Array.from({ length: 1_000 }, () => uniquePrefix('a b:{c}')));
    expect(prefixes.size).toBe(1_000);
    for (const p of prefixes) expect(p).toMatch(/^t:a_b_c_:[0-9a-f]{16}:$/);
    expect(uniquePrefix()).toMatch(/^t:test:[0-9a-f]{16}:$/);
  });
});

describe('useRedis', () => {
  const redis = useRedis({ env: { SLUICE_TEST_REDIS: 'spawn' } });

  it('provides a server inside tests', async () => {
    expect(redis.handle.source).toBe('spawned');
    expect(await client(redis.url).ping()).toBe('PONG');
  });
});

describe('useSpawnedRedis', () => {
  const redis = useSpawnedRedis({ appendonly: true });

  it('provides a controllable server inside tests', async () => {
    const c = client(redis.url);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(redis.handle.pid).toBeGreaterThan(0);
  });
});

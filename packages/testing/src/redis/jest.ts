import { findRedis } from './find-redis';
import type { FindRedisOptions } from './find-redis';
import { findRedisCluster } from './redis-cluster';
import type { FindRedisClusterOptions } from './redis-cluster';
import { spawnRedis } from './redis-server';
import type { SpawnRedisOptions } from './redis-server';
import type { RedisClusterHandle, RedisServerHandle, SpawnedRedis } from './types';

/**
 * Jest fixtures: call at the top of a `describe` (or file). The server is found/started in
 * `beforeAll` and stopped in `afterAll`; read `.url`/`.handle` inside tests and hooks only.
 */

export interface HookOptions {
  /** Timeout of the `beforeAll`/`afterAll` hooks (default 120 000 ms: a first image pull is slow). */
  readonly hookTimeoutMs?: number;
}

export interface RedisFixture<H extends RedisServerHandle = RedisServerHandle> {
  /** The server's URL; throws outside tests/hooks of the enclosing block. */
  readonly url: string;
  readonly handle: H;
}

export interface RedisClusterFixture {
  readonly handle: RedisClusterHandle;
  /** `handle.nodes` as ioredis startup nodes. */
  readonly startupNodes: { host: string; port: number }[];
}

const DEFAULT_HOOK_TIMEOUT_MS = 120_000;

function useResource<H extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<H>,
  options: HookOptions,
): () => H {
  let current: H | undefined;
  const timeout = options.hookTimeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  beforeAll(async () => {
    current = await start();
  }, timeout);
  afterAll(async () => {
    const resource = current;
    current = undefined;
    await resource?.stop();
  }, timeout);
  return () => {
    if (current === undefined)
      throw new Error(`${name}: the server is only available inside tests and hooks`);
    return current;
  };
}

/** `findRedis(options)` in `beforeAll`, `stop()` in `afterAll`. */
export function useRedis(options: FindRedisOptions & HookOptions = {}): RedisFixture {
  const get = useResource('useRedis', () => findRedis(options), options);
  return {
    get url() {
      return get().url;
    },
    get handle() {
      return get();
    },
  };
}

/** `spawnRedis(options)` in `beforeAll` (for fault tests: kill/restart/pause), `stop()` in `afterAll`. */
export function useSpawnedRedis(options: SpawnRedisOptions & HookOptions = {}): RedisFixture<SpawnedRedis> {
  const get = useResource('useSpawnedRedis', () => spawnRedis(options), options);
  return {
    get url() {
      return get().url;
    },
    get handle() {
      return get();
    },
  };
}

/** `findRedisCluster(options)` (REDIS_CLUSTER_NODES or a spawned 3-master cluster) for the block. */
export function useRedisCluster(options: FindRedisClusterOptions & HookOptions = {}): RedisClusterFixture {
  const get = useResource('useRedisCluster', () => findRedisCluster(options), options);
  return {
    get handle() {
      return get();
    },
    get startupNodes() {
      return get().nodes.map(({ host, port }) => ({ host, port }));
    },
  };
}

import { Cluster, Redis } from 'ioredis';
import { deleteKeysWithPrefix, RedisStore, type RedisStoreOptions } from '@sluice/redis';
import {
  uniquePrefix,
  useRedis,
  useRedisCluster,
  useSpawnedRedis,
  type FindRedisOptions,
  type HookOptions,
  type RedisClusterFixture,
  type RedisFixture,
  type SpawnedRedis,
  type SpawnRedisOptions,
  type StoreFixture,
} from '@sluice/testing';

/** A client for test set-up and clean-up; errors are ignored (servers get killed on purpose). */
export function adminClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
  client.on('error', () => undefined);
  return client;
}

export function adminCluster(nodes: { host: string; port: number }[]): Cluster {
  const client = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  return client;
}

/** A store on a fresh prefix; `cleanup` closes it and deletes its keys. */
export async function storeFixture(
  admin: Redis | Cluster,
  options: RedisStoreOptions,
  label = 'store',
): Promise<StoreFixture & { store: RedisStore; prefix: string }> {
  const prefix = uniquePrefix(label);
  const store = await RedisStore.connect({ ...options, prefix });
  return {
    store,
    prefix,
    cleanup: async () => {
      await store.close();
      await deleteKeysWithPrefix(admin, prefix);
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A Redis for the enclosing block plus an admin client on it. The client's `afterAll` is declared
 * before the server's, so it disconnects while the server still runs (a client whose server is gone
 * keeps a disconnect timer alive for seconds).
 */
function withAdmin<F>(start: () => F, url: (fixture: F) => string): F & { readonly admin: Redis } {
  let admin: Redis | undefined;
  afterAll(() => {
    admin?.disconnect();
  });
  const fixture = start();
  beforeAll(() => {
    admin = adminClient(url(fixture));
  });
  return Object.defineProperty(Object.create(fixture as object) as F, 'admin', {
    get(): Redis {
      if (!admin) throw new Error('the admin client exists inside tests and hooks only');
      return admin;
    },
  }) as F & { readonly admin: Redis };
}

export function useRedisWithAdmin(options: FindRedisOptions & HookOptions = {}): RedisFixture & {
  readonly admin: Redis;
} {
  return withAdmin(
    () => useRedis(options),
    (f) => f.url,
  );
}

export function useSpawnedRedisWithAdmin(
  options: SpawnRedisOptions & HookOptions = {},
): RedisFixture<SpawnedRedis> & {
  readonly admin: Redis;
} {
  return withAdmin(
    () => useSpawnedRedis(options),
    (f) => f.url,
  );
}

/** A Redis Cluster for the block plus an admin Cluster client, disconnected before the nodes stop. */
export function useRedisClusterWithAdmin(): RedisClusterFixture & { readonly admin: Cluster } {
  let admin: Cluster | undefined;
  afterAll(() => {
    admin?.disconnect();
  });
  const fixture = useRedisCluster();
  beforeAll(() => {
    admin = adminCluster(fixture.startupNodes);
  });
  return Object.defineProperty(Object.create(fixture) as RedisClusterFixture, 'admin', {
    get(): Cluster {
      if (!admin) throw new Error('the admin client exists inside tests and hooks only');
      return admin;
    },
  }) as RedisClusterFixture & { readonly admin: Cluster };
}

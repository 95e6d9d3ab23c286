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

/** A slot moving from one master to another, the way `redis-cli --cluster reshard` moves it. */
export interface SlotMove {
  readonly slot: number;
  readonly source: Redis;
  readonly target: Redis;
  /** `MIGRATE`s these keys of the slot to the target. */
  moveKeys(keys: readonly string[]): Promise<void>;
  /**
   * Moves the slot's keys left, `batch` at a time with `pauseMs` between batches (keys with `early`
   * first), then gives the slot to the target on every master (again: harmless). Returns the keys
   * moved.
   */
  finish(options?: {
    readonly batch?: number;
    readonly pauseMs?: number;
    readonly early?: (key: string) => boolean;
  }): Promise<number>;
}

/** Marks the slot of `key` as moving from its master to another one (`IMPORTING`/`MIGRATING`). */
export async function startSlotMove(admin: Cluster, key: string): Promise<SlotMove> {
  const slot = await admin.cluster('KEYSLOT', key);
  const masters = admin.nodes('master');
  const ownerKey = admin.slots[slot]![0]!;
  const source = masters.find((m) => `${m.options.host}:${m.options.port}` === ownerKey)!;
  const target = masters.find((m) => m !== source)!;
  const [sourceId, targetId] = [await source.cluster('MYID'), await target.cluster('MYID')];
  await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
  await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
  const moveKeys = async (keys: readonly string[]): Promise<void> => {
    if (keys.length === 0) return;
    await source.migrate(target.options.host!, target.options.port!, '', 0, 5000, 'KEYS', ...keys);
  };
  return {
    slot,
    source,
    target,
    moveKeys,
    finish: async ({ batch = 100, pauseMs = 0, early } = {}) => {
      let moved = 0;
      for (let first = early !== undefined; ;) {
        const listed = await source.cluster('GETKEYSINSLOT', slot, first ? 100_000 : batch);
        const keys = (first ? listed.filter((k) => early!(k)) : listed).slice(0, batch);
        if (keys.length === 0 && first) {
          first = false;
          continue;
        }
        if (keys.length === 0) break;
        await moveKeys(keys);
        moved += keys.length;
        if (pauseMs > 0) await sleep(pauseMs);
      }
      for (const m of masters) await m.cluster('SETSLOT', slot, 'NODE', targetId);
      return moved;
    },
  };
}

/** `errorstat_<code>` counts of a server (`INFO errorstats`). */
export async function errorStats(node: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await node.info('errorstats')).matchAll(/^errorstat_(\w+):count=(\d+)/gm)) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Client connections open on these servers now (`CLIENT LIST`), summed. */
export async function clientCount(nodes: readonly Redis[]): Promise<number> {
  let n = 0;
  for (const node of nodes) n += ((await node.client('LIST')) as string).split('\n').filter(Boolean).length;
  return n;
}

/** The id of the master holding `slot`, read from a `CLUSTER SHARDS` answer ('none' if no master does). */
export function ownerOf(shards: unknown[], slot: number): string {
  for (const shard of shards) {
    const fields = shard as unknown[];
    const slots = fields[fields.indexOf('slots') + 1] as number[];
    const nodes = fields[fields.indexOf('nodes') + 1] as unknown[][];
    for (let i = 0; i < slots.length; i += 2) {
      if (slot >= slots[i]! && slot <= slots[i + 1]!) {
        const node = nodes[0]!;
        return String(node[node.indexOf('id') + 1]);
      }
    }
  }
  return 'none';
}

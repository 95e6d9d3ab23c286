import { firstValueFrom } from 'rxjs';
import { defineStoreContract } from '@sluice/testing';
import { RedisStore } from '@sluice/redis';
import { ownerOf, storeFixture, useRedisClusterWithAdmin } from './helpers';

/** Queues of the contract's shared-limit test: in Cluster, a limit shared by queues needs one hash tag. */
const hashTag = (queue: string): string => (queue === 'a' || queue === 'b' ? 'shared-limit' : queue);

describe('RedisStore on a 3-master Redis Cluster', () => {
  const cluster = useRedisClusterWithAdmin();

  defineStoreContract(
    'RedisStore (Cluster)',
    () =>
      storeFixture(
        cluster.admin,
        { connection: { cluster: { nodes: cluster.startupNodes } }, hashTag },
        'cluster-contract',
      ),
    { timeScale: 2 },
  );

  describe('placement', () => {
    it('keeps each queue in one slot and spreads queues over the masters', async () => {
      const fx = await storeFixture(cluster.admin, {
        connection: { cluster: { nodes: cluster.startupNodes } },
      });
      try {
        const queues = Array.from({ length: 12 }, (_, i) => `spread-${i}`);
        await firstValueFrom(fx.store.enqueue(queues.map((queue) => ({ queue, data: queue }))));
        const slotsOf = async (keys: string[]): Promise<Set<number>> =>
          new Set(await Promise.all(keys.map((k) => cluster.admin.cluster('KEYSLOT', k))));
        const owners = new Set<string>();
        for (const queue of queues) {
          const k = fx.store.keys.queue(queue);
          const slots = await slotsOf([
            k.settings,
            k.priorities,
            k.scheduled,
            k.active,
            k.dead,
            k.counters,
            k.events,
            k.jobPrefix + '1',
          ]);
          expect(slots.size).toBe(1);
          const [slot] = [...slots];
          const shards = (await cluster.admin.cluster('SHARDS')) as unknown[];
          owners.add(ownerOf(shards, slot!));
          const [job] = (await firstValueFrom(fx.store.reserve(queue, 1, { leaseMs: 1000 }))).jobs;
          expect(job?.data).toBe(queue);
        }
        expect(owners.size).toBeGreaterThan(1);
      } finally {
        await fx.cleanup!();
      }
    });

    it('refuses a rate limit shared by queues in different slots', async () => {
      const fx = await storeFixture(cluster.admin, {
        connection: { cluster: { nodes: cluster.startupNodes } },
      });
      const store: RedisStore = fx.store;
      try {
        const limit = { key: 'provider', allowed: 5, periodMs: 1000 };
        await firstValueFrom(store.reserve('left', 1, { leaseMs: 1000, limit }));
        await expect(firstValueFrom(store.reserve('right', 1, { leaseMs: 1000, limit }))).rejects.toThrow(
          /hash tag/,
        );
      } finally {
        await fx.cleanup!();
      }
    });

    it('refuses it in every process: a store that never saw the first queue checks the store-wide record', async () => {
      const fx = await storeFixture(cluster.admin, {
        connection: { cluster: { nodes: cluster.startupNodes } },
      });
      // Another process: its own connections, the same prefix.
      const other = await RedisStore.connect({
        connection: { cluster: { nodes: cluster.startupNodes } },
        prefix: fx.prefix,
      });
      try {
        const limit = { key: 'provider', allowed: 5, periodMs: 1000 };
        await firstValueFrom(fx.store.reserve('left', 1, { leaseMs: 1000, limit }));
        await expect(firstValueFrom(other.reserve('right', 1, { leaseMs: 1000, limit }))).rejects.toThrow(
          /another process/,
        );
        await expect(firstValueFrom(other.pauseLimit('right', limit, 100))).rejects.toThrow(/hash tag/);
        // The queue of the recorded tag is fine in the other process too.
        await expect(
          firstValueFrom(other.reserve('left', 1, { leaseMs: 1000, limit })),
        ).resolves.toBeDefined();
      } finally {
        await other.close();
        await fx.cleanup!();
      }
    });
  });
});

/** The node id owning `slot`, from CLUSTER SHARDS. */

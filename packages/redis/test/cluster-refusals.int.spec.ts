import { firstValueFrom } from 'rxjs';
import type { Redis } from 'ioredis';
import { StoreError } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { isClusterRefusal, retryClusterRefusals } from '../src/scripts';
import { sleep, storeFixture, useRedisClusterWithAdmin } from './helpers';

describe('calls a Redis Cluster refuses without running them', () => {
  it('are told apart from every other failure', () => {
    for (const message of [
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      'MOVED 3999 127.0.0.1:6381',
      'ASK 3999 127.0.0.1:6381',
      'Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot',
      'Too many Cluster redirections. Last error: Error: CLUSTERDOWN The cluster is down',
    ]) {
      expect([message, isClusterRefusal(new Error(message))]).toEqual([message, true]);
    }
    for (const message of [
      // Maybe ran: the connection closed with the call in flight.
      'Connection is closed.',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      // Ran, and stopped half-way.
      'ERR Script attempted to access a non local key in a cluster node script: 1b2c',
      'Command timed out',
    ]) {
      expect([message, isClusterRefusal(new Error(message))]).toEqual([message, false]);
    }
  });

  it('are tried again for a bounded time, other failures at once', async () => {
    let n = 0;
    const refusedTwice = (): Promise<string> =>
      ++n <= 2 ? Promise.reject(new Error('TRYAGAIN Multiple keys request')) : Promise.resolve('ran');
    await expect(retryClusterRefusals(refusedTwice, 5_000)).resolves.toBe('ran');
    expect(n).toBe(3);

    n = 0;
    const closed = (): Promise<string> => {
      n++;
      return Promise.reject(new Error('Connection is closed.'));
    };
    await expect(retryClusterRefusals(closed, 5_000)).rejects.toThrow('Connection is closed.');
    expect(n).toBe(1);

    n = 0;
    const always = (): Promise<string> => {
      n++;
      return Promise.reject(new Error('CLUSTERDOWN The cluster is down'));
    };
    const started = Date.now();
    await expect(retryClusterRefusals(always, 300)).rejects.toThrow('CLUSTERDOWN');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(n).toBeGreaterThan(1);
  });
});

/**
 * While a queue's slot moves to another master, a script whose keys are split between the two is
 * refused with `TRYAGAIN` (it does not run); ioredis gives up after its redirections (about 1.6 s).
 * The store tries such calls again until the move completes (`clusterRetryMs`).
 */
describe('RedisStore on a 3-master Redis Cluster while a queue’s slot moves', () => {
  const cluster = useRedisClusterWithAdmin();

  /** Starts moving the slot of `key` to another master; returns how to move keys and how to finish. */
  async function startMove(key: string) {
    const admin = cluster.admin;
    const slot = await admin.cluster('KEYSLOT', key);
    const masters = admin.nodes('master');
    const idOf = async (node: Redis): Promise<string> => node.cluster('MYID');
    const ownerKey = admin.slots[slot]![0]!;
    const source = masters.find((m) => `${m.options.host}:${m.options.port}` === ownerKey)!;
    const target = masters.find((m) => m !== source)!;
    const [sourceId, targetId] = [await idOf(source), await idOf(target)];
    await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
    await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
    const moveKeys = async (keys: string[]): Promise<void> => {
      if (keys.length === 0) return;
      await source.migrate(target.options.host!, target.options.port!, '', 0, 5000, 'KEYS', ...keys);
    };
    return {
      moveKeys,
      /** Moves the keys left and gives the slot to the target (again: harmless). */
      finish: async (): Promise<void> => {
        for (;;) {
          const keys = await source.cluster('GETKEYSINSLOT', slot, 100);
          if (keys.length === 0) break;
          await moveKeys(keys);
        }
        for (const m of masters) await m.cluster('SETSLOT', slot, 'NODE', targetId);
      },
      tryAgains: async (): Promise<number> => {
        const info = await source.info('errorstats');
        return Number(/^errorstat_TRYAGAIN:count=(\d+)/m.exec(info)?.[1] ?? 0);
      },
    };
  }

  it('a call refused while the keys are split runs once the move completes; with clusterRetryMs 0 it fails', async () => {
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(cluster.admin, { connection }, 'cluster-move');
    const impatient = await RedisStore.connect({ connection, prefix: fx.prefix, clusterRetryMs: 0 });
    let move: Awaited<ReturnType<typeof startMove>> | undefined;
    try {
      const queue = 'moving';
      await firstValueFrom(fx.store.enqueue([1, 2, 3].map((n) => ({ queue, data: n }))));
      const keys = fx.store.keys.queue(queue);
      move = await startMove(keys.settings);
      const before = await move.tryAgains();
      // One of the keys a reserve is given goes ahead: its keys are now split between two masters.
      await move.moveKeys([keys.counters]);

      const impatientReserve = firstValueFrom(impatient.reserve(queue, 3, { leaseMs: 30_000 }));
      const reserve = firstValueFrom(fx.store.reserve(queue, 3, { leaseMs: 30_000 }));
      reserve.catch(() => undefined); // awaited below; a failure before then is the test's own
      // Past ioredis' own redirections (16 × 100 ms).
      await expect(impatientReserve).rejects.toThrow(StoreError);
      await expect(impatientReserve).rejects.toThrow(/Too many Cluster redirections/);
      await sleep(500);
      expect(await move.tryAgains()).toBeGreaterThan(before);
      await move.finish();

      const reserved = await reserve;
      expect(reserved.jobs.map((j) => j.data).sort()).toEqual([1, 2, 3]);
      // Nothing ran twice, nothing got lost: the three jobs are leased once, on the new master.
      const stats = await fx.store.stats(queue);
      expect(stats.counts.running).toBe(3);
      expect(stats.counts.ready).toBe(0);
    } finally {
      // A failed run leaves the slot half moved: finish it, so the keys can be deleted.
      await move?.finish().catch(() => undefined);
      await impatient.close();
      await fx.cleanup!();
    }
  }, 30_000);
});

import { firstValueFrom } from 'rxjs';
import { maxInAnyWindow, PartitionedStore, partitionName } from '@sluice/core';
import { definePartitionContract } from '@sluice/testing';
import { ownerOf, storeFixture, useRedisClusterWithAdmin } from './helpers';
import { killAllWorkers, runUntilCompleted, shareOfLimit, WorkerProcess } from './worker-process';

/**
 * Partitioned queues on a 3-master Redis Cluster: one queue's partitions on every master, the
 * partition contract, and four worker processes (two with clocks off by seconds) consuming a
 * partitioned queue under one rate limit.
 */
describe('partitioned queues on a 3-master Redis Cluster', () => {
  const cluster = useRedisClusterWithAdmin();
  const connection = () => ({ cluster: { nodes: cluster.startupNodes } });
  afterEach(async () => {
    await killAllWorkers();
  });

  definePartitionContract('RedisStore (Cluster)', () =>
    storeFixture(cluster.admin, { connection: connection() }, 'cluster-partitions'),
  );

  it('puts n partitions evenly on the masters whatever the queue name', async () => {
    const fx = await storeFixture(cluster.admin, { connection: connection() }, 'partition-spread');
    try {
      const shards = (await cluster.admin.cluster('SHARDS')) as unknown[];
      const masters = async (queue: string, count: number): Promise<Map<string, number>> => {
        const owners = new Map<string, number>();
        for (let i = 0; i < count; i++) {
          const keys = fx.store.keys.queue(partitionName(queue, i, count));
          const slots = new Set(
            await Promise.all(
              [keys.settings, keys.counters, keys.active, keys.jobPrefix + '1'].map((k) =>
                cluster.admin.cluster('KEYSLOT', k),
              ),
            ),
          );
          expect(slots.size).toBe(1);
          const owner = ownerOf(shards, [...slots][0]!);
          owners.set(owner, (owners.get(owner) ?? 0) + 1);
        }
        return owners;
      };
      for (const queue of ['emails', 'a', 'inspection-api', 'x.y:z']) {
        expect([...(await masters(queue, 3)).values()]).toEqual([1, 1, 1]);
        expect([...(await masters(queue, 6)).values()]).toEqual([2, 2, 2]);
      }
      // And the jobs land there: 30 jobs, 10 on each master's partition.
      const store = new PartitionedStore(fx.store, { partitions: { emails: 3 } });
      await firstValueFrom(
        store.enqueue(Array.from({ length: 30 }, (_, n) => ({ queue: 'emails', data: n }))),
      );
      const ready = await Promise.all(
        store.partitionNames('emails').map(async (p) => (await fx.store.stats(p)).counts.ready),
      );
      expect(ready).toEqual([10, 10, 10]);
    } finally {
      await fx.cleanup!();
    }
  });

  it('four worker processes consume a partitioned queue once each, within one rate limit by handler start', async () => {
    const fx = await storeFixture(cluster.admin, { connection: connection() }, 'partition-workers');
    const jobs = 2400;
    const offsets = [0, 0, 7_000, -5_000];
    const queue = 'spread';
    try {
      const common = {
        url: '',
        cluster: cluster.startupNodes,
        prefix: fx.prefix,
        queue,
        partitions: 3,
        concurrency: 50,
        workMs: 5,
        rateLimit: { allowed: 400, periodMs: 1000 },
      };
      const workers = await Promise.all(
        offsets.map((clockOffsetMs, i) => WorkerProcess.start(`w${i}`, { ...common, clockOffsetMs })),
      );
      if (process.env.CI) expect(workers[2]!.skewedBy).toBe('libfaketime');
      const store = new PartitionedStore(fx.store, { partitions: { [queue]: 3 } });
      await firstValueFrom(store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue, data: { n } }))));
      await runUntilCompleted(workers, jobs);

      const outcomes = workers.flatMap((w) => w.outcomes);
      const handedBack = outcomes.filter((o) => o.kind === 'snoozed').length;
      expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(jobs);
      expect(outcomes).toHaveLength(jobs + handedBack);
      const starts = workers.flatMap((w, i) => w.starts.map((s) => s.at - offsets[i]!));
      expect(new Set(workers.flatMap((w) => w.starts.map((s) => s.id))).size).toBe(jobs);
      const worst = maxInAnyWindow(starts, 1000);
      const share = shareOfLimit(starts, 400, 1000);
      const perPartition = await Promise.all(
        store.partitionNames(queue).map(async (p) => (await fx.store.stats(p)).totals.completed),
      );
      console.log(
        `partitioned queue (3 partitions, one per master), 4 workers: ${jobs} jobs, at most ${worst} handler starts ` +
          `in any 1000 ms (${(share * 100).toFixed(1)}% of 400/s); completed per partition ${perPartition.join('/')}; ` +
          `per worker ${workers.map((w) => `${w.name}=${w.starts.length}`).join(' ')}; handed back ${handedBack}`,
      );
      expect(worst).toBeLessThanOrEqual(400);
      expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThanOrEqual(5000); // 2400 at 400/s
      for (const w of workers) expect(w.starts.length).toBeGreaterThan(0);
      expect(perPartition).toEqual([800, 800, 800]);
      expect((await store.stats(queue)).totals).toMatchObject({ enqueued: jobs, completed: jobs, failed: 0 });
      expect(await store.rateLimitUsage(queue, queue, 1000)).toBeLessThanOrEqual(400);
    } finally {
      await fx.cleanup!();
    }
  }, 150_000);
});

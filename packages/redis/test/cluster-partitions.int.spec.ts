import { firstValueFrom } from 'rxjs';
import { maxInAnyWindow, PartitionedStore, partitionName } from '@sluice/core';
import { definePartitionContract } from '@sluice/testing';
import { ownerOf, sleep, storeFixture, useRedisClusterWithAdmin } from './helpers';
import {
  killAllWorkers,
  runUntilCompleted,
  shareOfLimit,
  startsOnceEach,
  WorkerProcess,
} from './worker-process';

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
        // Each handler says its work left as it starts (`ctx.limit.sent()`), as a handler calling a
        // provider does: a start the operating system delayed past the margin (between the gate's
        // check and the handler's first line; at the full rate every window here holds exactly 400)
        // is moved in the log before the slots a window later are granted.
        sentAtStart: true,
      };
      const workers = await Promise.all(
        offsets.map((clockOffsetMs, i) => WorkerProcess.start(`w${i}`, { ...common, clockOffsetMs })),
      );
      if (process.env.CI) expect(workers[2]!.skewedBy).toBe('libfaketime');
      const store = new PartitionedStore(fx.store, { partitions: { [queue]: 3 } });
      await firstValueFrom(store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue, data: { n } }))));
      await runUntilCompleted(workers, jobs);

      // Handler starts, each worker's clock taken back to true.
      const { starts, handedBack } = startsOnceEach(workers, jobs, offsets);
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
  it('caps the jobs running at once across four worker processes and three partitions, a killed worker’s share coming back', async () => {
    const fx = await storeFixture(cluster.admin, { connection: connection() }, 'partition-cap');
    const jobs = 400;
    const cap = 6;
    const queue = 'capped';
    try {
      const common = {
        url: '',
        cluster: cluster.startupNodes,
        prefix: fx.prefix,
        queue,
        partitions: 3,
        concurrency: 10,
        globalConcurrency: cap,
        leaseMs: 1_500,
        workMs: 10,
        reportEnds: true,
      };
      const victim = await WorkerProcess.start('victim', { ...common, workMs: 5_000 });
      const workers = await Promise.all(['w1', 'w2', 'w3'].map((name) => WorkerProcess.start(name, common)));
      const store = new PartitionedStore(fx.store, { partitions: { [queue]: 3 } });
      const added = await firstValueFrom(
        store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue, data: { n } }))),
      );
      await victim.until(() => victim.starts.length >= 1, 15_000, 'a start');
      await victim.kill();
      const deadline = Date.now() + 60_000;
      for (;;) {
        const stats = await store.stats(queue);
        if (stats.totals.completed === jobs && stats.counts.running === 0) break;
        if (Date.now() > deadline) throw new Error(`not all jobs completed: ${JSON.stringify(stats)}`);
        await sleep(100);
      }
      await Promise.all(workers.map((w) => w.close()));
      // Every handler run, on the machine's wall clock, from its start to its end (or its process's death).
      const all = [victim, ...workers];
      const edges = all.flatMap((w) =>
        w.starts.map((s) => {
          const end = w.ends.find((e) => e.id === s.id && e.attempt === s.attempt)?.at ?? w.killedAt;
          return [s.at, end ?? Infinity] as const;
        }),
      );
      const events = edges.flatMap(([start, end]) => [
        [start, 1],
        [end, -1],
      ]);
      // Ends before starts at the same millisecond: a run ending frees its permit before the next starts.
      events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
      let running = 0;
      let most = 0;
      for (const [, step] of events) most = Math.max(most, (running += step!));
      const records = await Promise.all(added.map((a) => store.getJob(queue, a.id)));
      console.log(
        `global concurrency ${cap} over 3 partitions, 4 workers of concurrency 10 (one killed while running ` +
          `${victim.starts.length}): at most ${most} handlers running at once; ${edges.length} runs for ${jobs} jobs`,
      );
      expect(records.every((r) => r?.state === 'completed')).toBe(true);
      expect(most).toBeLessThanOrEqual(cap);
      expect(most).toBeGreaterThan(1);
      expect(victim.starts.length).toBeLessThanOrEqual(cap);
      expect(victim.starts.length).toBeGreaterThan(0);
    } finally {
      await fx.cleanup!();
    }
  }, 120_000);
});

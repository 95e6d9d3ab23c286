import { firstValueFrom } from 'rxjs';
import {
  InvalidArgumentError,
  maxInAnyWindow,
  OutcomeKind,
  PartitionedStore,
  partitionName,
  type NewJob,
  type ReservedJob,
  type ReserveResult,
  type Store,
} from '@sluice/core';
import type { StoreFixture } from './store-contract';

const Q = 'parts';
const N = 3;

/**
 * What a partitioned queue (`PartitionedStore` over a store) must do on every store underneath:
 * placement, demand, rotation without starvation, leases routed to their partition, lookups across
 * partitions, administration summed over them, and a rate limit exact across them (units granted on
 * the queue's own slot, unused units given back). `createStore` returns a fresh, empty store.
 */
export function definePartitionContract(
  name: string,
  createStore: () => StoreFixture | Promise<StoreFixture>,
): void {
  describe(`Partitioned queue contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: PartitionedStore;
    let inner: Store;
    const parts = Array.from({ length: N }, (_, i) => partitionName(Q, i, N));

    beforeEach(async () => {
      fx = await createStore();
      inner = fx.store;
      store = new PartitionedStore(inner, { partitions: { [Q]: N } });
    });
    afterEach(async () => {
      if (fx.cleanup) await fx.cleanup();
      else await inner.close();
    });

    const add = (jobs: Omit<NewJob, 'queue'>[]) =>
      firstValueFrom(store.enqueue(jobs.map((j) => ({ ...j, queue: Q }))));
    const reserve = (n: number, extra: Partial<Parameters<Store['reserve']>[2]> = {}) =>
      firstValueFrom(store.reserve(Q, n, { leaseMs: 10_000, ...extra }));
    const complete = (jobs: readonly ReservedJob[], on: Store = store) =>
      firstValueFrom(
        on.settle(
          jobs.map((job) => ({
            queue: job.queue,
            id: job.id,
            token: job.lease.token,
            kind: OutcomeKind.Completed,
            result: null,
            durationMs: 1,
          })),
        ),
      );
    const readyIn = async (partition: string) => (await inner.stats(partition)).counts.ready;

    it('spreads jobs without a key evenly, and keeps a group, a unique key and an id on one partition', async () => {
      const plain = await add(Array.from({ length: 30 }, (_, i) => ({ data: i })));
      expect(new Set(plain.map((r) => r.id)).size).toBe(30);
      expect(await Promise.all(parts.map(readyIn))).toEqual([10, 10, 10]);

      await add(Array.from({ length: 6 }, (_, i) => ({ data: i, group: 'tenant-a' })));
      const grouped = await Promise.all(parts.map(readyIn));
      expect(grouped.filter((c) => c === 16)).toHaveLength(1);

      const first = await add([{ data: 'x', id: 'order-1' }]);
      const again = await add([{ data: 'x', id: 'order-1' }]);
      expect(first[0]).toMatchObject({ id: 'order-1', duplicate: false });
      expect(again[0]).toMatchObject({ id: 'order-1', duplicate: true });
      const stats = await store.stats(Q);
      expect(stats.queue).toBe(Q);
      expect(stats.counts.ready).toBe(37);
      expect(stats.totals.enqueued).toBe(37);
      expect(await store.queues()).toEqual([Q]);
    });

    it('reserves at most the demand, each job once, starting at the next partition each time', async () => {
      // One partition with a long backlog, the others with a few jobs each: none starves.
      await add(Array.from({ length: 40 }, (_, i) => ({ data: i, group: 'big' })));
      const small = await add(Array.from({ length: 4 }, (_, i) => ({ data: `s${i}`, id: `small-${i}` })));
      const seen = new Set<string>();
      let reserves = 0;
      while (small.some((r) => !seen.has(r.id))) {
        const r = await reserve(2);
        reserves++;
        expect(r.jobs.length).toBeLessThanOrEqual(2);
        for (const job of r.jobs) {
          expect(job.queue).toBe(Q);
          expect(seen.has(job.id)).toBe(false);
          seen.add(job.id);
        }
        await complete(r.jobs);
        expect(reserves).toBeLessThanOrEqual(4 * N);
      }
      let r: ReserveResult;
      while ((r = await reserve(7)).jobs.length > 0) {
        for (const job of r.jobs) seen.add(job.id);
        await complete(r.jobs);
      }
      expect(seen.size).toBe(44);
      const stats = await store.stats(Q);
      expect(stats.totals.completed).toBe(44);
      expect(stats.counts.running).toBe(0);
    });

    it('routes settles, lease extensions and progress to the partition of the lease', async () => {
      await add(Array.from({ length: 6 }, (_, i) => ({ data: i })));
      const { jobs } = await reserve(6);
      expect(new Set(jobs.map((j) => j.lease.token.split('~')[0])).size).toBe(N);
      const extended = await firstValueFrom(
        store.extendLeases(
          Q,
          [...jobs.map((j) => ({ id: j.id, token: j.lease.token })), { id: 'nope', token: 'garbage' }],
          20_000,
        ),
      );
      expect([...extended.extended].sort()).toEqual(jobs.map((j) => j.id).sort());
      expect(extended.lost).toEqual(['nope']);
      const job = jobs[0] as ReservedJob;
      if (store.inner.updateJob) {
        expect(await store.updateJob(Q, { id: job.id, token: job.lease.token }, { progress: 50 })).toBe(true);
        expect((await store.getJob(Q, job.id))?.progress).toBe(50);
      }
      const results = await complete(jobs);
      expect(results.every((r) => r.applied)).toBe(true);
      const stale = await complete(jobs.slice(0, 1));
      expect(stale[0]).toMatchObject({ applied: false });
      expect((await store.stats(Q)).totals.completed).toBe(6);
    });

    it('finds a job by id in any partition (cancel, get, promote, remove) and names the queue', async () => {
      const [placed] = await add([{ data: 1, id: 'by-group', group: 'g7' }]);
      const later = (await add([{ data: 2, delayMs: 60_000 }]))[0]?.id ?? '';
      const other = (await add([{ data: 3 }]))[0]?.id ?? '';
      expect(placed?.id).toBe('by-group');
      const record = await store.getJob(Q, 'by-group');
      expect(record).toMatchObject({ queue: Q, id: 'by-group', state: 'ready', group: 'g7' });
      expect(await store.promoteJob(Q, later)).toBe(true);
      expect((await store.getJob(Q, later))?.state).toBe('ready');
      expect(await store.cancel(Q, 'by-group')).toBe('cancelled');
      expect(await store.cancel(Q, 'missing')).toBe('not-found');
      expect(await store.removeJob(Q, other)).toBe(true);
      expect(await store.getJob(Q, other)).toBeUndefined();
      const cancelled = await store.listJobs(Q, 'cancelled');
      expect(cancelled.map((r) => [r.id, r.queue])).toEqual([['by-group', Q]]);
      const ready = await store.listJobs(Q, 'ready');
      expect(ready.map((r) => r.id)).toEqual([later]);
    });

    it('pauses and resumes every partition, and applies a configuration to all', async () => {
      await add([{ data: 1 }, { data: 2 }, { data: 3 }]);
      await store.pause(Q);
      expect((await store.stats(Q)).paused).toBe(true);
      const paused = await reserve(3);
      expect(paused).toMatchObject({ paused: true, jobs: [] });
      await store.resume(Q);
      expect((await reserve(3)).jobs).toHaveLength(3);
      await store.setQueueConfig(Q, { schema: { type: 'number' } });
      for (const p of parts) expect((await inner.getQueueConfig(p)).schema).toEqual({ type: 'number' });
      expect((await store.getQueueConfig(Q)).schema).toEqual({ type: 'number' });
    });

    it('keeps a rate limit exact across partitions and gives back units no job took', async () => {
      const limit = { key: 'parts-limit', allowed: 10, periodMs: 1_000 };
      await add(Array.from({ length: 4 }, (_, i) => ({ data: i })));
      // Asked for 8 with 4 jobs in all: the 4 units no job took go back to the log.
      const first = await reserve(8, { limit });
      expect(first.jobs).toHaveLength(4);
      expect(first.slots?.reduce((s, x) => s + x.jobs, 0)).toBe(4);
      expect(await store.rateLimitUsage(Q, limit.key, limit.periodMs)).toBe(4);
      await complete(first.jobs);

      await add(Array.from({ length: 30 }, (_, i) => ({ data: i })));
      const at: number[] = [];
      let limited: number | undefined;
      for (let i = 0; i < 6; i++) {
        const r = await reserve(3, { limit });
        for (const s of r.slots ?? []) for (let j = 0; j < s.jobs; j++) at.push(s.at);
        expect(r.jobs.length).toBe((r.slots ?? []).reduce((s, x) => s + x.jobs, 0));
        if (r.retryAfterMs !== undefined) limited = r.retryAfterMs;
        await complete(r.jobs);
      }
      // 4 units spent before, 6 left in the window: the limit, not the partitions, stopped it.
      expect(at).toHaveLength(6);
      expect(limited).toBeGreaterThan(0);
      expect(maxInAnyWindow([...at, ...slotTimes(first)], limit.periodMs)).toBeLessThanOrEqual(10);
      expect(await store.rateLimitUsage(Q, limit.key, limit.periodMs)).toBe(10);
    });

    it('counts calls of several jobs across partitions', async () => {
      const limit = {
        key: 'parts-calls',
        allowed: 2,
        periodMs: 60_000,
        per: 'call' as const,
        jobsPerCall: 5,
      };
      await add(Array.from({ length: 30 }, (_, i) => ({ data: i })));
      const r = await reserve(30, { limit });
      expect(r.jobs).toHaveLength(10);
      expect(r.retryAfterMs).toBeGreaterThan(0);
      expect((await reserve(30, { limit })).jobs).toHaveLength(0);
    });

    it('caps the jobs running at once across partitions, the permits coming back with settles and expiries', async () => {
      await add(Array.from({ length: 12 }, (_, i) => ({ data: i })));
      const first = await reserve(5, { maxActive: 3, leaseMs: 1_000 });
      expect(first.jobs).toHaveLength(3);
      expect(first.nextCheckInMs).toBeGreaterThan(0);
      const held = await reserve(5, { maxActive: 3, leaseMs: 1_000 });
      expect(held.jobs).toHaveLength(0);
      expect(held.nextCheckInMs).toBeGreaterThan(0);
      // A settle gives its permit back: one more may run.
      await complete(first.jobs.slice(0, 1));
      const second = await reserve(5, { maxActive: 3, leaseMs: 1_000 });
      expect(second.jobs).toHaveLength(1);
      // Extending keeps the permits; a permit whose lease ran out comes back (the job is recovered).
      // The first call's jobs are extended, the second's not (a store may lease a call's jobs together).
      const running = [...first.jobs.slice(1), ...second.jobs];
      const extended = await firstValueFrom(
        store.extendLeases(
          Q,
          running.slice(0, 2).map((j) => ({ id: j.id, token: j.lease.token })),
          5_000,
        ),
      );
      expect([...extended.extended].sort()).toEqual([running[0]?.id, running[1]?.id].sort());
      await (fx.advance ?? ((ms: number) => new Promise((r) => setTimeout(r, ms))))(1_100);
      const recovered = await firstValueFrom(store.recoverExpired(Q));
      expect(recovered.recovered).toEqual([running[2]?.id]);
      const third = await reserve(5, { maxActive: 3, leaseMs: 1_000 });
      expect(third.jobs).toHaveLength(1);
      // The expired job's own lease is lost: its late settle changes nothing.
      const late = await complete(running.slice(2));
      expect(late.every((r) => !r.applied)).toBe(true);
      expect((await reserve(5, { maxActive: 3, leaseMs: 1_000 })).jobs).toHaveLength(0);
      await complete([...third.jobs, ...running.slice(0, 2)]);
      expect((await reserve(5, { maxActive: 3, leaseMs: 1_000 })).jobs).toHaveLength(3);
    });

    it('reports a lease whose permit expired as lost when extended, so its job cannot outrun the cap', async () => {
      await add([{ data: 1 }]);
      const job = (await reserve(1, { maxActive: 1, leaseMs: 1_000 })).jobs[0] as ReservedJob;
      expect(job).toBeDefined();
      await (fx.advance ?? ((ms: number) => new Promise((r) => setTimeout(r, ms))))(1_100);
      // Another reserve drops the expired permit (and may take its place).
      await reserve(1, { maxActive: 1, leaseMs: 1_000 });
      const extended = await firstValueFrom(
        store.extendLeases(Q, [{ id: job.id, token: job.lease.token }], 5_000),
      );
      expect(extended).toEqual({ extended: [], lost: [job.id] });
    });

    it('takes no more than the cap and the limit allow together', async () => {
      await add(Array.from({ length: 10 }, (_, i) => ({ data: i })));
      const limit = { key: 'parts-both', allowed: 2, periodMs: 60_000 };
      const r = await reserve(10, { maxActive: 5, limit });
      expect(r.jobs).toHaveLength(2);
      expect(r.retryAfterMs).toBeGreaterThan(0);
      // The 3 permits the limit left unused went back: 3 more may run once the limit allows.
      await complete(r.jobs);
      const next = await reserve(10, { maxActive: 5 });
      expect(next.jobs).toHaveLength(5);
    });

    it('runs two partition counts side by side while the count changes, under one rate limit', async () => {
      // The README's procedure: workers of the new count beside those of the old one, producers
      // switched to the new count, the old partitions drained.
      const wider = new PartitionedStore(inner, { partitions: { [Q]: N + 2 } });
      const limit = { key: 'parts-change', allowed: 12, periodMs: 60_000 };
      await add(Array.from({ length: 9 }, (_, i) => ({ data: `old-${i}` })));
      await firstValueFrom(
        wider.enqueue(Array.from({ length: 10 }, (_, i) => ({ queue: Q, data: `new-${i}` }))),
      );
      const seen: unknown[] = [];
      const at: number[] = [];
      for (let round = 0; round < 10; round++) {
        for (const s of [store, wider]) {
          const r = await firstValueFrom(s.reserve(Q, 2, { leaseMs: 10_000, limit }));
          seen.push(...r.jobs.map((j) => j.data));
          at.push(...slotTimes(r));
          await complete(r.jobs, s);
        }
      }
      // 12 allowed in the window, counted once for both counts; the rest waits for the limit.
      expect(seen).toHaveLength(12);
      expect(new Set(seen).size).toBe(12);
      expect(at).toHaveLength(12);
      expect(await store.rateLimitUsage(Q, limit.key, limit.periodMs)).toBe(12);
      const left = (await store.stats(Q)).counts.ready + (await wider.stats(Q)).counts.ready;
      expect(left).toBe(19 - 12);
      // Each count's stats cover its own partitions; the store underneath lists both sets.
      expect((await store.stats(Q)).totals.enqueued).toBe(9);
      expect((await wider.stats(Q)).totals.enqueued).toBe(10);
      expect((await inner.queues()).filter((q) => q.startsWith(`${Q}~`))).toHaveLength(N + N + 2);
    });

    it('refuses what it cannot keep exact across partitions, naming the queue', async () => {
      await expect(add([{ data: 1, cost: 3 }])).rejects.toThrow(InvalidArgumentError);
      await expect(
        reserve(1, {
          limit: { allowed: 5, periodMs: 1000 },
          groups: { rateLimit: { allowed: 1, periodMs: 1000 } },
        }),
      ).rejects.toThrow(/group rate limits/);
      expect(() => new PartitionedStore(inner, { partitions: { [Q]: 0 } })).toThrow(/1 to 1024/);
      await expect(
        firstValueFrom(
          (inner.grantLimit?.bind(inner) ?? noCapability)(Q, { allowed: 5, periodMs: 1000 }, -1),
        ),
      ).rejects.toThrow(/units ≥ 0/);
      await expect(
        firstValueFrom((inner.acquirePermits?.bind(inner) ?? noCapability)(Q, -1, 1, 1000)),
      ).rejects.toThrow(/permits need/);
    });

    it('tells the outcome events of every partition under the queue name', async () => {
      const events: string[] = [];
      const sub = store.events(Q).subscribe((e) => events.push(`${e.queue}:${e.id}:${e.kind}`));
      try {
        await new Promise((resolve) => setTimeout(resolve, 100));
        await add(Array.from({ length: 3 }, (_, i) => ({ data: i, id: `e${i}` })));
        await complete((await reserve(3)).jobs);
        const deadline = Date.now() + 5_000;
        while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(events.sort()).toEqual([`${Q}:e0:completed`, `${Q}:e1:completed`, `${Q}:e2:completed`]);
      } finally {
        sub.unsubscribe();
      }
    });
  });
}

function slotTimes(r: ReserveResult): number[] {
  return (r.slots ?? []).flatMap((s) => Array.from({ length: s.jobs }, () => s.at));
}

/** Stands in for a capability the store underneath lacks: the call fails. */
function noCapability(): never {
  throw new Error('the store underneath lacks this capability');
}

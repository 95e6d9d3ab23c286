import { firstValueFrom } from 'rxjs';
import { Registry } from 'prom-client';
import { MemoryStore, Queue, type Store } from '@sluice/core';
import { createMetrics, METRIC_NAMES } from '@sluice/dashboard';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { parsePrometheusText, sampleValue, type MetricFamily } from './prometheus-text';

const redis = useRedis();

const stores: readonly [string, () => Promise<{ store: Store; cleanup: () => Promise<void> }>][] = [
  [
    'RedisStore',
    async () => {
      const store = await RedisStore.connect({ url: redis.url, prefix: uniquePrefix('metrics-groups') });
      return {
        store,
        cleanup: async () => {
          await deleteKeysWithPrefix(store.client, store.keys.prefix);
          await store.close();
        },
      };
    },
  ],
  [
    'MemoryStore',
    () => {
      const store = new MemoryStore();
      return Promise.resolve({ store, cleanup: () => store.close() });
    },
  ],
];

/** `g-00` … : group `g-i` gets `i + 1` jobs, so every group has its own load. */
async function addGroups(queue: Queue, from: number, to: number): Promise<void> {
  const jobs = [];
  for (let i = from; i < to; i++) {
    for (let n = 0; n <= i; n++)
      jobs.push({ data: { n }, options: { group: `g-${String(i).padStart(2, '0')}` } });
  }
  await queue.addBulk(jobs);
}

const sum = (from: number, to: number): number => {
  let total = 0;
  for (let i = from; i < to; i++) total += i + 1;
  return total;
};

describe.each(stores)('/metrics: group gauges with bounded cardinality (%s)', (_kind, open) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let queue: Queue;

  beforeAll(async () => {
    ({ store, cleanup } = await open());
    queue = new Queue(store, 'hooks');
    await new Queue(store, 'plain').add({ ungrouped: true });
  });

  afterAll(async () => {
    await cleanup();
  });

  const scrape = async (options: { topGroups?: number; groupScanLimit?: number }) => {
    const metrics = createMetrics({ store, registry: new Registry(), cacheMs: 0, ...options });
    try {
      return parsePrometheusText(await metrics.metrics());
    } finally {
      metrics.close();
    }
  };
  const series = (families: Map<string, MetricFamily>, name: string, queueName = 'hooks') =>
    (families.get(name)?.samples ?? []).filter((s) => s.labels['queue'] === queueName);

  it('names only the topGroups busiest groups of a queue, and sums the rest', async () => {
    await addGroups(queue, 0, 30);
    await store.pauseGroup!('hooks', 'g-03');
    await store.pauseGroup!('hooks', 'g-28');

    const families = await scrape({ topGroups: 5 });
    expect(families.get(METRIC_NAMES.groupJobs)?.type).toBe('gauge');
    const named = series(families, METRIC_NAMES.groupJobs);
    expect(named).toHaveLength(10); // 5 groups × (ready, active)
    expect([...new Set(named.map((s) => s.labels['group']))]).toEqual([
      'g-29',
      'g-28',
      'g-27',
      'g-26',
      'g-25',
    ]);
    expect(
      sampleValue(families, METRIC_NAMES.groupJobs, { queue: 'hooks', group: 'g-29', state: 'ready' }),
    ).toBe(30);
    expect(
      sampleValue(families, METRIC_NAMES.groupJobs, { queue: 'hooks', group: 'g-25', state: 'active' }),
    ).toBe(0);
    expect(sampleValue(families, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'ready' })).toBe(
      sum(0, 25),
    );
    expect(sampleValue(families, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'active' })).toBe(0);
    expect(sampleValue(families, METRIC_NAMES.groups, { queue: 'hooks' })).toBe(30);
    expect(sampleValue(families, METRIC_NAMES.groupsPaused, { queue: 'hooks' })).toBe(2);
    expect(sampleValue(families, METRIC_NAMES.groupsScanComplete, { queue: 'hooks' })).toBe(1);
    // A queue without groups has no named group series.
    expect(series(families, METRIC_NAMES.groupJobs, 'plain')).toHaveLength(0);
    expect(sampleValue(families, METRIC_NAMES.groups, { queue: 'plain' })).toBe(0);
    expect(families.get(METRIC_NAMES.groupJobs)?.help).toMatch(/at most 5 groups per queue/);
  });

  it('keeps the same number of series as groups are added, and counts leased jobs as active', async () => {
    await addGroups(queue, 30, 60);
    const families = await scrape({ topGroups: 5 });
    expect(series(families, METRIC_NAMES.groupJobs)).toHaveLength(10);
    expect(series(families, METRIC_NAMES.otherGroupsJobs)).toHaveLength(2);
    expect(sampleValue(families, METRIC_NAMES.groups, { queue: 'hooks' })).toBe(60);
    expect(
      sampleValue(families, METRIC_NAMES.groupJobs, { queue: 'hooks', group: 'g-59', state: 'ready' }),
    ).toBe(60);
    expect(sampleValue(families, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'ready' })).toBe(
      sum(0, 55),
    );

    // Default: 20 named groups.
    const byDefault = await scrape({});
    expect(series(byDefault, METRIC_NAMES.groupJobs)).toHaveLength(40);
    expect(sampleValue(byDefault, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'ready' })).toBe(
      sum(0, 40),
    );
    // A leased job holds a slot of its group: one active job, named or summed.
    const reserved = await firstValueFrom(store.reserve('hooks', 1, { leaseMs: 60_000 }));
    expect(reserved.jobs).toHaveLength(1);
    const leased = await scrape({ topGroups: 5 });
    const active = [
      ...series(leased, METRIC_NAMES.groupJobs),
      ...series(leased, METRIC_NAMES.otherGroupsJobs),
    ].filter((s) => s.labels['state'] === 'active');
    expect(active.reduce((total, s) => total + s.value, 0)).toBe(1);
  });

  it('reads at most groupScanLimit groups and says so; topGroups 0 names none', async () => {
    const limited = await scrape({ topGroups: 3, groupScanLimit: 10 });
    expect(sampleValue(limited, METRIC_NAMES.groups, { queue: 'hooks' })).toBe(10);
    expect(sampleValue(limited, METRIC_NAMES.groupsScanComplete, { queue: 'hooks' })).toBe(0);
    expect(series(limited, METRIC_NAMES.groupJobs)).toHaveLength(6);
    // The first 10 by name (g-00 … g-09), the busiest of them named.
    expect([...new Set(series(limited, METRIC_NAMES.groupJobs).map((s) => s.labels['group']))]).toEqual([
      'g-09',
      'g-08',
      'g-07',
    ]);

    const none = await scrape({ topGroups: 0 });
    expect(series(none, METRIC_NAMES.groupJobs)).toHaveLength(0);
    // Every job of every group, one of them leased (the test before).
    expect(sampleValue(none, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'ready' })).toBe(
      sum(0, 60) - 1,
    );
    expect(sampleValue(none, METRIC_NAMES.otherGroupsJobs, { queue: 'hooks', state: 'active' })).toBe(1);

    expect(() => createMetrics({ store, topGroups: -1 })).toThrow(/topGroups/);
    expect(() => createMetrics({ store, groupScanLimit: 0 })).toThrow(/groupScanLimit/);
  });
});

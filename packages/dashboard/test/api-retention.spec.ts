import { firstValueFrom } from 'rxjs';
import {
  DEFAULT_DEAD_RETENTION,
  DEFAULT_RETENTION,
  definePipeline,
  fixed,
  MemoryStore,
  Queue,
  silentLogger,
  Worker,
  type Store,
} from '@sluice/core';
import { startDashboardServer, type DashboardServer, type QueueDetailView } from '@sluice/dashboard';
import { ApiClient, waitFor } from './support';

/** The store with `updateQueueConfig` hidden, as a custom store without it would be. */
function withoutUpdateQueueConfig(store: Store): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'updateQueueConfig') return undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('dashboard API: retention and what the counts count (MemoryStore, real Worker)', () => {
  const store = new MemoryStore();
  const worker = new Worker({
    store,
    logger: silentLogger,
    pipelines: [
      definePipeline<{ fail?: boolean }>({
        queue: 'orders',
        concurrency: 2,
        backoff: fixed(0),
        handler: (job) =>
          job.data.fail ? Promise.reject(new Error('card declined')) : Promise.resolve('ok'),
      }),
    ],
  });
  let server: DashboardServer;
  let api: ApiClient;
  const orders = new Queue<{ fail?: boolean }>(store, 'orders');

  beforeAll(async () => {
    worker.start();
    await orders.add({});
    await waitFor(async () => (await store.stats('orders')).counts.completed === 1, { what: 'a first job' });
    server = await startDashboardServer({ store, port: 0, logger: silentLogger });
    api = new ApiClient(server.url);
    await api.session();
  });

  afterAll(async () => {
    await worker.close({ timeoutMs: 2000 });
    await server.close();
    await store.close();
  });

  it('shows the defaults in force while the queue sets no retention', async () => {
    const { status, body } = await api.get<QueueDetailView>('api/queues/orders');
    expect(status).toBe(200);
    expect(body.retention).toEqual({
      finished: { retention: DEFAULT_RETENTION, isDefault: true },
      dead: { retention: DEFAULT_DEAD_RETENTION, isDefault: true },
      canSet: true,
    });
  });

  it('changes either retention with PUT, atomically in the store, and back to the default with null', async () => {
    const finished = { keep: 'count', count: 2, ageMs: 3_600_000 } as const;
    const first = await api.act<{ ok: boolean; retention: QueueDetailView['retention'] }>(
      'PUT',
      'api/queues/orders/retention',
      { finished },
    );
    expect(first.status).toBe(200);
    expect(first.body.retention.finished).toEqual({ retention: finished, isDefault: false });
    expect(await store.getQueueConfig('orders')).toEqual({ retention: finished });

    const dead = { keep: 'age', ageMs: 86_400_000 } as const;
    expect((await api.act('PUT', 'api/queues/orders/retention', { dead })).status).toBe(200);
    expect(await store.getQueueConfig('orders')).toEqual({ retention: finished, deadRetention: dead });
    const shown = (await api.get<QueueDetailView>('api/queues/orders')).body;
    expect(shown.retention.finished).toEqual({ retention: finished, isDefault: false });
    expect(shown.retention.dead).toEqual({ retention: dead, isDefault: false });

    expect(
      (await api.act('PUT', 'api/queues/orders/retention', { finished: null, dead: { keep: 'none' } }))
        .status,
    ).toBe(200);
    expect(await store.getQueueConfig('orders')).toEqual({ deadRetention: { keep: 'none' } });
    expect((await api.act('PUT', 'api/queues/orders/retention', { dead: null })).status).toBe(200);
    expect(await store.getQueueConfig('orders')).toEqual({});
  });

  it('refuses bad retentions with 400 and changes nothing', async () => {
    await store.updateQueueConfig('orders', { retention: { keep: 'all' } });
    for (const body of [
      {},
      { finished: { keep: 'count' } },
      { finished: { keep: 'count', count: -1 } },
      { finished: { keep: 'age', ageMs: 0 } },
      { dead: { keep: 'forever' } },
      { finished: { keep: 'all' }, other: 1 },
      { finished: { keep: 'none' }, dead: { keep: 'count', count: 1.5 } },
    ]) {
      const res = await api.act('PUT', 'api/queues/orders/retention', body);
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400]);
    }
    expect(await store.getQueueConfig('orders')).toEqual({ retention: { keep: 'all' } });
    expect((await api.act('PUT', 'api/queues/ghost/retention', { dead: null })).status).toBe(404);
  });

  it('needs the CSRF token, is refused read-only, and is 501 without store.updateQueueConfig', async () => {
    const res = await fetch(`${server.url}api/queues/orders/retention`, {
      method: 'PUT',
      headers: { ...api.headers(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ finished: { keep: 'none' } }),
    });
    expect(res.status).toBe(403);

    for (const [options, status, code] of [
      [{ readOnly: true }, 403, 'read_only'],
      [{ store: withoutUpdateQueueConfig(store) }, 501, 'not_supported'],
    ] as const) {
      const other = await startDashboardServer({ store, port: 0, logger: silentLogger, ...options });
      try {
        const client = new ApiClient(other.url);
        await client.session();
        const view = await client.get<QueueDetailView>('api/queues/orders');
        expect(view.body.retention.canSet).toBe(false);
        const reply = await client.act('PUT', 'api/queues/orders/retention', { finished: { keep: 'none' } });
        expect(reply.status).toBe(status);
        expect(reply.body.error.code).toBe(code);
      } finally {
        await other.close();
      }
    }
    expect(await store.getQueueConfig('orders')).toEqual({ retention: { keep: 'all' } });
  });

  it('reports kept records and totals since creation as store.stats does, failures split by kind', async () => {
    await api.act('PUT', 'api/queues/orders/retention', { finished: { keep: 'count', count: 2 } });
    await orders.addBulk(Array.from({ length: 5 }, () => ({ data: {} })));
    await orders.add({ fail: true }, { maxAttempts: 2 });
    await waitFor(
      async () => {
        const s = await store.stats('orders');
        return s.totals.completed === 6 && s.counts.dead === 1;
      },
      { what: 'the jobs to settle' },
    );
    // A lease that expires: a job reserved by hand and never settled.
    const stalls = new Queue(store, 'stalls');
    await stalls.add({});
    await firstValueFrom(store.reserve('stalls', 1, { leaseMs: 1 }));
    await waitFor(
      async () => {
        await firstValueFrom(store.recoverExpired('stalls'));
        return (await store.stats('stalls')).totals.leaseExpiries === 1;
      },
      { what: 'the lease to expire' },
    );

    for (const queue of ['orders', 'stalls']) {
      const stats = await store.stats(queue);
      const { body } = await api.get<QueueDetailView>(`api/queues/${queue}`);
      expect(body.counts).toEqual(stats.counts);
      expect(body.totals).toEqual(stats.totals);
    }
    const stats = await store.stats('orders');
    expect(stats.counts.completed).toBe(2); // kept by the retention
    expect(stats.totals).toMatchObject({
      completed: 6,
      handlerFailures: 2,
      leaseExpiries: 0,
      failed: 2,
      dead: 1,
    });
    expect((await store.stats('stalls')).totals).toMatchObject({
      leaseExpiries: 1,
      handlerFailures: 0,
      failed: 1,
    });
  });
});

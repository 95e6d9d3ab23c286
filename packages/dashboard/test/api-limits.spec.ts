import { firstValueFrom } from 'rxjs';
import { definePipeline, MemoryStore, Queue, silentLogger, Telemetry, Worker } from '@sluice/core';
import {
  startDashboardServer,
  type DashboardServer,
  type QueueDetailView,
  type RateLimitDetailView,
} from '@sluice/dashboard';
import { ApiClient, waitFor } from './support';

describe('dashboard API: rate limits (MemoryStore, real Worker)', () => {
  const store = new MemoryStore();
  const telemetry = new Telemetry();
  const worker = new Worker({
    store,
    telemetry,
    id: 'limited-worker',
    logger: silentLogger,
    reportEveryMs: 100,
    pipelines: [
      definePipeline({
        queue: 'calls',
        concurrency: 2,
        rateLimit: { key: 'provider', allowed: 50, periodMs: 1000 },
        handler: () => Promise.resolve('ok'),
      }),
    ],
  });
  let server: DashboardServer;
  let api: ApiClient;
  const limitPath = 'api/queues/calls/limits/provider';

  beforeAll(async () => {
    worker.start();
    server = await startDashboardServer({ store, telemetry, port: 0, logger: silentLogger });
    api = new ApiClient(server.url);
    await api.session();
    const queue = new Queue<{ n: number }>(store, 'calls');
    await queue.addBulk(Array.from({ length: 6 }, (_, n) => ({ data: { n } })));
    await waitFor(async () => (await store.stats('calls')).counts.completed === 6, { what: 'six calls' });
    await waitFor(async () => (await store.workers()).length === 1, { what: 'the worker report' });
  });

  afterAll(async () => {
    await worker.close({ timeoutMs: 2000 });
    await server.close();
    await store.close();
  });

  it('shows a key: the workers’ numbers, usage, and how late its starts ran', async () => {
    const { status, body } = await api.get<RateLimitDetailView>(limitPath);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      queue: 'calls',
      key: 'provider',
      configured: [{ allowed: 50, periodMs: 1000, per: 'job', pipelines: ['calls'] }],
      override: null,
      effective: { allowed: 50, periodMs: 1000 },
      canSet: true,
      pausesFrom: 'store',
    });
    expect(body.used).toBeGreaterThanOrEqual(0);
    expect(body.used).toBeLessThanOrEqual(6);
    // Every unit started, as the worker's start-timing events said.
    expect(body.timing?.started).toBe(6);
    expect(body.timing?.lateMs?.samples).toBe(6);
    expect(body.timing?.lateMs?.max).toBeGreaterThanOrEqual(body.timing?.lateMs?.p50 ?? Infinity);

    const list = await api.get<{ limits: RateLimitDetailView[] }>('api/queues/calls/limits');
    expect(list.body.limits.map((l) => l.key)).toEqual(['provider']);
    expect((await api.get('api/queues/calls/limits/nobody-uses-this')).status).toBe(404);
    expect((await api.get('api/queues/ghost/limits/provider')).status).toBe(404);
  });

  it('lists provider pauses heard from the store, a lead at its cap, how late requests left and the margin', async () => {
    await api.get(limitPath); // the dashboard listens to the key's pauses from its first view on
    const pause = await firstValueFrom(
      store.pauseLimit('calls', { key: 'provider', allowed: 50, periodMs: 1000 }, 750),
    );
    telemetry.emit({
      type: 'start-timing',
      queue: 'calls',
      at: Date.now(),
      pipeline: 'calls',
      key: 'provider',
      kind: 'lead',
      lateMs: 0,
      leadMs: 250,
      marginMs: 10,
      capped: true,
      marginCapped: false,
    });
    const timing = {
      type: 'start-timing',
      queue: 'calls',
      pipeline: 'calls',
      key: 'provider',
      leadMs: 250,
      capped: true,
    } as const;
    for (const lateMs of [3, 9, 30]) {
      telemetry.emit({ ...timing, at: Date.now(), kind: 'sent', lateMs, marginMs: 10, marginCapped: false });
    }
    // The 30 ms one left past the margin: moved in the log to when it left.
    telemetry.emit({
      ...timing,
      at: Date.now(),
      kind: 'corrected',
      lateMs: 30,
      marginMs: 10,
      marginCapped: false,
    });
    telemetry.emit({
      ...timing,
      at: Date.now(),
      kind: 'margin',
      lateMs: 0,
      marginMs: 50,
      marginCapped: true,
    });
    const { body } = await api.get<RateLimitDetailView>(limitPath);
    expect(body.timing?.sentLateMs).toMatchObject({ samples: 3, p50: 9, max: 30 });
    expect(body.timing?.corrected).toBe(1);
    expect(body.timing?.margin).toMatchObject({ marginMs: 50, capped: true, pipeline: 'calls' });
    expect(body.pauses).toEqual([expect.objectContaining({ until: pause.until, source: 'store' })]);
    expect(body.timing?.lead).toMatchObject({ leadMs: 250, capped: true, pipeline: 'calls' });
    const queue = await api.get<QueueDetailView>('api/queues/calls');
    expect(queue.body.rateLimits).toEqual([
      expect.objectContaining({ key: 'provider', leadCapped: true, marginCapped: true }),
    ]);
  });

  it('sets the numbers store-wide and clears them, as an action', async () => {
    const set = await api.act<{ override: unknown }>('PUT', limitPath, { allowed: 20, periodMs: 2000 });
    expect(set.status).toBe(200);
    expect(set.body.override).toEqual({ allowed: 20, periodMs: 2000 });
    expect(await store.getRateLimit('calls', 'provider')).toEqual({ allowed: 20, periodMs: 2000 });
    const shown = await api.get<RateLimitDetailView>(limitPath);
    expect(shown.body).toMatchObject({
      override: { allowed: 20, periodMs: 2000 },
      effective: { allowed: 20, periodMs: 2000 },
      configured: [{ allowed: 50, periodMs: 1000 }],
    });

    const cleared = await api.act('PUT', limitPath, { clear: true });
    expect(cleared.status).toBe(200);
    expect(await store.getRateLimit('calls', 'provider')).toBeNull();
  });

  it('refuses bad numbers (400) and a request without the CSRF token (403)', async () => {
    for (const body of [
      {},
      { allowed: 0, periodMs: 1000 },
      { allowed: 1.5, periodMs: 1000 },
      { allowed: 10 },
      { allowed: 10, periodMs: -1 },
      { allowed: 10, periodMs: 86_400_001 },
      { allowed: '10', periodMs: 1000 },
      { clear: true, allowed: 10, periodMs: 1000 },
    ]) {
      const res = await api.act('PUT', limitPath, body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
    }
    const forged = await fetch(`${server.url}${limitPath}`, {
      method: 'PUT',
      headers: api.headers({ 'Content-Type': 'application/json', 'X-CSRF-Token': 'forged' }),
      body: JSON.stringify({ allowed: 1, periodMs: 1000 }),
    });
    expect(forged.status).toBe(403);
    expect(await store.getRateLimit('calls', 'provider')).toBeNull();
  });

  it('refuses to change a limit when read-only', async () => {
    const readOnly = await startDashboardServer({ store, port: 0, logger: silentLogger, readOnly: true });
    try {
      const client = new ApiClient(readOnly.url);
      await client.session();
      expect((await client.get<RateLimitDetailView>(limitPath)).body.canSet).toBe(false);
      const res = await client.act('PUT', limitPath, { allowed: 1, periodMs: 1000 });
      expect(res.status).toBe(403);
      expect(await store.getRateLimit('calls', 'provider')).toBeNull();
    } finally {
      await readOnly.close();
    }
  });
});

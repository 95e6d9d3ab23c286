import { firstValueFrom } from 'rxjs';
import {
  definePipeline,
  MemoryStore,
  Queue,
  silentLogger,
  Telemetry,
  Worker,
  type TelemetryEvent,
} from '@sluice/core';
import {
  startDashboardServer,
  type BulkActionView,
  type DashboardServer,
  type JobDetailView,
  type JobListView,
} from '@sluice/dashboard';
import { ApiClient, waitFor } from './support';

describe('dashboard API: bulk job actions (MemoryStore)', () => {
  const store = new MemoryStore();
  const telemetry = new Telemetry();
  const events: TelemetryEvent[] = [];
  let server: DashboardServer;
  let api: ApiClient;
  let queue: Queue<{ n: number }>;

  beforeAll(async () => {
    telemetry.events$.subscribe((e) => events.push(e));
    queue = new Queue(store, 'bulk');
    server = await startDashboardServer({ store, telemetry, port: 0, logger: silentLogger });
    api = new ApiClient(server.url);
    await api.session();
  });

  afterAll(async () => {
    await server.close();
    await store.close();
  });

  const bulk = (body: unknown) => api.act<BulkActionView>('POST', 'api/queues/bulk/jobs/bulk', body);
  const stateOf = async (id: string) => (await store.getJob('bulk', id))?.state;

  it('applies an action to each job it applies to, and says why it left the others alone', async () => {
    const [r1, r2, r3] = await Promise.all([1, 2, 3].map(async (n) => (await queue.add({ n })).id));
    const [s1, s2] = await Promise.all(
      [4, 5].map(async (n) => (await queue.add({ n }, { delayMs: 3_600_000 })).id),
    );

    const promoted = await bulk({ action: 'promote', ids: [s1, r1, 'ghost'] });
    expect(promoted.status).toBe(200);
    expect(promoted.body).toEqual({
      ok: true,
      action: 'promote',
      queue: 'bulk',
      done: 1,
      skipped: 2,
      results: [
        { id: s1, ok: true, state: 'ready' },
        { id: r1, ok: false, state: 'ready', error: 'ready: only scheduled jobs can be run now' },
        { id: 'ghost', ok: false, error: 'no such job' },
      ],
    });
    expect(await stateOf(s1!)).toBe('ready');

    const cancelled = await bulk({ action: 'cancel', ids: [r1, r2, s2] });
    expect(cancelled.body.done).toBe(3);
    for (const id of [r1, r2, s2]) expect(await stateOf(id!)).toBe('cancelled');

    const retried = await bulk({ action: 'retry', ids: [r1, r2, r3] });
    expect(retried.body.results).toEqual([
      { id: r1, ok: true, state: 'ready' },
      { id: r2, ok: true, state: 'ready' },
      { id: r3, ok: false, state: 'ready', error: 'ready: only dead or cancelled jobs can be retried' },
    ]);
    expect(await stateOf(r1!)).toBe('ready');

    const removed = await bulk({ action: 'remove', ids: [r1, s2, r1] });
    expect(removed.body).toMatchObject({ done: 2, skipped: 0 }); // the repeated id counts once
    expect(await store.getJob('bulk', r1!)).toBeUndefined();
    expect(await store.getJob('bulk', s2!)).toBeUndefined();

    const bulkEvents = events.filter((e) => e.type === 'action' && e.detail === 'bulk');
    expect(bulkEvents.map((e) => (e.type === 'action' ? `${e.action} ${e.jobId}` : ''))).toEqual([
      `promote ${s1}`,
      `cancel ${r1}`,
      `cancel ${r2}`,
      `cancel ${s2}`,
      `retry ${r1}`,
      `retry ${r2}`,
      `remove ${r1}`,
      `remove ${s2}`,
    ]);
  });

  it('signals running jobs to cancel, and never deletes one', async () => {
    await store.purge('bulk', 'cancelled');
    for (const state of ['ready', 'scheduled'] as const) {
      const left = await store.listJobs('bulk', state, { limit: 100 });
      for (const job of left) await store.removeJob('bulk', job.id);
    }
    const { id } = await queue.add({ n: 9 });
    const reserved = await firstValueFrom(store.reserve('bulk', 1, { leaseMs: 60_000 }));
    expect(reserved.jobs.map((j) => j.id)).toEqual([id]);

    const removed = await bulk({ action: 'remove', ids: [id] });
    expect(removed.body.results).toEqual([
      { id, ok: false, state: 'running', error: 'running: cancel it first, or wait for it to finish' },
    ]);
    const cancelled = await bulk({ action: 'cancel', ids: [id] });
    expect(cancelled.body.results).toEqual([{ id, ok: true, state: 'running', result: 'signalled' }]);
  });

  it('refuses a malformed request with a 400 and changes nothing', async () => {
    const { id } = await queue.add({ n: 10 }, { delayMs: 3_600_000 });
    const cases: [unknown, string][] = [
      [{ action: 'explode', ids: [id] }, 'bad_request'],
      [{ action: 'promote' }, 'bad_request'],
      [{ action: 'promote', ids: [] }, 'bad_request'],
      [{ action: 'promote', ids: Array.from({ length: 201 }, (_, i) => String(i)) }, 'bad_request'],
      [{ action: 'promote', ids: [id, 7] }, 'invalid_id'],
      [{ action: 'promote', ids: [id, ''] }, 'invalid_id'],
    ];
    for (const [body, code] of cases) {
      const res = await api.act('POST', 'api/queues/bulk/jobs/bulk', body);
      expect({ body, status: res.status, code: res.body.error.code }).toEqual({ body, status: 400, code });
    }
    expect(await stateOf(id)).toBe('scheduled');
    const unknownQueue = await api.act('POST', 'api/queues/nope/jobs/bulk', { action: 'promote', ids: [id] });
    expect(unknownQueue.status).toBe(404);
  });

  it('needs the CSRF token like every other action', async () => {
    const { id } = await queue.add({ n: 11 }, { delayMs: 3_600_000 });
    const res = await fetch(`${server.url}api/queues/bulk/jobs/bulk`, {
      method: 'POST',
      headers: api.headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ action: 'promote', ids: [id] }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('csrf');
    expect(await stateOf(id)).toBe('scheduled');
  });
});

describe('dashboard API: who runs a job (MemoryStore, real Worker)', () => {
  const store = new MemoryStore();
  let server: DashboardServer;
  let api: ApiClient;
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const worker = new Worker({
    store,
    id: 'worker-7f3a',
    logger: silentLogger,
    pipelines: [definePipeline({ queue: 'slow', concurrency: 1, handler: () => held })],
  });

  beforeAll(async () => {
    worker.start();
    server = await startDashboardServer({ store, port: 0, logger: silentLogger });
    api = new ApiClient(server.url);
  });

  afterAll(async () => {
    release();
    await worker.close({ timeoutMs: 2000 });
    await server.close();
    await store.close();
  });

  it('names the worker holding a running job, in the list and on the job, and not once it finished', async () => {
    const { id } = await new Queue(store, 'slow').add({ n: 1 });
    await waitFor(async () => (await store.getJob('slow', id))?.state === 'running', { what: 'the start' });
    const list = await api.get<JobListView>('api/queues/slow/jobs?state=running');
    expect(list.body.jobs).toEqual([expect.objectContaining({ id, workerId: 'worker-7f3a' })]);
    const detail = await api.get<{ job: JobDetailView }>(`api/queues/slow/jobs/${id}`);
    expect(detail.body.job.workerId).toBe('worker-7f3a');

    release();
    await waitFor(async () => (await store.getJob('slow', id))?.state === 'completed', { what: 'the end' });
    const done = await api.get<{ job: JobDetailView }>(`api/queues/slow/jobs/${id}`);
    expect(done.body.job.workerId).toBeUndefined();
  });
});

import { Counter, Registry } from 'prom-client';
import {
  definePipeline,
  MemoryStore,
  Queue,
  silentLogger,
  Telemetry,
  Worker,
  type Store,
} from '@sluice/core';
import { instrumentStore } from '@sluice/core/internal';
import { createMetrics, METRIC_NAMES, startDashboardServer } from '@sluice/dashboard';
import { parsePrometheusText, sampleValue } from './prometheus-text';
import { startEmailWorker, waitFor, type Email } from './support';

describe('createMetrics', () => {
  let store: MemoryStore;
  let fixture: ReturnType<typeof startEmailWorker>;

  beforeAll(() => {
    store = new MemoryStore();
    fixture = startEmailWorker(store);
  });

  afterAll(async () => {
    await fixture.stop();
    await store.close();
  });

  it('counts processed jobs by status and exposes well-formed Prometheus text', async () => {
    const registry = new Registry();
    const metrics = createMetrics({ telemetry: fixture.telemetry, store, registry });
    try {
      // A producer that wants enqueue metrics gives its queue an instrumented store.
      const producer = new Queue<Email>(instrumentStore(store, fixture.telemetry, Date.now), 'emails');
      await producer.addBulk([
        ...Array.from({ length: 7 }, (_, i) => ({ data: { to: `ok${i}@example.com` } })),
        ...Array.from({ length: 3 }, (_, i) => ({ data: { to: `bad${i}@example.com`, fail: true } })),
      ]);
      await waitFor(async () => {
        const s = await store.stats('emails');
        return s.counts.completed === 7 && s.counts.dead === 3;
      });
      await waitFor(async () => (await store.workers()).length === 1); // its first report
      fixture.telemetry.emit({
        type: 'rate-limited',
        queue: 'emails',
        at: Date.now(),
        key: 'emails',
        retryAfterMs: 12,
      });

      const text = await metrics.metrics();
      const families = parsePrometheusText(text);
      expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      for (const name of Object.values(METRIC_NAMES)) expect(families.has(name)).toBe(true);
      expect(families.get('sluice_jobs_total')?.type).toBe('counter');
      expect(families.get('sluice_job_duration_seconds')?.type).toBe('histogram');
      expect(families.get('sluice_queue_jobs')?.type).toBe('gauge');

      const total = (status: string) =>
        sampleValue(families, 'sluice_jobs_total', { queue: 'emails', status });
      expect(total('completed')).toBe(7);
      expect(total('dead')).toBe(3);
      // Besides them only hand-backs: a rate-limited start still late after its unit moved is
      // handed back by its start gate (a snoozed outcome, no start) on a loaded machine.
      const statuses = (families.get('sluice_jobs_total')?.samples ?? []).map((x) => x.labels.status);
      expect(statuses.filter((st) => st !== 'snoozed').sort()).toEqual(['completed', 'dead']);
      expect(
        sampleValue(families, 'sluice_job_duration_seconds_count', { queue: 'emails', status: 'completed' }),
      ).toBe(7);
      expect(
        sampleValue(families, 'sluice_job_duration_seconds_bucket', {
          queue: 'emails',
          status: 'dead',
          le: '+Inf',
        }),
      ).toBe(3);
      expect(sampleValue(families, 'sluice_job_wait_seconds_count', { queue: 'emails' })).toBe(10);
      expect(sampleValue(families, 'sluice_jobs_enqueued_total', { queue: 'emails' })).toBe(10);
      // The one emitted above, and any the worker's own limiter emitted (a hand-back on a loaded
      // machine): the counter follows the telemetry stream exactly.
      const rateLimited = fixture.events.filter(
        (e) => e.type === 'rate-limited' && e.queue === 'emails' && e.key === 'emails',
      ).length;
      expect(rateLimited).toBeGreaterThanOrEqual(1);
      expect(sampleValue(families, 'sluice_rate_limited_total', { queue: 'emails', key: 'emails' })).toBe(
        rateLimited,
      );

      const stats = await store.stats('emails');
      for (const [state, count] of Object.entries(stats.counts)) {
        expect(sampleValue(families, 'sluice_queue_jobs', { queue: 'emails', state })).toBe(count);
      }
      expect(sampleValue(families, 'sluice_dead_letter_jobs', { queue: 'emails' })).toBe(3);
      expect(sampleValue(families, 'sluice_queue_paused', { queue: 'emails' })).toBe(0);
      expect(sampleValue(families, 'sluice_workers')).toBe(1);
      expect(sampleValue(families, 'sluice_store_scrape_errors_total')).toBe(0);
    } finally {
      metrics.close();
    }
  });

  it('exposes how rate-limited starts kept to their slots: lateness, moves, hand-backs, the lead and pauses', async () => {
    const limited = new MemoryStore();
    const telemetry = new Telemetry();
    const registry = new Registry();
    const metrics = createMetrics({ telemetry, registry });
    const worker = new Worker({
      store: limited,
      telemetry,
      logger: silentLogger,
      pipelines: [
        definePipeline<number>({
          queue: 'api',
          concurrency: 4,
          rateLimit: { allowed: 20, periodMs: 1000 },
          handler: (job) => job.data,
        }),
      ],
    }).start();
    try {
      await new Queue<number>(limited, 'api').addBulk(Array.from({ length: 10 }, (_, i) => ({ data: i })));
      await waitFor(async () => (await limited.stats('api')).counts.completed === 10);
      const labels = { queue: 'api', key: 'api' };
      // A counter no event touched yet has no sample: 0.
      const count = async (name: string, extra: Record<string, string> = {}): Promise<number> => {
        const wanted = { ...labels, ...extra };
        const samples = [...parsePrometheusText(await metrics.metrics()).values()]
          .flatMap((f) => f.samples)
          .filter((x) => x.name === name && Object.entries(wanted).every(([k, v]) => x.labels[k] === v));
        expect(samples.length).toBeLessThanOrEqual(1);
        return samples[0]?.value ?? 0;
      };
      // Every one of the 10 jobs started at its slot, and said how late (well under a second).
      expect(await count('sluice_start_lateness_seconds_count')).toBe(10);
      expect(await count('sluice_start_lateness_seconds_bucket', { le: '0.5' })).toBe(10);
      // What a loaded worker adds (a real one may have moved some units already: counted from here).
      const moved = await count('sluice_start_moves_total', { outcome: 'moved' });
      const handedBack = await count('sluice_start_moves_total', { outcome: 'handed-back' });
      const pauses = await count('sluice_limit_pauses_total');
      const base = {
        type: 'start-timing',
        queue: 'api',
        at: Date.now(),
        pipeline: 'api',
        key: 'api',
      } as const;
      const timing = { lateMs: 12, leadMs: 100, marginMs: 10, capped: true, marginCapped: false };
      telemetry.emit({ ...base, ...timing, kind: 'moved' });
      telemetry.emit({ ...base, ...timing, kind: 'handed-back', reason: 'moved 8 times and still late' });
      telemetry.emit({ ...base, ...timing, kind: 'lead' });
      telemetry.emit({ ...base, ...timing, kind: 'paused', pauseMs: 500 });
      telemetry.emit({ ...base, ...timing, kind: 'sent', lateMs: 30 });
      telemetry.emit({ ...base, ...timing, kind: 'margin', marginMs: 40, marginCapped: true });
      telemetry.emit({ ...base, ...timing, kind: 'ahead', aheadJobs: 3 });
      const corrected = await count('sluice_send_corrections_total', { outcome: 'moved' });
      telemetry.emit({ ...base, ...timing, kind: 'corrected', lateMs: 30 });
      telemetry.emit({ ...base, ...timing, kind: 'corrected', lateMs: 30 });
      telemetry.emit({
        ...base,
        ...timing,
        kind: 'corrected',
        lateMs: 30,
        reason: 'the store could not move the units',
      });
      expect(await count('sluice_start_moves_total', { outcome: 'moved' })).toBe(moved + 1);
      expect(await count('sluice_start_moves_total', { outcome: 'handed-back' })).toBe(handedBack + 1);
      expect(await count('sluice_start_lead_seconds')).toBe(0.1);
      expect(await count('sluice_start_lead_capped')).toBe(1);
      expect(await count('sluice_limit_pauses_total')).toBe(pauses + 1);
      expect(await count('sluice_send_lateness_seconds_bucket', { le: '0.05' })).toBe(1);
      expect(await count('sluice_send_lateness_seconds_bucket', { le: '0.02' })).toBe(0);
      expect(await count('sluice_limit_margin_seconds')).toBe(0.04);
      expect(await count('sluice_limit_margin_capped')).toBe(1);
      expect(await count('sluice_limit_ahead_jobs')).toBe(3);
      expect(await count('sluice_send_corrections_total', { outcome: 'moved' })).toBe(corrected + 2);
      expect(await count('sluice_send_corrections_total', { outcome: 'failed' })).toBe(1);
    } finally {
      await worker.close({ timeoutMs: 1000 });
      metrics.close();
      await limited.close();
    }
  });

  it('reads the gauges afresh at each scrape (after its short cache)', async () => {
    const metrics = createMetrics({ store, cacheMs: 0 });
    try {
      await store.pause('emails');
      let families = parsePrometheusText(await metrics.metrics());
      expect(sampleValue(families, 'sluice_queue_paused', { queue: 'emails' })).toBe(1);
      await store.resume('emails');
      families = parsePrometheusText(await metrics.metrics());
      expect(sampleValue(families, 'sluice_queue_paused', { queue: 'emails' })).toBe(0);
    } finally {
      metrics.close();
    }
  });

  it('calls the store once per scrape for all the gauges', async () => {
    const stats = jest.spyOn(store, 'stats');
    const metrics = createMetrics({ store, queues: ['emails'] });
    try {
      await metrics.metrics();
      expect(stats).toHaveBeenCalledTimes(1);
    } finally {
      metrics.close();
      stats.mockRestore();
    }
  });

  it('keeps scraping when the store fails, and counts the failures', async () => {
    const failing: Store = Object.assign(Object.create(store) as Store, {
      queues: () => Promise.resolve(['emails', 'broken']),
      stats: (queue: string) =>
        queue === 'broken' ? Promise.reject(new Error('connection lost')) : store.stats(queue),
    });
    const metrics = createMetrics({ store: failing, logger: silentLogger });
    try {
      const families = parsePrometheusText(await metrics.metrics());
      expect(sampleValue(families, 'sluice_store_scrape_errors_total')).toBe(1);
      expect(sampleValue(families, 'sluice_queue_jobs', { queue: 'emails', state: 'completed' })).toBe(7);
      expect(families.get('sluice_queue_jobs')?.samples.some((s) => s.labels['queue'] === 'broken')).toBe(
        false,
      );
    } finally {
      metrics.close();
    }
  });

  it('works without a store or telemetry, and close() frees the names for reuse', async () => {
    const registry = new Registry();
    const telemetry = new Telemetry();
    const first = createMetrics({ telemetry, registry });
    expect(telemetry.observed).toBe(true);
    first.close();
    expect(telemetry.observed).toBe(false);
    expect(registry.getMetricsAsArray()).toEqual([]);
    const second = createMetrics({ registry });
    expect(parsePrometheusText(await second.metrics()).has('sluice_jobs_total')).toBe(true);
    second.close();
  });

  it("serves the user's registry at /metrics of the dashboard", async () => {
    const registry = new Registry();
    const custom = new Counter({ name: 'app_signups_total', help: 'Sign-ups', registers: [registry] });
    custom.inc(2);
    const server = await startDashboardServer({
      store,
      port: 0,
      registry,
      telemetry: fixture.telemetry,
      logger: silentLogger,
      metrics: 'public',
      auth: { token: 'secret-token' },
    });
    try {
      await fixture.queue.add({ to: 'one-more@example.com' });
      await waitFor(async () => (await store.stats('emails')).counts.completed === 8);
      const res = await fetch(`${server.url}metrics`); // public: no token needed
      expect(res.status).toBe(200);
      const families = parsePrometheusText(await res.text());
      expect(sampleValue(families, 'app_signups_total')).toBe(2);
      expect(sampleValue(families, 'sluice_jobs_total', { queue: 'emails', status: 'completed' })).toBe(1);
      expect((await fetch(`${server.url}api/overview`)).status).toBe(401);
    } finally {
      await server.close();
    }
    expect(registry.getSingleMetric('sluice_jobs_total')).toBeUndefined();
    expect(registry.getSingleMetric('app_signups_total')).toBeDefined();
  });
});

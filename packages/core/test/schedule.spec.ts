import { definePipeline, MemoryStore, Queue, silentLogger, Worker, type Outcome } from '@sluice/core';

describe('recurring schedules', () => {
  it('three workers add each tick exactly once, and the job runs at its tick', async () => {
    const store = new MemoryStore();
    const queue = new Queue<{ report: string }>(store, 'reports');
    await queue.schedule('every-second', '* * * * * *', { report: 'digest' });
    const outcomes: Outcome[] = [];
    const workers = [1, 2, 3].map(
      () =>
        new Worker({
          store,
          logger: silentLogger,
          scheduleEveryMs: 200,
          pipelines: [
            definePipeline<{ report: string }>({
              queue: 'reports',
              concurrency: 2,
              handler: (job) => job.data,
            }),
          ],
        }),
    );
    for (const w of workers) {
      w.outcomes$.subscribe((o) => outcomes.push(o));
      w.start();
    }
    await new Promise((r) => setTimeout(r, 3_300));
    await Promise.all(workers.map((w) => w.close({ timeoutMs: 1000 })));

    const ticks = outcomes.map((o) => o.job.runAt);
    expect(outcomes.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ticks).size).toBe(ticks.length); // no tick ran twice
    for (const o of outcomes) {
      expect(o.kind).toBe('completed');
      expect(o.job.runAt % 1000).toBe(0);
      expect(o.job.name).toBe('every-second');
      expect(o.job.data).toEqual({ report: 'digest' });
      expect(o.job.lease.startedAt).toBeGreaterThanOrEqual(o.job.runAt); // not before its tick
    }
    // Consecutive ticks, no gaps.
    const sorted = [...ticks].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(1000);
  });

  it('validates the expression and the payload, and can be removed', async () => {
    const store = new MemoryStore();
    const queue = new Queue<{ n: number }>(store, 'q', { schema: { type: 'object', required: ['n'] } });
    await expect(queue.schedule('bad', 'not a cron')).rejects.toThrow(/cron/);
    await expect(queue.schedule('bad-data', '* * * * *', {} as { n: number })).rejects.toThrow(/schema/);
    await queue.schedule('ok', '*/5 * * * *', { n: 1 });
    expect((await store.getQueueConfig('q')).schedules).toEqual({
      ok: { cron: '*/5 * * * *', data: { n: 1 } },
    });
    expect(await queue.unschedule('ok')).toBe(true);
    expect(await queue.unschedule('ok')).toBe(false);
    expect((await store.getQueueConfig('q')).schedules).toEqual({});
  });
});

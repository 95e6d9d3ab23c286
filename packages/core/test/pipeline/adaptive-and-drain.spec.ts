import { asyncScheduler, map, NEVER, timer } from 'rxjs';
import { definePipeline, MemoryStore, Telemetry, type Outcome, type TelemetryEvent } from '@sluice/core';
import { pipelineHarness } from '@sluice/testing';
import { newTestScheduler } from './helpers';

describe('adaptive batching in a pipeline (virtual time)', () => {
  it('writer busy 100 ms, a job every 10 ms: one single job, then batches of ~10', () => {
    const sizes: number[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'events',
            batch: { adaptive: true, maxSize: 100 },
            handler: (jobs) => {
              sizes.push(jobs.length);
              return timer(100).pipe(map(() => jobs.length));
            },
          }),
        ],
      });
      for (let t = 0; t < 1_000; t += 10) h.enqueueAt(t, 'events', [{ data: t }]);
      h.run({ until: 1_300 }).subscribe();
    });
    expect(sizes[0]).toBe(1);
    expect(sizes.slice(1, -1).every((n) => n >= 9 && n <= 11)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100);
  });

  it('a job every 200 ms: every job is written alone, at once', () => {
    const writes: [number, number][] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'events',
            batch: { adaptive: true, maxSize: 100 },
            handler: (jobs) => {
              writes.push([asyncScheduler.now(), jobs.length]);
              return timer(100).pipe(map(() => null));
            },
          }),
        ],
      });
      for (let t = 0; t < 1_000; t += 200) h.enqueueAt(t, 'events', [{ data: t }]);
      h.run({ until: 1_200 }).subscribe();
    });
    expect(writes).toEqual([
      [0, 1],
      [200, 1],
      [400, 1],
      [600, 1],
      [800, 1],
    ]);
  });
});

describe('worker drain (virtual time)', () => {
  it('stops starting jobs, lets in-flight ones finish and settle, then completes', () => {
    const starts: number[] = [];
    const outcomes: Outcome[] = [];
    const store = new MemoryStore();
    let closed: (() => unknown) | undefined;
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 3,
            prefetch: 3, // three more reserved than run
            handler: (job) => {
              starts.push(asyncScheduler.now());
              return timer(50).pipe(map(() => job.data));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'q',
        Array.from({ length: 10 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 60, drainTimeoutMs: 1_000 }).subscribe((o) => outcomes.push(o));
      closed = () => h.closeResult;
    });
    // Three at 0, three at 50; the drain at 60 lets those three finish at 100 and starts nothing else.
    expect(starts).toEqual([0, 0, 0, 50, 50, 50]);
    // The three prefetched (reserved, not started) go back to the queue without spending an attempt.
    expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(6);
    expect(outcomes.filter((o) => o.kind === 'snoozed').map((o) => o.job.attempt)).toEqual([1, 1, 1]);
    expect(outcomes).toHaveLength(9);
    expect(closed?.()).toEqual({ drained: true, abandoned: 0 });
  });

  it('past the timeout aborts handlers and leaves their jobs leased for recovery', () => {
    const signals: AbortSignal[] = [];
    const store = new MemoryStore();
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline({
            queue: 'q',
            concurrency: 2,
            prefetch: 0,
            handler: (_job, { signal }) => {
              signals.push(signal);
              return NEVER;
            },
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 1 }, { data: 2 }, { data: 3 }]);
      h.run({ until: 10, drainTimeoutMs: 100 }).subscribe();
      asyncScheduler.schedule(() => {
        expect(h.closeResult).toEqual({ drained: false, abandoned: 2 });
      }, 200);
    });
    expect(signals).toHaveLength(2);
    expect(signals.every((s) => s.aborted)).toBe(true);
    return store.stats('q').then((stats) => {
      expect(stats.counts).toMatchObject({ running: 2, ready: 1 });
    });
  });
});

describe('telemetry (virtual time)', () => {
  it('emits enqueue, reserve, start, stop, exception, rate-limited and demand events', () => {
    const telemetry = new Telemetry();
    const events: TelemetryEvent[] = [];
    telemetry.events$.subscribe((e) => events.push(e));
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        telemetry,
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 2,
            rateLimit: { allowed: 2, periodMs: 100 },
            handler: (job) => {
              if (job.data === 3) throw new Error('three');
              return job.data;
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'q',
        [1, 2, 3, 4].map((data) => ({ data, options: { maxAttempts: 1 } })),
      );
      h.run({ until: 300 }).subscribe();
    });
    const types = new Set(events.map((e) => e.type));
    for (const t of ['reserve', 'start', 'stop', 'exception', 'rate-limited', 'demand'] as const) {
      expect(types).toContain(t);
    }
    const stops = events.filter((e) => e.type === 'stop');
    expect(stops).toHaveLength(4);
    const exception = events.find((e) => e.type === 'exception');
    expect(exception).toMatchObject({ jobId: expect.any(String), error: { message: 'three' } });
  });
});

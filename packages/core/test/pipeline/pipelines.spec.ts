import { asyncScheduler, map, NEVER, type Observable, tap, throwError, timer } from 'rxjs';
import {
  definePipeline,
  fixed,
  JobTimeoutError,
  MemoryStore,
  PermanentError,
  type Outcome,
  type ReservedJob,
  type ReserveOptions,
  type ReserveResult,
} from '@sluice/core';
import { describeOutcome, pipelineHarness } from '@sluice/testing';
import { newTestScheduler } from './helpers';

describe('whole pipelines over MemoryStore, in virtual time', () => {
  it('runs jobs through a handler and emits typed outcomes', () => {
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<string, string>({
            queue: 'q',
            concurrency: 2,
            handler: (job) => timer(10).pipe(map(() => job.data.toUpperCase())),
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 'a' }, { data: 'b' }, { data: 'c' }]);
      h.enqueueAt(50, 'q', [{ data: 'd' }]);
      const outcomes$ = h.run({ until: 100 }).pipe(map(describeOutcome));
      // a and b start at 0 (concurrency 2), c when a slot frees at 10, d as soon as it is added.
      expectObservable(outcomes$).toBe('10ms (ab) 6ms c 39ms d 39ms |', {
        a: 'completed:a',
        b: 'completed:b',
        c: 'completed:c',
        d: 'completed:d',
      });
    });
  });

  it('failing → retrying with backoff → dead, without erroring the stream', () => {
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<string>({
            queue: 'q',
            backoff: fixed(100),
            handler: (job) =>
              job.data === 'bad' ? throwError(() => new Error('provider said no')) : job.data,
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 'bad', options: { maxAttempts: 3 } }, { data: 'good' }]);
      const outcomes$ = h.run({ until: 500 }).pipe(map(describeOutcome));
      expectObservable(outcomes$).toBe('(rg) 96ms r 99ms d 299ms |', {
        r: 'retrying:bad',
        g: 'completed:good',
        d: 'dead:bad',
      });
    });
  });

  it('dead-letters a PermanentError at once, with the reason', () => {
    const outcomes: Outcome[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline({
            queue: 'q',
            handler: () => {
              throw new PermanentError('hard bounce');
            },
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 1 }]);
      h.run({ until: 10 }).subscribe((o) => outcomes.push(o));
    });
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ kind: 'dead', reason: 'permanent failure: hard bounce' });
  });

  it('times out a handler, fires its AbortSignal and retries the job', () => {
    const signals: AbortSignal[] = [];
    const outcomes: Outcome[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline({
            queue: 'q',
            timeoutMs: 50,
            backoff: fixed(1000),
            handler: (_job, { signal }) => {
              signals.push(signal);
              return NEVER;
            },
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 1 }]);
      h.run({ until: 100 }).subscribe((o) => outcomes.push(o));
    });
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBeInstanceOf(JobTimeoutError);
    expect(outcomes).toEqual([
      expect.objectContaining({
        kind: 'retrying',
        error: expect.objectContaining({ name: 'JobTimeoutError' }),
      }),
    ]);
    expect(outcomes[0]!.durationMs).toBe(50);
  });

  it('honours { snooze } and { cancel } returned as values', () => {
    newTestScheduler().run(({ expectObservable }) => {
      let calls = 0;
      const h = pipelineHarness({
        pipelines: [
          definePipeline<string>({
            queue: 'q',
            handler: (job) => {
              if (job.data === 'stop') return { cancel: 'not wanted' };
              return calls++ === 0 ? { snooze: 200 } : 'done';
            },
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 'later' }, { data: 'stop' }]);
      const outcomes$ = h.run({ until: 300 }).pipe(map(describeOutcome));
      expectObservable(outcomes$).toBe('(sc) 196ms d 99ms |', {
        s: 'snoozed:later',
        c: 'cancelled:stop',
        d: 'completed:later',
      });
    });
  });

  it('dead-letters a job whose payload fails the schema at reserve and keeps running', () => {
    const outcomes: Outcome[] = [];
    const store = new MemoryStore();
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<{ to: string }>({
            queue: 'q',
            schema: { type: 'object', required: ['to'], properties: { to: { type: 'string' } } },
            handler: (job) => job.data.to,
          }),
        ],
      });
      // Added straight to the store, bypassing Queue.add's validation (an old producer, say).
      h.enqueueAt(0, 'q', [{ data: { to: 'a' } }, { data: { to: 42 } }, { data: { to: 'b' } }]);
      h.run({ until: 10 }).subscribe((o) => outcomes.push(o));
    });
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['completed', 'completed', 'dead']);
    const dead = outcomes.find((o) => o.kind === 'dead');
    expect(dead).toMatchObject({
      reason: expect.stringMatching(/payload failed the schema: \/to must be string/),
    });
  });

  it('isolates failures: a failing job never cancels siblings or another pipeline', () => {
    const outcomes: Outcome[] = [];
    const aborted: string[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            name: 'flaky',
            queue: 'a',
            concurrency: 5,
            handler: (job, { signal }) => {
              signal.addEventListener('abort', () => aborted.push(job.id));
              if (job.data === 3) throw new Error('sync throw');
              if (job.data === 4) return throwError(() => new Error('async error'));
              return timer(20).pipe(map(() => job.data));
            },
          }),
          definePipeline<number>({
            name: 'steady',
            queue: 'b',
            handler: (job) => timer(5).pipe(map(() => job.data)),
          }),
        ],
      });
      h.enqueueAt(
        0,
        'a',
        [1, 2, 3, 4, 5].map((data) => ({ data, options: { maxAttempts: 1 } })),
      );
      h.enqueueAt(
        0,
        'b',
        [1, 2, 3].map((data) => ({ data })),
      );
      h.run({ until: 100 }).subscribe((o) => outcomes.push(o));
    });
    const flaky = outcomes.filter((o) => o.pipeline === 'flaky');
    expect(flaky.filter((o) => o.kind === 'completed').map((o) => o.job.data)).toEqual([1, 2, 5]);
    expect(
      flaky
        .filter((o) => o.kind === 'dead')
        .map((o) => o.job.data)
        .sort(),
    ).toEqual([3, 4]);
    expect(outcomes.filter((o) => o.pipeline === 'steady' && o.kind === 'completed')).toHaveLength(3);
    expect(aborted).toEqual([]);
  });

  it('routes a cancellation to the running handler and records the job as cancelled', () => {
    const outcomes: Outcome[] = [];
    const store = new MemoryStore();
    let running: ReservedJob | undefined;
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline({
            queue: 'q',
            handler: (job) => {
              running = job;
              return timer(1000);
            },
          }),
        ],
      });
      h.enqueueAt(0, 'q', [{ data: 1 }]);
      asyncScheduler.schedule(() => {
        void store.cancel('q', running!.id);
      }, 30);
      h.run({ until: 100 }).subscribe((o) => outcomes.push(o));
    });
    expect(outcomes).toEqual([expect.objectContaining({ kind: 'cancelled', durationMs: 30 })]);
  });

  it('refuses prefetch together with a rate limit', () => {
    expect(() =>
      definePipeline({
        queue: 'q',
        prefetch: 10,
        rateLimit: { allowed: 5, periodMs: 1000 },
        handler: () => 1,
      }),
    ).toThrow(/prefetch cannot be combined with a rate limit/);
  });

  it('a limited pipeline reads the store clock a few times before its first reserve; others do not', () => {
    const calls: string[][] = [];
    class Recording extends MemoryStore {
      constructor(private readonly log: string[]) {
        super();
      }
      override storeTime(queue: string): Observable<number> {
        return super.storeTime(queue).pipe(tap(() => this.log.push('time')));
      }
      override reserve<T>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> {
        return super.reserve<T>(queue, n, options).pipe(tap(() => this.log.push('reserve')));
      }
    }
    for (const rateLimit of [{ allowed: 10, periodMs: 1000 }, undefined]) {
      const log: string[] = [];
      calls.push(log);
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          store: new Recording(log),
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              ...(rateLimit ? { rateLimit } : {}),
              handler: (j) => j.data,
            }),
          ],
        });
        h.enqueueAt(0, 'q', [{ data: 1 }]);
        h.run({ until: 100 }).subscribe();
      });
    }
    const [limited, unlimited] = calls;
    expect(limited?.slice(0, 6)).toEqual(['time', 'time', 'time', 'time', 'time', 'reserve']);
    expect(unlimited).not.toContain('time');
  });

  it('a limited, time-batched pipeline starts every batch at its slot, one lead after its reserve', () => {
    const lags: number[] = [];
    const sizes: number[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 2,
            batch: { size: 10, timeMs: 50 },
            rateLimit: { allowed: 100, periodMs: 1000 },
            handler: (jobs) => {
              sizes.push(jobs.length);
              for (const j of jobs) lags.push(asyncScheduler.now() - j.lease.startedAt);
              return timer(5).pipe(map(() => null));
            },
          }),
        ],
      });
      // A trickle: one job every 7 ms, so batches fill by time, not size.
      for (let t = 0; t < 700; t += 7) h.enqueueAt(t, 'q', [{ data: t }]);
      h.run({ until: 1000 }).subscribe();
    });
    // No batch waited on a local timer: each started at its slot, the lead (5 ms) after its
    // reserve, plus the millisecond of doubt of two whole-millisecond clocks.
    expect(new Set(lags)).toEqual(new Set([6]));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(10);
    expect(sizes.filter((n) => n > 1).length).toBeGreaterThan(5); // still batched
  });
});

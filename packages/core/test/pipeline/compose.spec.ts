import { asyncScheduler, delay, map, mergeMap, take, timer } from 'rxjs';
import {
  definePipeline,
  InvalidArgumentError,
  MemoryStore,
  pipeline,
  processBatches,
  processJobs,
  silentLogger,
  withJobs,
  Worker,
  type Outcome,
  type Reservation,
} from '@sluice/core';
import { pipelineHarness } from '@sluice/testing';
import { newTestScheduler } from './helpers';

interface Order {
  readonly id: string;
  readonly customer: string;
}

/** A directory that answers every lookup of one reservation in one call, 5 frames later. */
function directory(calls: string[][]) {
  return (r: Reservation<Order>) => {
    calls.push(r.jobs.map((j) => j.data.customer));
    return timer(5).pipe(
      map(() =>
        withJobs(
          r,
          r.jobs.map((job) => ({ ...job, data: { ...job.data, name: job.data.customer.toUpperCase() } })),
        ),
      ),
    );
  };
}

describe('pipelines composed from the operators', () => {
  it('runs a graph with a stage of its own between the worker source and settle', () => {
    const calls: string[][] = [];
    newTestScheduler().run(({ expectObservable }) => {
      const shipping = pipeline<Order, string>({ queue: 'orders', concurrency: 2 }, (reservations$, ctx) =>
        reservations$.pipe(
          mergeMap(directory(calls)),
          processJobs((job) => timer(10).pipe(map(() => `${job.data.id} to ${job.data.name}`)), ctx),
        ),
      );
      const h = pipelineHarness({ pipelines: [shipping] });
      h.enqueueAt(0, 'orders', [
        { data: { id: 'a', customer: 'ada' } },
        { data: { id: 'b', customer: 'bob' } },
      ]);
      h.enqueueAt(40, 'orders', [{ data: { id: 'c', customer: 'cy' } }]);
      const outcomes$ = h
        .run({ until: 100 })
        .pipe(map((o: Outcome) => (o.kind === 'completed' ? o.result : o.kind)));
      // One lookup for a and b (reserved together) at 0, answered at 5; both ship by 15. c: 40 → 45 → 55.
      expectObservable(outcomes$).toBe('15ms (ab) 36ms c 44ms |', {
        a: 'a to ADA',
        b: 'b to BOB',
        c: 'c to CY',
      });
    });
    expect(calls).toEqual([['ada', 'bob'], ['cy']]);
  });

  it('keeps the lease of a job whose handler outlives it, and completes it on attempt 1', () => {
    const testScheduler = newTestScheduler();
    const outcomes: Outcome[] = [];
    const recovered: string[] = [];
    // Heartbeats are periodic timers: this test gives the virtual scheduler to the store and the
    // worker itself (run mode's delegated intervals lose a periodic timer cleared and re-armed in
    // one frame).
    const store = new MemoryStore({ scheduler: testScheduler });
    testScheduler.run(() => {
      const slow = pipeline<string>({ queue: 'q', leaseMs: 300 }, (reservations$, ctx) =>
        reservations$.pipe(processJobs((job) => timer(1_200, testScheduler).pipe(map(() => job.data)), ctx)),
      );
      const worker = new Worker({
        store,
        logger: silentLogger,
        pipelines: [slow],
        recoverEveryMs: 10_000,
        scheduler: testScheduler,
      });
      worker.outcomes$.subscribe((o) => outcomes.push(o));
      store.enqueue([{ queue: 'q', data: 'long' }]).subscribe();
      worker.start();
      // Another node recovers expired leases every 50 frames: it must find none.
      timer(10, 50, testScheduler)
        .pipe(
          take(40),
          mergeMap(() => store.recoverExpired('q')),
        )
        .subscribe((r) => recovered.push(...r.recovered));
      timer(2_000, testScheduler).subscribe(() => worker.drain({ timeoutMs: 0 }).subscribe());
    });
    expect(recovered).toEqual([]);
    expect(outcomes.map((o) => [o.kind, o.job.attempt, o.durationMs])).toEqual([['completed', 1, 1_200]]);
  });

  it('is drained on close: running jobs finish and settle, no job starts after, the rest stays queued', async () => {
    const store = new MemoryStore();
    const starts: number[] = [];
    let closed: unknown;
    newTestScheduler().run(() => {
      const p = pipeline<string>({ queue: 'q', concurrency: 2 }, (reservations$, ctx) =>
        reservations$.pipe(
          processJobs((job) => {
            starts.push(asyncScheduler.now());
            return timer(100).pipe(map(() => job.data));
          }, ctx),
        ),
      );
      const worker = new Worker({ store, logger: silentLogger, pipelines: [p] });
      store.enqueue(['a', 'b', 'c', 'd'].map((data) => ({ queue: 'q', data }))).subscribe();
      worker.start();
      timer(50).subscribe(() => worker.drain({ timeoutMs: 1_000 }).subscribe((r) => (closed = r)));
    });
    expect(starts).toEqual([0, 0]);
    expect(closed).toEqual({ drained: true, abandoned: 0 });
    expect((await store.stats('q')).counts).toMatchObject({ completed: 2, ready: 2, running: 0 });
  });

  it('processBatches takes each reservation as one call', () => {
    const sizes: number[] = [];
    newTestScheduler().run(({ expectObservable }) => {
      const p = pipeline<number>({ queue: 'q', unitSize: 3 }, (reservations$, ctx) =>
        reservations$.pipe(
          processBatches((jobs) => {
            sizes.push(jobs.length);
            return jobs.length;
          }, ctx),
        ),
      );
      const h = pipelineHarness({ pipelines: [p] });
      h.enqueueAt(
        0,
        'q',
        [1, 2, 3, 4, 5].map((data) => ({ data })),
      );
      expectObservable(h.run({ until: 10 }).pipe(map((o: Outcome) => o.kind))).toBe('(abcde) 3ms |', {
        a: 'completed',
        b: 'completed',
        c: 'completed',
        d: 'completed',
        e: 'completed',
      });
    });
    // The budget is concurrency × unitSize = 3: a reservation of 3, then of the 2 left.
    expect(sizes).toEqual([3, 2]);
  });

  it('refuses a description a worker cannot run', () => {
    const graph = () => timer(0).pipe(map(() => []));
    expect(() => pipeline({ queue: 'q', concurrency: 0 }, graph)).toThrow(InvalidArgumentError);
    expect(() => pipeline({ queue: 'q', unitSize: 1.5 }, graph)).toThrow(
      'unitSize (the batch size) must be an integer ≥ 1',
    );
    expect(() =>
      pipeline({ queue: 'q', prefetch: 5, rateLimit: { allowed: 10, periodMs: 1000 } }, graph),
    ).toThrow('prefetch cannot be combined with a rate limit');
    expect(() => pipeline({ queue: 'q', schema: { type: 'nonsense' } }, graph)).toThrow();
    expect(() => pipeline({ queue: 'bad queue{' }, graph)).toThrow(InvalidArgumentError);
  });

  it('states its budget: slots × unit size + prefetch + what the limit grants ahead of its slots', () => {
    const graph = () => timer(0).pipe(map(() => []));
    expect(pipeline({ queue: 'q', concurrency: 4, unitSize: 10, prefetch: 7 }, graph).budget(4)).toBe(47);
    // 400/s, slots placed up to 20 ms ahead at the usual lead: 8 jobs wait for their slots.
    expect(
      pipeline({ queue: 'q', concurrency: 10, rateLimit: { allowed: 400, periodMs: 1000 } }, graph).budget(
        10,
      ),
    ).toBe(18);
    // Never more waiting for slots than two rounds of handlers take: 1,000,000/s would be 20,000.
    const fast = pipeline(
      { queue: 'q', concurrency: 5, unitSize: 2, rateLimit: { allowed: 1_000_000, periodMs: 1000 } },
      graph,
    );
    expect(fast.aheadOf(5)).toBe(20);
    expect(fast.budget(5)).toBe(30);
    expect(fast.budget(8)).toBe(48); // it follows the concurrency set at runtime
    expect(pipeline({ queue: 'q', concurrency: 5 }, graph).aheadOf(5)).toBe(0);
    // Adaptive batches gather the next batch while one is written: one more batch per slot.
    const adaptive = definePipeline({
      queue: 'q',
      concurrency: 2,
      batch: { adaptive: true, maxSize: 50 },
      handler: () => 1,
    });
    expect(adaptive.budget(2)).toBe(200);
    expect(adaptive.budget(3)).toBe(250); // prefetch stays what it was configured as: 2 × 50
  });

  it('hands back the jobs of a run whose own stage failed, at once and without spending an attempt', () => {
    const store = new MemoryStore();
    const outcomes: Outcome[] = [];
    let failures = 0;
    newTestScheduler().run(() => {
      const p = pipeline<string>({ queue: 'q', concurrency: 2, leaseMs: 5_000 }, (reservations$, ctx) =>
        reservations$.pipe(
          mergeMap((r) => {
            // The user's own stage fails once, on the reservation of `boom`.
            if (r.jobs.some((j) => j.data === 'boom') && failures++ === 0) throw new Error('lookup down');
            return [r];
          }),
          processJobs((job) => timer(100).pipe(map(() => job.data)), ctx),
        ),
      );
      const worker = new Worker({ store, logger: silentLogger, pipelines: [p], restartDelayMs: 1_000 });
      worker.outcomes$.subscribe((o) => outcomes.push(o));
      store.enqueue([{ queue: 'q', data: 'a' }]).subscribe();
      worker.start();
      timer(10).subscribe(() => store.enqueue([{ queue: 'q', data: 'boom' }]).subscribe());
      timer(3_000).subscribe(() => worker.drain({ timeoutMs: 0 }).subscribe());
    });
    // a was running when the stream failed at 10: aborted, handed back, and run again on attempt 1
    // after the restart (1,010), not after its 5 s lease expired.
    expect(outcomes.map((o) => [o.job.data, o.kind, o.job.attempt, o.at])).toEqual([
      ['a', 'completed', 1, 1_110],
      ['boom', 'completed', 1, 1_110],
    ]);
  });

  it('gives a typed handle for a definition', () => {
    const p = pipeline<{ n: number }, string>({ queue: 'typed' }, (r$, ctx) =>
      r$.pipe(processJobs((job) => String(job.data.n), ctx)),
    );
    const worker = new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [p] });
    const handle = worker.pipeline(p);
    const firstResult = (o: Outcome<{ n: number }, string>): string | undefined =>
      o.kind === 'completed' ? o.result : undefined;
    handle.outcomes$.pipe(map(firstResult)).subscribe();
    expect(handle.name).toBe('typed');
    expect(handle.status().budget).toBe(1);
  });

  it('starts the jobs of a limited pipeline whose store answers clock readings late', () => {
    // The clock is read before the first reserve; with a store that answers asynchronously (Redis),
    // the reservations must not be emitted before the timing stage listens.
    class SlowClockStore extends MemoryStore {
      override storeTime(queue: string) {
        return super.storeTime(queue).pipe(delay(3));
      }
    }
    const store = new SlowClockStore();
    const reads: number[] = [];
    newTestScheduler().run(({ expectObservable }) => {
      const limited = definePipeline<string>({
        queue: 'q',
        rateLimit: { allowed: 10, periodMs: 1000 },
        handler: (job) => {
          reads.push(asyncScheduler.now());
          return job.data;
        },
      });
      const h = pipelineHarness({ pipelines: [limited], store });
      h.enqueueAt(0, 'q', [{ data: 'a' }, { data: 'b' }]);
      // Five readings of 3 frames (the lead learns 3 × 1.5 + 1 = 6 from them), then the reserve at
      // 15 places the slots at 21 and 22 (a millisecond apart), surely come at 22 and 23 (both
      // clocks read whole milliseconds).
      expectObservable(
        h.run({ until: 100 }).pipe(map((o: Outcome) => `${o.kind}:${String(o.job.data)}`)),
      ).toBe('22ms a b 76ms |', { a: 'completed:a', b: 'completed:b' });
    });
    expect(reads).toEqual([22, 23]);
  });
});

import { asyncScheduler, delay, map, mergeMap, of, timer } from 'rxjs';
import {
  definePipeline,
  MemoryStore,
  PartitionedStore,
  silentLogger,
  Telemetry,
  Worker,
  type Outcome,
  type ReserveOptions,
  type ReserveResult,
  type SettleResult,
  type Settlement,
  type Store,
} from '@sluice/core';
import { pipelineHarness } from '@sluice/testing';
import type { Observable } from 'rxjs';
import { maxInAnyWindow, newTestScheduler } from './helpers';

/** A MemoryStore that checks the demand invariant on every call. */
class AuditedStore extends MemoryStore {
  unsettled = 0;
  maxUnsettled = 0;
  reserveCalls = 0;
  violations: string[] = [];
  constructor(private readonly budget: number) {
    super();
  }
  override reserve<T = unknown>(
    queue: string,
    n: number,
    options: ReserveOptions,
  ): Observable<ReserveResult<T>> {
    this.reserveCalls++;
    // The source may only call with demand in hand: n ≥ 1 and never beyond the free budget.
    if (n < 1 || this.unsettled + n > this.budget) {
      this.violations.push(`reserve(${n}) with ${this.unsettled} unsettled of ${this.budget}`);
    }
    return super.reserve<T>(queue, n, options).pipe(
      map((r) => {
        this.unsettled += r.jobs.length;
        this.maxUnsettled = Math.max(this.maxUnsettled, this.unsettled);
        if (this.unsettled > this.budget)
          this.violations.push(`${this.unsettled} unsettled > ${this.budget}`);
        return r;
      }),
    );
  }
  override settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    return super.settle(settlements).pipe(
      map((r) => {
        this.unsettled -= r.length;
        return r;
      }),
    );
  }
}

/** A MemoryStore whose reserve replies take a varying time to arrive, like a busy network. */
class JitteryStore extends MemoryStore {
  private answers = 0;
  override reserve<T = unknown>(
    queue: string,
    n: number,
    options: ReserveOptions,
  ): Observable<ReserveResult<T>> {
    // Every other reservation that returns jobs arrives 30 ms late.
    return super
      .reserve<T>(queue, n, options)
      .pipe(mergeMap((r) => (r.jobs.length > 0 && this.answers++ % 2 === 0 ? of(r).pipe(delay(30)) : of(r))));
  }
}

describe('acceptance: backpressure, rate limits, batching (virtual time)', () => {
  it('keeps reserved-but-unsettled jobs within the budget with 100,000 queued (concurrency 10 × batch 10)', () => {
    const budget = 10 * 10;
    const store = new AuditedStore(budget);
    let processed = 0;
    const calls: number[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<number>({
            queue: 'backlog',
            concurrency: 10,
            batch: { size: 10, timeMs: 50 },
            prefetch: 0, // the budget is exactly concurrency × batch size
            handler: (jobs) => {
              calls.push(jobs.length);
              // A slow consumer: 250 ms per batch.
              return timer(250).pipe(map(() => (processed += jobs.length)));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'backlog',
        Array.from({ length: 100_000 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 5_000, drainTimeoutMs: 1_000 }).subscribe();
    });
    expect(store.violations).toEqual([]);
    expect(store.maxUnsettled).toBe(budget); // the budget is used, never exceeded
    expect(processed).toBeGreaterThanOrEqual(1_900); // ~ 100 jobs per 250 ms for 5 s
    expect(calls.every((n) => n <= 10)).toBe(true);
    // Far fewer store calls than jobs: reserves are coalesced.
    expect(store.reserveCalls).toBeLessThan(processed / 5);
  });

  // One queue, and one queue in three partitions (a PartitionedStore: the limit kept on the queue's own
  // slot, the jobs taken from the partitions).
  const stores: [string, (queue: string) => Store][] = [
    ['one queue', () => new MemoryStore()],
    [
      'a queue in 3 partitions',
      (queue) => new PartitionedStore(new MemoryStore(), { partitions: { [queue]: 3 } }),
    ],
  ];

  it.each(stores)(
    'rate limit 400 per 1,000 ms over 10 s of a saturated queue (%s): never more than 400 starts in any window',
    (_, storeFor) => {
      const starts: number[] = [];
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          store: storeFor('emails'),
          pipelines: [
            definePipeline<number>({
              queue: 'emails',
              concurrency: 50,
              rateLimit: { allowed: 400, periodMs: 1000 },
              handler: (job) => {
                starts.push(asyncScheduler.now());
                return timer(7).pipe(map(() => job.data));
              },
            }),
          ],
        });
        h.enqueueAt(
          0,
          'emails',
          Array.from({ length: 6_000 }, (_, i) => ({ data: i })),
        );
        h.run({ until: 10_000 }).subscribe();
      });
      expect(maxInAnyWindow(starts, 1000)).toBeLessThanOrEqual(400);
      expect(starts.filter((t) => t < 10_000).length).toBeGreaterThanOrEqual(3_900);
    },
  );

  it.each([
    // [handlers' call, jobs, at most moved, the least share of the handlers' time spent in calls]
    // 1 ms calls: the jobs ahead never wait long for a handler. 20 ms calls: the first two rounds'
    // jobs ahead (20) wait, then none is granted ahead but one unit, probing, every 8 rounds (80 jobs).
    ['of 1 ms', 1, 2_000, 0, 0.4],
    ['of 20 ms', 20, 800, 20 + 800 / 80, 0.75],
  ])(
    'a limit far above what 10 handlers %s reach (1,000,000/s): jobs do not wait past their margins behind busy handlers',
    (_, callMs, jobs, mostMoved, busy) => {
      let moved = 0;
      const starts: number[] = [];
      const ahead: number[] = [];
      const telemetry = new Telemetry();
      telemetry.events$.subscribe((e) => {
        if (e.type === 'start-timing' && e.kind === 'moved') moved++;
        if (e.type === 'start-timing' && e.kind === 'ahead') ahead.push(e.aheadJobs ?? -1);
      });
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          telemetry,
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              concurrency: 10,
              rateLimit: { allowed: 1_000_000, periodMs: 1000 },
              handler: (job) => {
                starts.push(asyncScheduler.now());
                return timer(callMs).pipe(map(() => job.data));
              },
            }),
          ],
        });
        h.enqueueAt(
          0,
          'q',
          Array.from({ length: jobs }, (_, i) => ({ data: i })),
        );
        h.run({ until: 5_000 }).subscribe();
      });
      // Jobs granted ahead of what the handlers take wait for one past their margin and are moved (a
      // store call each, holding a handler): at the usual lead 1,000,000/s would grant 20,000 ahead.
      expect(starts).toHaveLength(jobs);
      expect(moved).toBeLessThanOrEqual(mostMoved);
      // Telemetry tells the jobs granted ahead: always the lead's 20 for quick calls; for slow ones
      // cut to none after the first round, then a probe of one now and then.
      if (callMs === 1) expect(ahead).toEqual([]);
      else expect(ahead.slice(0, 3)).toEqual([0, 1, 0]);
      // The handlers stay busy (virtual time): before this, 20 ms calls moved 790 of 800 jobs in the
      // same 2,054 ms, and 1 ms calls moved 1,930 of 2,000 over 1,357 ms.
      const span = Math.max(...starts) - Math.min(...starts) + callMs;
      expect((jobs * callMs) / (10 * span)).toBeGreaterThanOrEqual(busy);
    },
  );

  it('batched rate limit, 10 calls per second of up to 100 jobs: ≥ 990 jobs/s, never 11 calls in a second', () => {
    const callStarts: number[] = [];
    let jobs = 0;
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'inspect',
            concurrency: 4,
            batch: { size: 100, timeMs: 100 },
            rateLimit: { allowed: 10, periodMs: 1000, per: 'call' },
            handler: (batch) => {
              callStarts.push(asyncScheduler.now());
              jobs += batch.length;
              return timer(120).pipe(map(() => batch.length));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'inspect',
        Array.from({ length: 12_000 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 10_000 }).subscribe();
    });
    expect(maxInAnyWindow(callStarts, 1000)).toBeLessThanOrEqual(10);
    expect(jobs / 10).toBeGreaterThanOrEqual(990);
  });

  it('a per-call limit with jobs arriving one at a time still fills batches (store-side fill)', () => {
    const sizes: number[] = [];
    const callStarts: number[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'inspect',
            concurrency: 2,
            batch: { size: 100, timeMs: 200 },
            rateLimit: { allowed: 10, periodMs: 1000, per: 'call' },
            handler: (batch) => {
              sizes.push(batch.length);
              callStarts.push(asyncScheduler.now());
              return timer(50).pipe(map(() => null));
            },
          }),
        ],
      });
      // 1,200 messages per second, one every ms-ish (in bursts of 6 every 5 ms), for 5 s.
      for (let t = 0; t < 5_000; t += 5)
        h.enqueueAt(
          t,
          'inspect',
          Array.from({ length: 6 }, (_, i) => ({ data: t + i })),
        );
      h.run({ until: 5_200 }).subscribe();
    });
    expect(maxInAnyWindow(callStarts, 1000)).toBeLessThanOrEqual(10);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total / 5).toBeGreaterThanOrEqual(990);
    expect(sizes.filter((s) => s === 100).length).toBeGreaterThanOrEqual(45);
  });

  it('pauses and resumes from the store: no job starts while the queue is paused', () => {
    const starts: number[] = [];
    const outcomes: Outcome[] = [];
    const store = new MemoryStore();
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 2,
            handler: (job) => {
              starts.push(asyncScheduler.now());
              return timer(10).pipe(map(() => job.data));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'q',
        Array.from({ length: 100 }, (_, i) => ({ data: i })),
      );
      asyncScheduler.schedule(() => void store.pause('q'), 100);
      asyncScheduler.schedule(() => void store.resume('q'), 400);
      h.run({ until: 1_000 }).subscribe((o) => outcomes.push(o));
    });
    // In-flight jobs finish after the pause; nothing starts again until the resume.
    expect(starts.filter((t) => t > 100 && t < 400)).toEqual([]);
    expect(starts.filter((t) => t >= 400).length).toBeGreaterThan(0);
    expect(outcomes).toHaveLength(100);
  });

  it('pauses one worker locally and changes its concurrency at runtime', () => {
    let active = 0;
    const activeAt: [number, number][] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 2,
            handler: () => {
              active++;
              activeAt.push([asyncScheduler.now(), active]);
              return timer(10).pipe(map(() => active--));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'q',
        Array.from({ length: 400 }, (_, i) => ({ data: i })),
      );
      const handle = () => h.worker.pipeline('q');
      asyncScheduler.schedule(() => {
        handle().setConcurrency(8);
      }, 100);
      asyncScheduler.schedule(() => {
        handle().pause();
      }, 200);
      asyncScheduler.schedule(() => {
        handle().resume();
      }, 300);
      asyncScheduler.schedule(() => {
        handle().setConcurrency(1);
      }, 400);
      h.run({ until: 600 }).subscribe();
    });
    const maxActive = (from: number, to: number) =>
      Math.max(0, ...activeAt.filter(([t]) => t >= from && t < to).map(([, a]) => a));
    expect(maxActive(0, 100)).toBe(2);
    expect(maxActive(110, 200)).toBe(8);
    expect(activeAt.filter(([t]) => t >= 201 && t < 300)).toEqual([]);
    expect(maxActive(420, 600)).toBe(1);
  });

  it('handler starts hold the limit even when reserve replies arrive with uneven delays', () => {
    const starts: number[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store: new JitteryStore(),
        pipelines: [
          definePipeline<number>({
            queue: 'q',
            concurrency: 10,
            rateLimit: { allowed: 10, periodMs: 100 },
            handler: (job) => {
              starts.push(asyncScheduler.now());
              return timer(1).pipe(map(() => job.data));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'q',
        Array.from({ length: 300 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 3_000 }).subscribe();
    });
    expect(maxInAnyWindow(starts, 100)).toBeLessThanOrEqual(10); // what the handler saw
    expect(starts.length).toBeGreaterThanOrEqual(240);
  });

  it('two workers sharing a limit: handler starts hold it even when one worker’s replies come late', () => {
    const starts: number[] = [];
    const shared = new MemoryStore();
    // Worker B sees the same store, but every other reservation it gets arrives 30 ms late.
    let answers = 0;
    const lagging = new Proxy(shared, {
      get(target, prop, receiver) {
        if (prop === 'reserve') {
          return <T>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> =>
            target
              .reserve<T>(queue, n, options)
              .pipe(
                mergeMap((r) => (r.jobs.length > 0 && answers++ % 2 === 0 ? of(r).pipe(delay(30)) : of(r))),
              );
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const pipeline = () =>
      definePipeline<number>({
        queue: 'q',
        concurrency: 10,
        rateLimit: { allowed: 10, periodMs: 100, key: 'provider' },
        handler: (job) => {
          starts.push(asyncScheduler.now());
          return timer(1).pipe(map(() => job.data));
        },
      });
    newTestScheduler().run(() => {
      const a = new Worker({ store: shared, pipelines: [pipeline()], logger: silentLogger });
      const b = new Worker({ store: lagging, pipelines: [pipeline()], logger: silentLogger });
      shared.enqueue(Array.from({ length: 400 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
      a.start();
      b.start();
      asyncScheduler.schedule(() => {
        a.drain({ timeoutMs: 0 }).subscribe();
        b.drain({ timeoutMs: 0 }).subscribe();
      }, 3_000);
    });
    expect(maxInAnyWindow(starts, 100)).toBeLessThanOrEqual(10);
    expect(starts.length).toBeGreaterThanOrEqual(240);
  });

  it.each(stores)(
    'global concurrency (%s): two workers of concurrency 5 never run more than 3 jobs of the queue at once',
    (_, storeFor) => {
      const shared = storeFor('q');
      let running = 0;
      let most = 0;
      let done = 0;
      const pipeline = () =>
        definePipeline<number>({
          queue: 'q',
          concurrency: 5,
          globalConcurrency: 3,
          handler: (job) => {
            running++;
            most = Math.max(most, running);
            return timer(10).pipe(
              map(() => {
                running--;
                done++;
                return job.data;
              }),
            );
          },
        });
      newTestScheduler().run(() => {
        const a = new Worker({ store: shared, pipelines: [pipeline()], logger: silentLogger });
        const b = new Worker({ store: shared, pipelines: [pipeline()], logger: silentLogger });
        shared.enqueue(Array.from({ length: 60 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
        a.start();
        b.start();
        asyncScheduler.schedule(() => {
          a.drain({ timeoutMs: 0 }).subscribe();
          b.drain({ timeoutMs: 0 }).subscribe();
        }, 2_000);
      });
      expect(most).toBe(3);
      expect(done).toBe(60);
    },
  );

  it.each(stores)(
    'a provider refusal ({ retryAfter }) pauses every worker sharing the limit, and the job goes back without spending an attempt (%s)',
    (_, storeFor) => {
      const shared = storeFor('q');
      const starts: [string, number][] = [];
      const completed: { id: string; attempt: number; at: number }[] = [];
      let refusedAt = -1;
      const drained: boolean[] = [];
      const pipeline = (name: string) =>
        definePipeline<number>({
          queue: 'q',
          concurrency: 4,
          rateLimit: { allowed: 100, periodMs: 1000, key: 'provider' },
          handler: (job) => {
            starts.push([name, asyncScheduler.now()]);
            if (job.data === 10 && refusedAt < 0) {
              refusedAt = asyncScheduler.now();
              return { retryAfter: 700 };
            }
            return timer(5).pipe(
              map(() => {
                completed.push({ id: String(job.data), attempt: job.attempt, at: asyncScheduler.now() });
                return job.data;
              }),
            );
          },
        });
      newTestScheduler().run(() => {
        const a = new Worker({ store: shared, pipelines: [pipeline('a')], logger: silentLogger });
        const b = new Worker({ store: shared, pipelines: [pipeline('b')], logger: silentLogger });
        shared.enqueue(Array.from({ length: 40 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
        a.start();
        b.start();
        asyncScheduler.schedule(() => {
          // Both drain completely: listening for pauses ends with the pipeline.
          a.drain({ timeoutMs: 1000 }).subscribe((r) => drained.push(r.drained));
          b.drain({ timeoutMs: 1000 }).subscribe((r) => drained.push(r.drained));
        }, 5_000);
      });
      expect(refusedAt).toBeGreaterThanOrEqual(0);
      // Nothing started, in either worker, while the pause lasted (the refusal itself aside).
      const during = starts.filter(([, at]) => at > refusedAt && at < refusedAt + 700);
      expect(during).toEqual([]);
      expect(new Set(starts.map(([name]) => name))).toEqual(new Set(['a', 'b']));
      expect(completed).toHaveLength(40);
      // The refused job ran again after the pause, still on its first attempt.
      const again = completed.find((c) => c.id === '10');
      expect(again?.attempt).toBe(1);
      expect(again!.at).toBeGreaterThanOrEqual(refusedAt + 700);
      expect(drained).toEqual([true, true]);
    },
  );

  it.each(stores)(
    'a limit changed store-wide at runtime takes effect at the next reserve of a running worker (%s)',
    (_, storeFor) => {
      const store = storeFor('q');
      const starts: number[] = [];
      newTestScheduler().run(() => {
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              concurrency: 10,
              rateLimit: { allowed: 40, periodMs: 1000 },
              handler: (job) => {
                starts.push(asyncScheduler.now());
                return job.data;
              },
            }),
          ],
        });
        store.enqueue(Array.from({ length: 400 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
        worker.start();
        asyncScheduler.schedule(() => {
          void store.setRateLimit?.('q', 'q', { allowed: 5, periodMs: 1000 });
        }, 2_000);
        asyncScheduler.schedule(() => {
          worker.drain({ timeoutMs: 0 }).subscribe();
        }, 6_000);
      });
      const inWindow = (from: number) => starts.filter((t) => t >= from && t < from + 1000).length;
      expect(inWindow(1000)).toBeGreaterThan(30); // the worker's own 40 per second
      // From the first full window after the change, the store-wide 5.
      for (const from of [3100, 4000, 4900]) expect(inWindow(from)).toBeLessThanOrEqual(5);
      expect(inWindow(4000)).toBeGreaterThan(0);
    },
  );

  it('several limits on one pipeline (40 per second and 100 per 5 s) and job costs: handler starts hold every one', () => {
    const starts: { at: number; cost: number }[] = [];
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [
          definePipeline<number>({
            queue: 'api',
            concurrency: 20,
            rateLimit: {
              allowed: 40,
              periodMs: 1000,
              also: [{ key: 'api-5s', allowed: 100, periodMs: 5000 }],
            },
            handler: (job) => {
              starts.push({ at: asyncScheduler.now(), cost: job.cost ?? 1 });
              return timer(3).pipe(map(() => job.data));
            },
          }),
        ],
      });
      // Most jobs cost 1; every fifth costs 7 (a heavier call).
      h.enqueueAt(
        0,
        'api',
        Array.from({ length: 400 }, (_, i) => ({
          data: i,
          ...(i % 5 === 4 ? { options: { cost: 7 } } : {}),
        })),
      );
      h.run({ until: 12_000 }).subscribe();
    });
    /** The most cost started in any window of `periodMs`. */
    const maxCost = (periodMs: number): number => {
      let best = 0;
      for (let i = 0, from = 0, sum = 0; i < starts.length; i++) {
        sum += starts[i]!.cost;
        while (starts[from]!.at <= starts[i]!.at - periodMs) sum -= starts[from++]!.cost;
        best = Math.max(best, sum);
      }
      return best;
    };
    expect(maxCost(1000)).toBeLessThanOrEqual(40);
    expect(maxCost(5000)).toBeLessThanOrEqual(100);
    // The longer limit is what holds it back: about 100 per 5 s, not 40 per second.
    const spent = starts.filter((s) => s.at < 12_000).reduce((sum, s) => sum + s.cost, 0);
    expect(spent).toBeGreaterThan(200);
    expect(spent).toBeLessThanOrEqual(300);
    // In order: a heavy job waits its turn rather than being skipped by the light ones behind it.
    expect(starts.some((s) => s.cost === 7)).toBe(true);
  });
});

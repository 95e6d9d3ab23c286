import {
  asyncScheduler,
  defer,
  finalize,
  map,
  mergeMap,
  type Observable,
  type SchedulerLike,
  throwError,
  timer,
} from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import {
  definePipeline,
  fixed,
  InvalidArgumentError,
  MemoryStore,
  Queue,
  silentLogger,
  Telemetry,
  Worker,
  WorkerStateError,
  type CloseResult,
  type ExtendResult,
  type LeaseRef,
  type Outcome,
  type PipelineStatus,
  type Settlement,
  type SettleResult,
  type TelemetryEvent,
} from '@sluice/core';
import { newTestScheduler } from './pipeline/helpers';

/** Outcomes as `kind:data`, for marble values. */
const brief = map((o: Outcome) => `${o.kind}:${String(o.job.data)}`);

const echo = definePipeline<string, string>({ queue: 'q', handler: (job) => job.data });

describe('Worker', () => {
  describe('lifecycle', () => {
    it('throws WorkerStateError when started twice or after close', async () => {
      const worker = new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [echo] });
      worker.start();
      expect(() => worker.start()).toThrow(WorkerStateError);
      expect(() => worker.start()).toThrow('cannot start a worker that is running');
      await worker.close();
      expect(() => worker.start()).toThrow('cannot start a worker that is closed');
    });

    it('throws InvalidArgumentError for two pipelines with the same name', () => {
      const a = definePipeline({ queue: 'emails', handler: () => 1 });
      const b = definePipeline({ queue: 'emails', handler: () => 2 });
      expect(() => new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [a, b] })).toThrow(
        InvalidArgumentError,
      );
      expect(() => new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [a, b] })).toThrow(
        'two pipelines are named "emails"; give one a distinct name',
      );
      const renamed = definePipeline({ name: 'emails-2', queue: 'emails', handler: () => 2 });
      expect(
        () => new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [a, renamed] }),
      ).not.toThrow();
    });

    it('throws InvalidArgumentError without pipelines', () => {
      expect(() => new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [] })).toThrow(
        'a worker needs at least one pipeline',
      );
    });

    it('throws InvalidArgumentError for an unknown pipeline name', () => {
      const worker = new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [echo] });
      expect(() => worker.pipeline('nope')).toThrow(InvalidArgumentError);
      expect(() => worker.pipeline('nope')).toThrow('no pipeline named "nope"');
      expect(worker.pipeline('q').name).toBe('q');
    });

    it('closes an idle worker drained, completing every outcomes$', async () => {
      const worker = new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [echo] });
      const completed: string[] = [];
      worker.outcomes$.subscribe({ complete: () => completed.push('worker') });
      worker.pipeline('q').outcomes$.subscribe({ complete: () => completed.push('q') });
      worker.start();
      await expect(worker.close()).resolves.toEqual({ drained: true, abandoned: 0 });
      expect(completed.sort()).toEqual(['q', 'worker']);
      // Closing again is harmless.
      await expect(worker.close()).resolves.toEqual({ drained: true, abandoned: 0 });
    });

    it('closes a worker that never started', async () => {
      const worker = new Worker({ store: new MemoryStore(), logger: silentLogger, pipelines: [echo] });
      await expect(worker.close()).resolves.toEqual({ drained: true, abandoned: 0 });
    });

    it('rejects an invalid concurrency on a pipeline handle', () => {
      const handle = new Worker({
        store: new MemoryStore(),
        logger: silentLogger,
        pipelines: [echo],
      }).pipeline('q');
      expect(() => {
        handle.setConcurrency(0);
      }).toThrow(InvalidArgumentError);
      expect(() => {
        handle.setConcurrency(2.5);
      }).toThrow(InvalidArgumentError);
    });
  });

  describe('in virtual time', () => {
    let testScheduler: TestScheduler;

    beforeEach(() => {
      testScheduler = newTestScheduler();
    });

    /** Drains the worker at frame `at` (every test must, or the recovery timer runs forever). */
    function drainAt(worker: Worker, at: number, timeoutMs = 0): { result: CloseResult | undefined } {
      const box: { result: CloseResult | undefined } = { result: undefined };
      asyncScheduler.schedule(() => {
        worker.drain({ timeoutMs }).subscribe((r) => (box.result = r));
      }, at);
      return box;
    }

    it("carries each pipeline's outcomes on its own outcomes$, and all of them on the worker's", () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const store = new MemoryStore();
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<string>({ name: 'a', queue: 'qa', handler: (job) => job.data }),
            definePipeline<string>({ name: 'b', queue: 'qb', handler: (job) => job.data }),
          ],
        });
        hot('10ms x 19ms z').subscribe((data) => store.enqueue([{ queue: 'qa', data }]).subscribe());
        hot('20ms y        ').subscribe((data) => store.enqueue([{ queue: 'qb', data }]).subscribe());
        worker.start();
        drainAt(worker, 100);
        const values = { x: 'completed:x', y: 'completed:y', z: 'completed:z' };
        expectObservable(worker.outcomes$.pipe(brief)).toBe('         10ms x 9ms y 9ms z 69ms |', values);
        expectObservable(worker.pipeline('a').outcomes$.pipe(brief)).toBe('10ms x 19ms z 69ms |', values);
        expectObservable(worker.pipeline('b').outcomes$.pipe(brief)).toBe('20ms y 79ms |', values);
      });
    });

    it('reports live numbers in status()', () => {
      const samples: PipelineStatus[] = [];
      let closed: { result: CloseResult | undefined } = { result: undefined };
      testScheduler.run(({ hot }) => {
        const store = new MemoryStore();
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<number>({
              name: 'slow',
              queue: 'q',
              concurrency: 3,
              prefetch: 2,
              handler: (job) => timer(100).pipe(map(() => job.data)),
            }),
          ],
        });
        store.enqueue(Array.from({ length: 10 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
        const handle = worker.pipeline('slow');
        samples.push(handle.status()); // before start
        worker.start();
        hot('10ms s 9ms p s 9ms r s').subscribe((c) => {
          if (c === 'p') handle.pause();
          else if (c === 'r') handle.resume();
          else samples.push(handle.status());
        });
        closed = drainAt(worker, 50);
      });
      const base = { name: 'slow', queue: 'q', concurrency: 3, budget: 5 };
      expect(samples).toEqual([
        { ...base, paused: false, inFlight: 0, maxInFlight: 0, outstanding: 0 },
        // 3 running and 2 prefetched: the whole budget is reserved, no demand left.
        { ...base, paused: false, inFlight: 5, maxInFlight: 5, outstanding: 0 },
        { ...base, paused: true, inFlight: 5, maxInFlight: 5, outstanding: 0 },
        { ...base, paused: false, inFlight: 5, maxInFlight: 5, outstanding: 0 },
      ]);
      // Drained at 50 with no time to finish: the 5 leased jobs are left to lease recovery.
      expect(closed.result).toEqual({ drained: false, abandoned: 5 });
    });

    it('follows a concurrency set in the store, and returns to its own when it is cleared', () => {
      const running: { at: number; running: number }[] = [];
      const concurrency: number[] = [];
      testScheduler.run(({ hot }) => {
        const store = new MemoryStore();
        let now = 0;
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              handler: (job): Observable<number> => {
                running.push({ at: asyncScheduler.now(), running: ++now });
                return timer(10).pipe(
                  map(() => job.data),
                  finalize(() => now--),
                );
              },
            }),
          ],
        });
        store.enqueue(Array.from({ length: 30 }, (_, i) => ({ queue: 'q', data: i }))).subscribe();
        worker.start();
        hot('24ms s 0ms u 1ms s').subscribe((c) => {
          if (c === 'u') void store.setConcurrency('q', 3);
          else concurrency.push(worker.pipeline('q').status().concurrency);
        });
        hot('50ms c 0ms s').subscribe((c) => {
          if (c === 'c') void store.setConcurrency('q', undefined);
          else concurrency.push(worker.pipeline('q').status().concurrency);
        });
        drainAt(worker, 100);
      });
      const maxRunning = (from: number, to: number): number =>
        Math.max(...running.filter((r) => r.at >= from && r.at < to).map((r) => r.running));
      expect(concurrency).toEqual([1, 3, 1]);
      expect(maxRunning(0, 25)).toBe(1);
      expect(maxRunning(25, 50)).toBe(3);
      // The runs started before 50 finish by 60; from then on one at a time again.
      expect(maxRunning(60, 100)).toBe(1);
      expect(running.filter((r) => r.at === 25)).toHaveLength(2);
    });

    it('returns jobs whose lease expired to the queue and runs them', () => {
      let ids: string[] = [];
      const store = new MemoryStore();
      testScheduler.run(({ hot, expectObservable }) => {
        store
          .enqueue([
            { queue: 'q', data: 'a' },
            { queue: 'q', data: 'b' },
          ])
          .subscribe();
        // Another worker leased both for 10 ms, then vanished.
        store.reserve('q', 2, { leaseMs: 10 }).subscribe((r) => (ids = r.jobs.map((j) => j.id)));
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [definePipeline<string>({ queue: 'q', handler: (job) => `${job.data}@${job.attempt}` })],
        });
        hot('50ms s').subscribe(() => worker.start());
        drainAt(worker, 100);
        expectObservable(
          worker.outcomes$.pipe(map((o) => (o.kind === 'completed' ? String(o.result) : o.kind))),
        ).toBe('50ms (ab) 46ms |', { a: 'a@2', b: 'b@2' });
      });
      expect(ids).toHaveLength(2);
      return Promise.all(ids.map((id) => store.getJob('q', id))).then((recs) => {
        for (const rec of recs) {
          expect(rec).toMatchObject({ state: 'completed', attempt: 2 });
          expect(rec?.errors).toEqual([expect.objectContaining({ name: 'LeaseExpiredError', attempt: 1 })]);
        }
      });
    });

    // A heartbeat carries the leases held when it is sent. One sent while a failed attempt's settle
    // was unanswered carries that attempt's lease, which the store finds gone: if the answer comes
    // after the same worker leased the job's retry, the lost lease is the old attempt's, not the
    // retry's, and must not abort it (the retry would end abandoned and wait out its lease, or be
    // dead by expiry on its last attempt).
    it("does not abort a job's retry for its previous attempt's lost lease", () => {
      const attempts: { attempt: number; signal: AbortSignal }[] = [];
      // Heartbeats are periodic timers: the virtual scheduler goes to the store and the worker
      // themselves (run mode's delegated intervals lose a periodic timer cleared and re-armed in one
      // frame).
      const store = new SlowReplies({ settle: 5, extendLeases: 20 }, testScheduler);
      testScheduler.run(({ expectObservable }) => {
        const worker = new Worker({
          store,
          logger: silentLogger,
          scheduler: testScheduler,
          pipelines: [
            definePipeline<string>({
              queue: 'q',
              leaseMs: 30, // a heartbeat every 10 ms
              backoff: fixed(7),
              idle: { minMs: 1, maxMs: 1 },
              handler: (job, { signal }) => {
                attempts.push({ attempt: job.attempt, signal });
                // Attempt 1 fails at 8: its settle is applied at 8 and answered at 13 (its outcome),
                // so the heartbeat at 10 still carries its lease, finds it gone and is answered at
                // 30. Attempt 2 is leased at 15 and runs until 45; its settle is answered at 50.
                return job.attempt === 1
                  ? timer(8, testScheduler).pipe(
                      mergeMap(() => throwError(() => new Error('attempt 1 fails'))),
                    )
                  : timer(30, testScheduler).pipe(map(() => job.data));
              },
            }),
          ],
        });
        store.enqueue([{ queue: 'q', data: 'x', maxAttempts: 2 }]).subscribe();
        worker.start();
        timer(100, testScheduler).subscribe(() => worker.drain({ timeoutMs: 100 }).subscribe());
        expectObservable(worker.outcomes$.pipe(brief)).toBe('13ms a 36ms b 49ms |', {
          a: 'retrying:x',
          b: 'completed:x',
        });
      });
      expect(attempts.map((a) => [a.attempt, a.signal.aborted])).toEqual([
        [1, false],
        [2, false],
      ]);
      return store.getJob('q', '1').then((rec) => {
        expect(rec && [rec.state, rec.attempt, rec.errors.length]).toEqual(['completed', 2, 1]);
      });
    });

    // A second close() while the first is draining finds the state 'closing', treats the worker as
    // never started (`wasRunning` is false), resolves at once with { drained: true, abandoned: 0 } and
    // shuts everything down, aborting the handlers the first close() was waiting for; that one then
    // resolves only at its timeout, with { drained: false }. worker.ts, drain().
    it('a second close() during a drain waits for the same drain', () => {
      const signals: AbortSignal[] = [];
      const results: [number, CloseResult][] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const store = new MemoryStore();
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              handler: (job, { signal }) => {
                signals.push(signal);
                return timer(50).pipe(map(() => job.data));
              },
            }),
          ],
        });
        store.enqueue([{ queue: 'q', data: 1 }]).subscribe();
        worker.start();
        hot('10ms a 9ms b').subscribe(() => {
          worker.drain({ timeoutMs: 1_000 }).subscribe((r) => results.push([asyncScheduler.now(), r]));
        });
        expectObservable(worker.outcomes$.pipe(brief)).toBe('50ms (a|)', { a: 'completed:1' });
      });
      expect(signals[0]?.aborted).toBe(false);
      expect(results).toEqual([
        [50, { drained: true, abandoned: 0 }],
        [50, { drained: true, abandoned: 0 }],
      ]);
    });

    it('lets in-flight jobs finish on drain, and aborts them past the timeout', () => {
      const signals: AbortSignal[] = [];
      let closed: { result: CloseResult | undefined } = { result: undefined };
      testScheduler.run(({ expectObservable }) => {
        const store = new MemoryStore();
        const worker = new Worker({
          store,
          logger: silentLogger,
          pipelines: [
            definePipeline<number>({
              queue: 'q',
              concurrency: 2,
              handler: (job, { signal }) => {
                signals.push(signal);
                return timer(job.data).pipe(map(() => job.data));
              },
            }),
          ],
        });
        store.enqueue([20, 500].map((data) => ({ queue: 'q', data }))).subscribe();
        worker.start();
        closed = drainAt(worker, 10, 50);
        // 20 finishes during the drain; 500 is still running when the timeout hits at 60.
        expectObservable(worker.outcomes$.pipe(brief)).toBe('20ms a 39ms |', { a: 'completed:20' });
      });
      expect(closed.result).toEqual({ drained: false, abandoned: 1 });
      expect(signals.map((s) => s.aborted)).toEqual([false, true]);
      expect(signals[1]?.reason).toMatchObject({ abortCause: 'shutdown' });
    });
  });
});

describe('Worker: trace context', () => {
  it('hands the producer’s trace context to the handler and to the start event', async () => {
    const store = new MemoryStore();
    const telemetry = new Telemetry();
    const starts: Extract<TelemetryEvent, { type: 'start' }>[] = [];
    telemetry.events$.subscribe((e) => {
      if (e.type === 'start') starts.push(e);
    });
    const seen: unknown[] = [];
    const worker = new Worker({
      store,
      telemetry,
      logger: silentLogger,
      pipelines: [
        definePipeline<number>({
          queue: 'traced',
          handler: (job) => {
            seen.push(job.trace);
          },
        }),
      ],
    });
    const trace = {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'a=1',
    };
    const queue = new Queue<number>(store, 'traced');
    const [traced] = await queue.addBulk([{ data: 1, options: { trace } }]);
    const [plain] = await queue.addBulk([{ data: 2 }]);
    await expect(queue.add(3, { trace: { traceparent: '00-abc' } })).rejects.toThrow(
      /trace\.traceparent must be/,
    );
    worker.start();
    await queue.waitForResult(plain!.id, { timeoutMs: 5000 });
    await queue.waitForResult(traced!.id, { timeoutMs: 5000 });
    await worker.close();
    await store.close();
    expect(seen).toEqual([trace, undefined]);
    expect(starts.map((s) => [s.jobIds, s.traces])).toEqual([
      [[traced!.id], [trace]],
      [[plain!.id], undefined],
    ]);
  });
});

/**
 * A `MemoryStore` whose answers to some calls arrive late, as over a slow connection: each call is
 * applied when it is made (as Redis applies a command when it reads it) and answered `ms` later.
 */
class SlowReplies extends MemoryStore {
  constructor(
    private readonly lateMs: { readonly settle?: number; readonly extendLeases?: number },
    private readonly clock: SchedulerLike,
  ) {
    super({ scheduler: clock });
  }

  override settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
    return late(super.settle(settlements), this.lateMs.settle, this.clock);
  }

  override extendLeases(
    queue: string,
    leases: readonly LeaseRef[],
    leaseMs: number,
  ): Observable<ExtendResult> {
    return late(super.extendLeases(queue, leases, leaseMs), this.lateMs.extendLeases, this.clock);
  }
}

/** Applies the call at subscription and delivers its answer `ms` later. */
function late<R>(call: Observable<R>, ms: number | undefined, clock: SchedulerLike): Observable<R> {
  if (ms === undefined) return call;
  return defer(() => {
    const answers: R[] = [];
    call.subscribe((r) => answers.push(r)); // synchronous in MemoryStore: applied now
    return timer(ms, clock).pipe(mergeMap(() => answers));
  });
}

import {
  asyncScheduler,
  from,
  lastValueFrom,
  map,
  mergeMap,
  NEVER,
  of,
  throwError,
  timer,
  toArray,
} from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import {
  failed,
  InFlight,
  InvalidArgumentError,
  JobAbortedError,
  JobTimeoutError,
  perJob,
  BufferOverflowError,
  processBatches,
  processJobs,
  type BatchHandler,
  type Handled,
  type Handler,
  type Reservation,
  type ReservedJob,
} from '@sluice/core';
import { newTestScheduler, reservedJob } from '../pipeline/helpers';

const a = reservedJob('a', 'a');
const b = reservedJob('b', 'b');
const c = reservedJob('c', 'c');
const d = reservedJob('d', 'd');

/** A reservation of one job. */
const one = (job: ReservedJob<string>): Reservation<string> => ({ jobs: [job] });
/** A reservation of several jobs (one batch for processBatches). */
const many = (...jobs: ReservedJob<string>[]): Reservation<string> => ({ jobs });

const ok = (job: ReservedJob<string>, value: unknown, durationMs: number): Handled<string> => ({
  job,
  durationMs,
  status: 'completed',
  value,
});

/** A single-job handler that takes `ms` frames and returns the payload upper-cased. */
const slow =
  (ms: number, starts?: number[]): Handler<string> =>
  (job) => {
    starts?.push(asyncScheduler.now());
    return timer(ms).pipe(map(() => job.data.toUpperCase()));
  };

describe('processJobs', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  describe('concurrency', () => {
    it('behaves as its documentation marble diagram says', () => {
      const starts: number[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const units = hot('  -a-bc--------|', { a: one(a), b: one(b), c: one(c) });
        const expected = '   -----A-B-C---|';
        const sub = '        ^------------!';
        expectObservable(units.pipe(processJobs(slow(4, starts), { pipeline: 'p', concurrency: 2 }))).toBe(
          expected,
          { A: [ok(a, 'A', 4)], B: [ok(b, 'B', 4)], C: [ok(c, 'C', 4)] },
        );
        expectSubscriptions(units.subscriptions).toBe(sub);
      });
      // c arrives at 4 with both slots busy and starts when a finishes.
      expect(starts).toEqual([1, 3, 5]);
    });

    it('runs one unit at a time by default', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const units = cold('(ab|)', { a: one(a), b: one(b) });
        expectObservable(units.pipe(processJobs(slow(3), { pipeline: 'p' }))).toBe('---A--(B|)', {
          A: [ok(a, 'A', 3)],
          B: [ok(b, 'B', 3)],
        });
      });
    });

    it('follows a concurrency Observable at runtime (1 until its first value)', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const units = cold('   (abcd|)', { a: one(a), b: one(b), c: one(c), d: one(d) });
        const concurrency = hot('5ms x 19ms y', { x: 3, y: 0 });
        const expected = '     10ms A 4ms (BC) - (D|)';
        expectObservable(units.pipe(processJobs(slow(10, starts), { pipeline: 'p', concurrency }))).toBe(
          expected,
          { A: [ok(a, 'A', 10)], B: [ok(b, 'B', 10)], C: [ok(c, 'C', 10)], D: [ok(d, 'D', 10)] },
        );
      });
      // Before 5 only a runs; at 5 two more slots open; d takes a's slot at 10. 0 is ignored.
      expect(starts).toEqual([0, 5, 5, 10]);
    });

    it('lets running units finish when concurrency drops, and starts new ones under the new limit', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const units = cold('   (abcd|)', { a: one(a), b: one(b), c: one(c), d: one(d) });
        const concurrency = hot('x 4ms y', { x: 3, y: 1 });
        const expected = '     10ms (ABC) 5ms (D|)';
        expectObservable(units.pipe(processJobs(slow(10, starts), { pipeline: 'p', concurrency }))).toBe(
          expected,
          {
            A: [ok(a, 'A', 10)],
            B: [ok(b, 'B', 10)],
            C: [ok(c, 'C', 10)],
            D: [ok(d, 'D', 10)],
          },
        );
      });
      expect(starts).toEqual([0, 0, 0, 10]);
    });

    it.each([0, -1, 1.5, Number.NaN])('throws InvalidArgumentError at once for concurrency %p', (n) => {
      expect(() => processJobs(slow(1), { pipeline: 'p', concurrency: n })).toThrow(InvalidArgumentError);
    });
  });

  describe('failure isolation', () => {
    it('turns a throw and an erroring Observable into error values, without touching siblings', () => {
      const signals = new Map<string, AbortSignal>();
      const throwing = new Error('sync throw');
      const erroring = new Error('async error');
      testScheduler.run(({ hot, expectObservable }) => {
        const handler: Handler<string> = (job, { signal }) => {
          signals.set(job.id, signal);
          if (job.id === 'a') throw throwing;
          if (job.id === 'b') return timer(3).pipe(mergeMap(() => throwError(() => erroring)));
          return timer(5).pipe(map(() => 'fine'));
        };
        const units = hot('  -(abc)-----|', { a: one(a), b: one(b), c: one(c) });
        const expected = '   -a--b-c----|';
        expectObservable(units.pipe(processJobs(handler, { pipeline: 'p', concurrency: 3 }))).toBe(expected, {
          a: [{ job: a, durationMs: 0, status: 'failed', error: throwing }],
          b: [{ job: b, durationMs: 3, status: 'failed', error: erroring }],
          c: [ok(c, 'fine', 5)],
        });
      });
      expect([...signals.values()].map((s) => s.aborted)).toEqual([false, false, false]);
    });

    it('turns a rejected promise into an error value and resolves its siblings (real time)', async () => {
      const rejection = new Error('rejected');
      const handler: Handler<string> = (job) =>
        job.id === 'a' ? Promise.reject(rejection) : Promise.resolve(job.data.toUpperCase());
      const out = await lastValueFrom(
        from([one(a), one(b)]).pipe(processJobs(handler, { pipeline: 'p', concurrency: 2 }), toArray()),
      );
      expect(out.flat().map((h) => [h.job.id, h.status])).toEqual([
        ['a', 'failed'],
        ['b', 'completed'],
      ]);
      expect(out.flat()[0]).toMatchObject({ status: 'failed', error: rejection });
      expect(out.flat()[1]).toMatchObject({ status: 'completed', value: 'B' });
    });

    it('forwards an upstream error, aborting the runs in flight', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const handler: Handler<string> = (_job, { signal }) => {
          signals.push(signal);
          return NEVER;
        };
        const units = hot('  -a-#', { a: one(a) }, new Error('upstream'));
        expectObservable(units.pipe(processJobs(handler, { pipeline: 'p' }))).toBe(
          '---#',
          undefined,
          new Error('upstream'),
        );
        expectSubscriptions(units.subscriptions).toBe('^--!');
      });
      expect(signals[0]?.reason).toEqual(expect.objectContaining({ abortCause: 'shutdown' }));
    });
  });

  describe('timeouts', () => {
    it('aborts the handler with JobTimeoutError and reports an error', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const handler: Handler<string> = (_job, { signal }) => {
          signals.push(signal);
          return NEVER;
        };
        const units = hot('  a----|', { a: one(a) });
        const expected = '   20ms (x|)';
        expectObservable(
          units.pipe(
            processJobs(handler, { pipeline: 'p', timeoutMs: 20 }),
            map((handled) => handled.map((h) => [h.status, h.durationMs])),
          ),
        ).toBe(expected, { x: [['failed', 20]] });
      });
      expect(signals[0]?.aborted).toBe(true);
      expect(signals[0]?.reason).toBeInstanceOf(JobTimeoutError);
      expect(signals[0]?.reason).toMatchObject({ jobId: 'a', timeoutMs: 20 });
    });

    it("uses the shortest of the jobs' own timeoutMs over the configured one", () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const quick = reservedJob('q', 'q', { timeoutMs: 5 });
        const units = cold('(x|)', { x: many(a, quick) });
        const batchHandler: BatchHandler<string> = () => NEVER;
        expectObservable(
          units.pipe(
            processBatches(batchHandler, { pipeline: 'p', timeoutMs: 50 }),
            map((handled) => handled.map((h) => (h.status === 'failed' ? h.error : h.status))),
          ),
        ).toBe('5ms (x|)', { x: [new JobTimeoutError('a', 5), new JobTimeoutError('a', 5)] });
      });
    });

    it('does not fire once the handler has finished', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const handler: Handler<string> = (job, { signal }) => {
          signals.push(signal);
          return timer(5).pipe(map(() => job.data));
        };
        expectObservable(
          cold('(a|)', { a: one(a) }).pipe(processJobs(handler, { pipeline: 'p', timeoutMs: 10 })),
        ).toBe('5ms (x|)', { x: [ok(a, 'a', 5)] });
      });
      expect(signals[0]?.aborted).toBe(false);
    });
  });

  describe('flow control and batch results', () => {
    it('reads { snooze } and { cancel } values, and treats other objects as results', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const results: Record<string, unknown> = {
          a: { snooze: 250 },
          b: { cancel: 'not wanted' },
          c: { snooze: 250, note: 'not flow control' },
          d: { snooze: -5 },
        };
        const handler: Handler<string> = (job) => results[job.id];
        expectObservable(
          cold('(abcd|)', { a: one(a), b: one(b), c: one(c), d: one(d) }).pipe(
            processJobs(handler, { pipeline: 'p', concurrency: 4 }),
          ),
        ).toBe('(wxyz|)', {
          w: [{ job: a, durationMs: 0, status: 'snoozed', delayMs: 250 }],
          x: [{ job: b, durationMs: 0, status: 'cancelled', reason: 'not wanted' }],
          y: [ok(c, { snooze: 250, note: 'not flow control' }, 0)],
          z: [{ job: d, durationMs: 0, status: 'snoozed', delayMs: 0 }],
        });
      });
    });

    it('settles every job of a batch with the same plain value, the last value of an Observable', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const batchHandler: BatchHandler<string> = (jobs) => cold('-x-y|', { x: 0, y: jobs.length });
        expectObservable(
          cold('(u|)', { u: many(a, b) }).pipe(processBatches(batchHandler, { pipeline: 'p' })),
        ).toBe('----(x|)', { x: [ok(a, 2, 4), ok(b, 2, 4)] });
      });
    });

    it('settles each job of a batch on its own with perJob([...]) and failed(err)', () => {
      const boom = new Error('item 2 failed');
      testScheduler.run(({ cold, expectObservable }) => {
        const batchHandler: BatchHandler<string> = () =>
          timer(3).pipe(map(() => perJob(['A', failed(boom), { snooze: 100 }, { cancel: 'dup' }])));
        expectObservable(
          cold('(u|)', { u: many(a, b, c, d) }).pipe(processBatches(batchHandler, { pipeline: 'p' })),
        ).toBe('3ms (x|)', {
          x: [
            ok(a, 'A', 3),
            { job: b, durationMs: 3, status: 'failed', error: boom },
            { job: c, durationMs: 3, status: 'snoozed', delayMs: 100 },
            { job: d, durationMs: 3, status: 'cancelled', reason: 'dup' },
          ],
        });
      });
    });

    it('fails every job of a batch when perJob has the wrong number of results', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const batchHandler: BatchHandler<string> = () => perJob(['only one']);
        expectObservable(
          cold('(u|)', { u: many(a, b, c) }).pipe(
            processBatches(batchHandler, { pipeline: 'p' }),
            map((handled) =>
              handled.map((h) =>
                h.status === 'failed' ? `${h.job.id}: ${(h.error as Error).message}` : h.status,
              ),
            ),
          ),
        ).toBe('(x|)', {
          x: [
            'a: batch handler returned 1 results for 3 jobs',
            'b: batch handler returned 1 results for 3 jobs',
            'c: batch handler returned 1 results for 3 jobs',
          ],
        });
      });
    });

    it('fails every job of a batch when the batch handler throws', () => {
      const boom = new Error('batch failed');
      testScheduler.run(({ cold, expectObservable }) => {
        const batchHandler: BatchHandler<string> = () => {
          throw boom;
        };
        expectObservable(
          cold('(u|)', { u: many(a, b) }).pipe(processBatches(batchHandler, { pipeline: 'p' })),
        ).toBe('(x|)', {
          x: [
            { job: a, durationMs: 0, status: 'failed', error: boom },
            { job: b, durationMs: 0, status: 'failed', error: boom },
          ],
        });
      });
    });

    it('gives the handler its pipeline name and a logger', () => {
      const seen: string[] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const handler: Handler<string> = (_job, ctx) => {
          seen.push(ctx.pipeline);
          ctx.logger.info('hello');
          return 'done';
        };
        expectObservable(cold('(a|)', { a: one(a) }).pipe(processJobs(handler, { pipeline: 'emails' }))).toBe(
          '(x|)',
          { x: [ok(a, 'done', 0)] },
        );
      });
      expect(seen).toEqual(['emails']);
    });
  });

  describe('unsubscription and completion', () => {
    it('aborts running handlers with cause shutdown when unsubscribed, and emits nothing for them', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const handler: Handler<string> = (job, { signal }) => {
          signals.push(signal);
          return timer(10).pipe(map(() => job.data));
        };
        const units = hot('  ab----', { a: one(a), b: one(b) });
        const unsub = '      ----!';
        expectObservable(units.pipe(processJobs(handler, { pipeline: 'p', concurrency: 2 })), unsub).toBe(
          '-----',
        );
        expectSubscriptions(units.subscriptions).toBe('^---!');
      });
      expect(signals).toHaveLength(2);
      for (const signal of signals) {
        expect(signal.reason).toBeInstanceOf(JobAbortedError);
        expect(signal.reason).toMatchObject({ abortCause: 'shutdown' });
      }
    });

    it('completes only after the runs in flight and the waiting units have finished', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const units = hot('  ab|', { a: one(a), b: one(b) });
        expectObservable(units.pipe(processJobs(slow(10), { pipeline: 'p' }))).toBe('10ms A 9ms (B|)', {
          A: [ok(a, 'A', 10)],
          B: [ok(b, 'B', 10)],
        });
      });
    });

    it('completes at once on an empty upstream', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        expectObservable(
          cold<Reservation<string>>('---|').pipe(processJobs(slow(10), { pipeline: 'p' })),
        ).toBe('---|');
      });
    });

    it('errors when more than maxBuffered units wait for a slot', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const handler: Handler<string> = (_job, { signal }) => {
          signals.push(signal);
          return NEVER;
        };
        const units = hot('  -abc-', { a: one(a), b: one(b), c: one(c) });
        expectObservable(units.pipe(processJobs(handler, { pipeline: 'p', maxBuffered: 1 }))).toBe(
          '---#',
          undefined,
          new BufferOverflowError('processJobs', 1),
        );
        expectSubscriptions(units.subscriptions).toBe('^--!');
      });
      // a was running and is aborted by the teardown; b and c never started.
      expect(signals).toHaveLength(1);
      expect(signals[0]?.reason).toMatchObject({ abortCause: 'shutdown' });
    });

    it('with maxBuffered 0 runs a unit that finds a free slot', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        expectObservable(
          cold('(a|)', { a: one(a) }).pipe(processJobs(slow(1), { pipeline: 'p', maxBuffered: 0 })),
        ).toBe('-(A|)', { A: [ok(a, 'A', 1)] });
      });
    });
  });

  it('records a completed job with `new`, not as an object literal (V8 may pretenure a literal site)', async () => {
    const emitted = await lastValueFrom(
      of(one(a), one(b)).pipe(
        processJobs((job: ReservedJob<string>) => job.data, { pipeline: 'p', concurrency: 1 }),
        toArray(),
      ),
    );
    const handled = emitted[0]?.[0];
    expect(handled).toEqual(ok(a, 'a', expect.any(Number) as number));
    expect(Object.getPrototypeOf(handled)).not.toBe(Object.prototype);
  });

  describe('with an InFlight registry', () => {
    it('settles jobs aborted before their start without calling the handler', () => {
      const called: string[] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a, b, c]);
        inFlight.abort('a', 'cancelled', 'cancelled by request');
        inFlight.abort('b', 'lease-lost');
        const handler: Handler<string> = (job) => {
          called.push(job.id);
          return job.data;
        };
        expectObservable(
          cold('(abc|)', { a: one(a), b: one(b), c: one(c) }).pipe(
            processJobs(handler, { pipeline: 'p', inFlight, concurrency: 3 }),
          ),
        ).toBe('(xyz|)', {
          x: [{ job: a, durationMs: 0, status: 'cancelled', reason: 'cancelled by request' }],
          y: [{ job: b, durationMs: 0, status: 'abandoned', reason: 'lease-lost' }],
          z: [ok(c, 'c', 0)],
        });
      });
      expect(called).toEqual(['c']);
    });

    it('runs the rest of a batch whose other jobs were aborted before the start', () => {
      const called: string[][] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a, b]);
        inFlight.abort('a', 'cancelled');
        const batchHandler: BatchHandler<string> = (jobs) => {
          called.push(jobs.map((j) => j.id));
          return timer(2).pipe(map(() => 'done'));
        };
        expectObservable(
          cold('(u|)', { u: many(a, b) }).pipe(processBatches(batchHandler, { pipeline: 'p', inFlight })),
        ).toBe('--(x|)', {
          x: [{ job: a, durationMs: 0, status: 'cancelled', reason: 'cancelled' }, ok(b, 'done', 2)],
        });
      });
      expect(called).toEqual([['b']]);
    });

    it('runs the jobs before and after one aborted before the start, in order, and leaves the unit as it was', () => {
      const called: string[][] = [];
      const unit = many(a, b, c);
      testScheduler.run(({ cold, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a, b, c]);
        inFlight.abort('b', 'cancelled');
        const batchHandler: BatchHandler<string> = (jobs) => {
          called.push(jobs.map((j) => j.id));
          return timer(2).pipe(map(() => 'done'));
        };
        expectObservable(
          cold('(u|)', { u: unit }).pipe(processBatches(batchHandler, { pipeline: 'p', inFlight })),
        ).toBe('--(x|)', {
          x: [
            { job: b, durationMs: 0, status: 'cancelled', reason: 'cancelled' },
            ok(a, 'done', 2),
            ok(c, 'done', 2),
          ],
        });
      });
      expect(called).toEqual([['a', 'c']]);
      expect(unit.jobs.map((j) => j.id)).toEqual(['a', 'b', 'c']);
    });

    it('on a cancellation during the run, cancels that job and snoozes the others of its batch for 0 ms', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a, b, c]);
        hot('5ms x').subscribe(() => inFlight.abort('b', 'cancelled', 'stop'));
        const batchHandler: BatchHandler<string> = (_jobs, { signal }) => {
          signals.push(signal);
          return NEVER;
        };
        expectObservable(
          cold('(u|)', { u: many(a, b, c) }).pipe(processBatches(batchHandler, { pipeline: 'p', inFlight })),
        ).toBe('5ms (x|)', {
          x: [
            { job: a, durationMs: 5, status: 'snoozed', delayMs: 0 },
            { job: b, durationMs: 5, status: 'cancelled', reason: 'job b aborted (cancelled): stop' },
            { job: c, durationMs: 5, status: 'snoozed', delayMs: 0 },
          ],
        });
      });
      expect(signals[0]?.reason).toBeInstanceOf(JobAbortedError);
      expect(signals[0]?.reason).toMatchObject({ jobId: 'b', abortCause: 'cancelled' });
    });

    it('abandons a job whose lease is lost during the run', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a]);
        hot('3ms x').subscribe(() => inFlight.abort('a', 'lease-lost', 'taken over'));
        expectObservable(
          cold('(a|)', { a: one(a) }).pipe(processJobs(() => NEVER, { pipeline: 'p', inFlight })),
        ).toBe('3ms (x|)', {
          x: [
            { job: a, durationMs: 3, status: 'abandoned', reason: 'job a aborted (lease-lost): taken over' },
          ],
        });
      });
    });

    it('detaches the handler when it finishes, so a late abort reaches nothing', () => {
      const signals: AbortSignal[] = [];
      let lateAbortFound: boolean | undefined;
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a]);
        hot('5ms x').subscribe(() => (lateAbortFound = inFlight.abort('a', 'cancelled')));
        const handler: Handler<string> = (job, { signal }) => {
          signals.push(signal);
          return timer(2).pipe(map(() => job.data));
        };
        expectObservable(
          cold('(a|)', { a: one(a) }).pipe(processJobs(handler, { pipeline: 'p', inFlight })),
        ).toBe('--(x|)', { x: [ok(a, 'a', 2)] });
      });
      // The job is still registered (the settle stage removes it), but its handler is gone.
      expect(lateAbortFound).toBe(true);
      expect(signals[0]?.aborted).toBe(false);
    });

    // runUnit attaches the unit's AbortController to every job, also to those aborted before the start
    // and settled at once, and detaches only the jobs it ran. A second abort of such a job (a second
    // cancel request, say) then aborts the handler still running its siblings: b is snoozed instead
    // of completing. operators/process-jobs.ts, runUnit: `inFlight?.attach(job.id, controller)` for
    // a job with a pending abort.
    it('a second abort of a job settled before the start does not abort its siblings', () => {
      const signals: AbortSignal[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const inFlight = new InFlight();
        inFlight.add([a, b]);
        inFlight.abort('a', 'cancelled');
        hot('5ms x').subscribe(() => inFlight.abort('a', 'cancelled'));
        const batchHandler: BatchHandler<string> = (_jobs, { signal }) => {
          signals.push(signal);
          return timer(10).pipe(map(() => 'done'));
        };
        expectObservable(
          cold('(u|)', { u: many(a, b) }).pipe(processBatches(batchHandler, { pipeline: 'p', inFlight })),
        ).toBe('10ms (x|)', {
          x: [{ job: a, durationMs: 0, status: 'cancelled', reason: 'cancelled' }, ok(b, 'done', 10)],
        });
      });
      expect(signals[0]?.aborted).toBe(false);
    });
  });
});

describe('one handler call', () => {
  it('emits exactly one array for a job and completes, also for a failure', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold('(u|)', { u: one(a) }).pipe(processJobs(() => of(1, 2, 3), { pipeline: 'p' })),
      ).toBe('(x|)', { x: [ok(a, 3, 0)] });
      const boom = new Error('boom');
      expectObservable(
        cold('(u|)', { u: one(b) }).pipe(processJobs(() => throwError(() => boom), { pipeline: 'p' })),
      ).toBe('(x|)', { x: [{ job: b, durationMs: 0, status: 'failed', error: boom }] });
    });
  });

  it('aborts the handler with cause shutdown when unsubscribed before it finishes', () => {
    const signals: AbortSignal[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const handler: Handler<string> = (_job, { signal }) => {
        signals.push(signal);
        return NEVER;
      };
      expectObservable(
        cold('(u|)', { u: one(a) }).pipe(processJobs(handler, { pipeline: 'p', timeoutMs: 50 })),
        '---!',
      ).toBe('---');
    });
    expect(signals[0]?.reason).toBeInstanceOf(JobAbortedError);
    expect(signals[0]?.reason).toMatchObject({ jobId: 'a', abortCause: 'shutdown' });
  });

  it('ignores a promise that settles after unsubscription (real time)', async () => {
    let resolve: (value: string) => void = () => undefined;
    const emitted: unknown[] = [];
    const sub = from([one(a)])
      .pipe(processJobs(() => new Promise<string>((r) => (resolve = r)), { pipeline: 'p' }))
      .subscribe((handled) => emitted.push(handled));
    sub.unsubscribe();
    resolve('late');
    await Promise.resolve();
    expect(emitted).toEqual([]);
  });

  it('runs each job of a reservation as its own call, in order', () => {
    const seen: string[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const handler: Handler<string> = (job) => {
        seen.push(job.data);
        return job.data.toUpperCase();
      };
      expectObservable(
        cold('(u|)', { u: many(a, b, c) }).pipe(processJobs(handler, { pipeline: 'p', concurrency: 2 })),
      ).toBe('(xyz|)', { x: [ok(a, 'A', 0)], y: [ok(b, 'B', 0)], z: [ok(c, 'C', 0)] });
    });
    expect(seen).toEqual(['a', 'b', 'c']);
  });
});

import { defer, map, type Observable, Subject, tap, timer } from 'rxjs';
import type { RunHelpers, TestScheduler } from 'rxjs/testing';
import {
  Demand,
  fixed,
  InFlight,
  JobTimeoutError,
  MemoryStore,
  PermanentError,
  settle,
  StoreClosedError,
  toErrorInfo,
  type BackoffPolicy,
  type Handled,
  type Outcome,
  type ReservedJob,
  type SettleResult,
  type Settlement,
  type Store,
} from '@sluice/core';
import { HeldMark, settleCalls, toSettlement } from '@sluice/core/internal';
import { newTestScheduler, recordingLogger, reservedJob, stubStore } from '../pipeline/helpers';

/** A demand channel that records what settle gives back to it. */
class RecordingDemand extends Demand {
  constructor(private readonly log: number[]) {
    super({ initial: 0 });
  }
  override request(n: number): void {
    this.log.push(n);
    super.request(n);
  }
}

const ok = <T>(job: ReservedJob<T>, value: unknown, durationMs = 1): Handled<T> => ({
  job,
  durationMs,
  status: 'completed',
  value,
});
const error = <T>(job: ReservedJob<T>, err: unknown, durationMs = 1): Handled<T> => ({
  job,
  durationMs,
  status: 'failed',
  error: err,
});

/** Outcomes as `kind:id`, for marble values. */
const brief = map((o: Outcome) => `${o.kind}:${o.job.id}`);

describe('toSettlement', () => {
  const job = reservedJob('j', 'data', { attempt: 2, maxAttempts: 3 });
  const base = { queue: 'q', id: 'j', token: 'j.1' };
  const backoff: BackoffPolicy = (attempt) => attempt * 1_000;

  it('completes an ok job with its result and duration', () => {
    expect(toSettlement(ok(job, { sent: true }, 12), backoff)).toEqual({
      ...base,
      kind: 'completed',
      result: { sent: true },
      durationMs: 12,
    });
  });

  it('makes a completion with `new`, not as an object literal (V8 may pretenure a literal site)', () => {
    const completion = toSettlement(ok(job, undefined, 1), backoff)!;
    expect(Object.getPrototypeOf(completion)).not.toBe(Object.prototype);
    expect(Object.keys(completion).sort()).toEqual(['durationMs', 'id', 'kind', 'queue', 'result', 'token']);
  });

  it('retries a failed job after backoff(attempt, error, job)', () => {
    const calls: unknown[][] = [];
    const spy: BackoffPolicy = (...args) => {
      calls.push(args);
      return 750;
    };
    const boom = new Error('boom');
    expect(toSettlement(error(job, boom), spy)).toEqual({
      ...base,
      kind: 'retrying',
      delayMs: 750,
      error: toErrorInfo(boom),
    });
    expect(calls).toEqual([[2, toErrorInfo(boom), job]]);
  });

  it('dead-letters a job that failed its last attempt', () => {
    const last = reservedJob('j', 'data', { attempt: 3, maxAttempts: 3 });
    expect(toSettlement(error(last, new Error('boom')), backoff)).toMatchObject({
      kind: 'dead',
      reason: 'failed 3 of 3 attempts: boom',
      error: { name: 'Error', message: 'boom' },
    });
  });

  it('dead-letters a PermanentError at once, whatever attempts are left', () => {
    const first = reservedJob('j', 'data', { attempt: 1, maxAttempts: 10 });
    expect(toSettlement(error(first, new PermanentError('hard bounce')), backoff)).toMatchObject({
      kind: 'dead',
      reason: 'permanent failure: hard bounce',
      error: { name: 'PermanentError', code: 'ERR_SLUICE_PERMANENT' },
    });
  });

  it('retries a timeout like any other failure', () => {
    expect(toSettlement(error(job, new JobTimeoutError('j', 50)), backoff)).toMatchObject({
      kind: 'retrying',
      delayMs: 2_000,
      error: { name: 'JobTimeoutError' },
    });
  });

  it('describes a non-Error failure', () => {
    expect(toSettlement(error(job, { reason: 'weird' }), backoff)).toMatchObject({
      kind: 'retrying',
      error: { name: 'NonError', message: '{"reason":"weird"}' },
    });
  });

  it.each([
    ['returns NaN', () => Number.NaN],
    ['returns a negative delay', () => -5],
    ['returns Infinity', () => Number.POSITIVE_INFINITY],
    [
      'throws',
      () => {
        throw new Error('bad policy');
      },
    ],
  ])('retries at once when the backoff policy %s', (_name, policy: BackoffPolicy) => {
    expect(toSettlement(error(job, new Error('boom')), policy)).toMatchObject({
      kind: 'retrying',
      delayMs: 0,
    });
  });

  it('snoozes and cancels', () => {
    expect(toSettlement({ job, durationMs: 3, status: 'snoozed', delayMs: 400 }, backoff)).toEqual({
      ...base,
      kind: 'snoozed',
      delayMs: 400,
    });
    expect(toSettlement({ job, durationMs: 3, status: 'cancelled', reason: 'not wanted' }, backoff)).toEqual({
      ...base,
      kind: 'cancelled',
      reason: 'not wanted',
    });
  });

  it('dead-letters an invalid payload with the reason', () => {
    const reason = 'payload failed the schema: /to must be string';
    expect(toSettlement({ job, durationMs: 0, status: 'invalid', reason }, backoff)).toEqual({
      ...base,
      kind: 'dead',
      reason,
      error: { name: 'PayloadValidationError', message: reason },
    });
  });

  it('writes nothing for an abandoned job', () => {
    expect(toSettlement({ job, durationMs: 3, status: 'abandoned', reason: 'lease lost' }, backoff)).toBe(
      undefined,
    );
  });
});

describe('settle', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  /** Adds one job per payload to queue `q` and reserves them all (at the current virtual time). */
  function reserve(store: MemoryStore, data: readonly string[], maxAttempts = 5): ReservedJob<string>[] {
    store.enqueue(data.map((d) => ({ queue: 'q', data: d, maxAttempts }))).subscribe();
    let jobs: ReservedJob<string>[] = [];
    store.reserve<string>('q', data.length, { leaseMs: 10_000 }).subscribe((r) => (jobs = [...r.jobs]));
    return jobs;
  }

  /**
   * A store whose first settle call fails with `error` as the marble `failure` says, and whose later
   * calls apply every settlement at once; the virtual time each call was subscribed at goes to
   * `subscribed`.
   */
  function failingOnce(
    cold: RunHelpers['cold'],
    subscribed: number[],
    failure: string,
    error: unknown,
  ): Store {
    return stubStore({
      settle: (settlements: readonly Settlement[]) =>
        defer(() => {
          subscribed.push(testScheduler.now());
          return subscribed.length === 1
            ? cold<readonly SettleResult[]>(failure, undefined, error)
            : cold('(r|)', {
                r: settlements.map((s): SettleResult => ({ id: s.id, applied: true, at: 0 })),
              });
        }),
    });
  }

  /** Reserves the next ready job of queue `q`. */
  function reserveReady(store: MemoryStore): ReservedJob<string> | undefined {
    let job: ReservedJob<string> | undefined;
    store.reserve<string>('q', 1, { leaseMs: 10_000 }).subscribe((r) => (job = r.jobs[0]));
    return job;
  }

  describe('over a MemoryStore', () => {
    it("emits each outcome with the store's at, and retryAt/until from its runAt", () => {
      const store = new MemoryStore();
      const outcomes: Outcome<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const [a, b, c, d, e] = reserve(store, ['a', 'b', 'c', 'd', 'e']);
        const handled = hot<readonly Handled<string>[]>('10ms a 9ms b 9ms c 9ms d 9ms e', {
          a: [ok(a!, 'A', 7)],
          b: [error(b!, new Error('boom'), 3)],
          c: [{ job: c!, durationMs: 2, status: 'snoozed', delayMs: 50 }],
          d: [{ job: d!, durationMs: 4, status: 'cancelled', reason: 'not wanted' }],
          e: [error(e!, new PermanentError('hard bounce'))],
        });
        // One subscription only: a second one would settle every job again (and be refused).
        const out = handled.pipe(
          settle<string>({ store, pipeline: 'p', backoff: fixed(100) }),
          tap((o) => outcomes.push(o)),
        );
        expectObservable(out.pipe(brief)).toBe('10ms a 9ms b 9ms c 9ms d 9ms e', {
          a: 'completed:1',
          b: 'retrying:2',
          c: 'snoozed:3',
          d: 'cancelled:4',
          e: 'dead:5',
        });
      });
      expect(outcomes).toEqual([
        expect.objectContaining({ kind: 'completed', pipeline: 'p', result: 'A', at: 10, durationMs: 7 }),
        expect.objectContaining({
          kind: 'retrying',
          at: 20,
          retryAt: 120,
          durationMs: 3,
          error: expect.objectContaining({ message: 'boom' }),
        }),
        expect.objectContaining({ kind: 'snoozed', at: 30, until: 80 }),
        expect.objectContaining({ kind: 'cancelled', at: 40, reason: 'not wanted' }),
        expect.objectContaining({ kind: 'dead', at: 50, reason: 'permanent failure: hard bounce' }),
      ]);
      // A completion's outcome has exactly the outcome's fields, in this order (JSON, logs), and
      // nothing of its settlement (the lease token stays on the job).
      const completed = outcomes[0];
      expect(Object.keys(completed ?? {})).toEqual(['pipeline', 'job', 'durationMs', 'at', 'kind', 'result']);
      expect(completed).toEqual({
        pipeline: 'p',
        job: expect.objectContaining({ data: 'a' }),
        durationMs: 7,
        at: 10,
        kind: 'completed',
        result: 'A',
      });
    });

    it('retries with the backoff delay, then dead-letters the job after maxAttempts', () => {
      const store = new MemoryStore();
      const outcomes: Outcome<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const [first] = reserve(store, ['x'], 2);
        const handled = new Subject<readonly Handled<string>[]>();
        hot('5ms a').subscribe(() => {
          handled.next([error(first!, new Error('down'))]);
        });
        // The retry is due at 105: reserve the second attempt at 110 and fail it too.
        hot('110ms b').subscribe(() => {
          handled.next([error(reserveReady(store)!, new Error('still down'))]);
        });
        const out = handled.pipe(
          settle<string>({ store, pipeline: 'p', backoff: fixed(100) }),
          tap((o) => outcomes.push(o)),
        );
        expectObservable(out.pipe(brief)).toBe('5ms r 104ms d', { r: 'retrying:1', d: 'dead:1' });
      });
      expect(outcomes).toEqual([
        expect.objectContaining({ kind: 'retrying', at: 5, retryAt: 105 }),
        expect.objectContaining({ kind: 'dead', at: 110, reason: 'failed 2 of 2 attempts: still down' }),
      ]);
      expect(outcomes[1]?.job.attempt).toBe(2);
    });

    it('dead-letters an invalid payload with the violation as the reason', async () => {
      const store = new MemoryStore();
      const reason = 'payload failed the schema: / must be object';
      let id = '';
      testScheduler.run(({ hot, expectObservable }) => {
        const [a] = reserve(store, ['a']);
        id = a!.id;
        const handled = hot<readonly Handled<string>[]>('-a', {
          a: [{ job: a!, durationMs: 0, status: 'invalid', reason }],
        });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p' }),
            map((o) => (o.kind === 'dead' ? [o.reason, o.error?.name] : o.kind)),
          ),
        ).toBe('-x', { x: [reason, 'PayloadValidationError'] });
      });
      expect(await store.getJob('q', id)).toMatchObject({ state: 'dead', reason });
    });
  });

  describe('grouping', () => {
    /** A store whose settle answers after `frames`, with every settlement applied at that time. */
    function slowStore(
      helpers: RunHelpers,
      frames: number,
    ): { store: Store; calls: string[][]; replies: ReturnType<RunHelpers['cold']>[] } {
      const calls: string[][] = [];
      const replies: ReturnType<RunHelpers['cold']>[] = [];
      const store = stubStore({
        settle: (settlements: readonly Settlement[]) => {
          calls.push(settlements.map((s) => s.id));
          const reply = helpers.cold(`${'-'.repeat(frames)}(r|)`);
          replies.push(reply);
          return reply.pipe(
            map(() =>
              settlements.map((s): SettleResult => ({ id: s.id, applied: true, at: testScheduler.now() })),
            ),
          );
        },
      });
      return { store, calls, replies };
    }

    it('writes the first result at once and groups the results that finish during a call into the next', () => {
      const settled: number[] = [];
      let calls: string[][] = [];
      testScheduler.run((helpers) => {
        const { hot, expectObservable, expectSubscriptions } = helpers;
        const fake = slowStore(helpers, 4);
        calls = fake.calls;
        const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => reservedJob(id, id));
        const upstream = 'a-bc------d-|';
        const expected = '----a---(bc)--(d|)';
        const handled = hot<readonly Handled<string>[]>(upstream, {
          a: [ok(a!, 1)],
          b: [ok(b!, 2)],
          c: [ok(c!, 3)],
          d: [ok(d!, 4)],
        });
        expectObservable(
          handled.pipe(
            settle<string>({ store: fake.store, pipeline: 'p', demand: new RecordingDemand(settled) }),
            brief,
          ),
        ).toBe(expected, { a: 'completed:a', b: 'completed:b', c: 'completed:c', d: 'completed:d' });
        testScheduler.flush();
        expectSubscriptions(fake.replies[0]!.subscriptions).toBe('^---!');
        expectSubscriptions(fake.replies[1]!.subscriptions).toBe('----^---!');
        expectSubscriptions(fake.replies[2]!.subscriptions).toBe('----------^---!');
      });
      expect(calls).toEqual([['a'], ['b', 'c'], ['d']]);
      expect(settled).toEqual([1, 2, 1]);
    });

    it('emits the outcomes of each store call in one list with settleCalls, and no list for a call with none', () => {
      testScheduler.run((helpers) => {
        const { hot, expectObservable } = helpers;
        const fake = slowStore(helpers, 4);
        const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => reservedJob(id, id));
        const handled = hot<readonly Handled<string>[]>('a-bc-e----d-|', {
          a: [ok(a!, 1)],
          b: [ok(b!, 2)],
          c: [ok(c!, 3)],
          // Abandoned: nothing to write, so no call and no list.
          e: [{ job: reservedJob('e', 'e'), durationMs: 1, status: 'abandoned', reason: 'lease lost' }],
          d: [ok(d!, 4)],
        });
        expectObservable(
          handled.pipe(
            settleCalls<string>({ store: fake.store, pipeline: 'p' }),
            map((list) => list.map((o) => o.job.id).join('')),
          ),
        ).toBe('----a---b-----(d|)', { a: 'a', b: 'bc', d: 'd' });
      });
    });

    it('writes at most maxPerCall settlements per call', () => {
      let calls: string[][] = [];
      testScheduler.run((helpers) => {
        const fake = slowStore(helpers, 5);
        calls = fake.calls;
        const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((id) => ok(reservedJob(id, id), id));
        const upstream = '-xy';
        const expected = '------a----(bc)-(de)';
        const handled = helpers.hot<readonly Handled<string>[]>(upstream, { x: [a!], y: [b!, c!, d!, e!] });
        helpers
          .expectObservable(
            handled.pipe(settle<string>({ store: fake.store, pipeline: 'p', maxPerCall: 2 }), brief),
          )
          .toBe(expected, {
            a: 'completed:a',
            b: 'completed:b',
            c: 'completed:c',
            d: 'completed:d',
            e: 'completed:e',
          });
      });
      expect(calls).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    });
  });

  describe('refusals and abandoned jobs', () => {
    it('emits no outcome for a refused settlement but still releases its demand and its InFlight entry', () => {
      const store = new MemoryStore();
      const settled: number[] = [];
      const inFlight = new InFlight();
      testScheduler.run(({ hot, expectObservable }) => {
        const [a, b] = reserve(store, ['a', 'b']);
        // b's lease was taken over: the store no longer knows the token this pipeline holds it by.
        const stale = { ...b!, lease: { ...b!.lease, token: 'stale' } };
        inFlight.add([a!, stale]);
        const handled = hot<readonly Handled<string>[]>('-x', { x: [ok(a!, 'A'), ok(stale, 'B')] });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p', inFlight, demand: new RecordingDemand(settled) }),
            brief,
          ),
        ).toBe('-a', { a: 'completed:1' });
      });
      // a and b came from one handler call, so they were written (and released) together.
      expect(settled).toEqual([2]);
      expect(inFlight.size).toBe(0);
    });

    it('makes no store call for an abandoned job, and releases it', () => {
      const settled: number[] = [];
      const inFlight = new InFlight();
      const a = reservedJob('a', 'a');
      const store = stubStore({}); // any call throws
      testScheduler.run(({ hot, expectObservable }) => {
        inFlight.add([a]);
        const handled = hot<readonly Handled<string>[]>('-x-|', {
          x: [{ job: a, durationMs: 1, status: 'abandoned', reason: 'lease lost' }],
        });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p', inFlight, demand: new RecordingDemand(settled) }),
          ),
        ).toBe('---|');
      });
      expect(settled).toEqual([1]);
      expect(inFlight.has('a')).toBe(false);
    });

    it('returns demand only for jobs it held: a result emitted twice does not raise the budget', () => {
      const settled: number[] = [];
      const inFlight = new InFlight();
      const a = reservedJob('a', 'a');
      const store = stubStore({}); // any call throws
      testScheduler.run(({ hot, expectObservable }) => {
        inFlight.add([a]);
        const abandoned: Handled<string> = {
          job: a,
          durationMs: 1,
          status: 'abandoned',
          reason: 'lease lost',
        };
        const handled = hot<readonly Handled<string>[]>('-x-y-|', { x: [abandoned], y: [abandoned] });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p', inFlight, demand: new RecordingDemand(settled) }),
          ),
        ).toBe('-----|');
      });
      expect(settled).toEqual([1]);
    });
  });

  describe('store failures', () => {
    it('retries a failed store call with backoff; no outcome is lost or duplicated', () => {
      const { logger, entries } = recordingLogger();
      let subscribed: number[] = [];
      let calls: string[][] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const at: number[] = [];
        calls = [];
        subscribed = at;
        let attempts = 0;
        const store = stubStore({
          settle: (settlements: readonly Settlement[]) => {
            calls.push(settlements.map((s) => s.id));
            return defer(() => {
              at.push(testScheduler.now());
              const reply: Observable<unknown> =
                settlements[0]?.id === 'a' && attempts++ < 2
                  ? cold('-#', undefined, new Error('READONLY'))
                  : cold('-(r|)');
              return reply.pipe(
                map(() =>
                  settlements.map((s): SettleResult => ({
                    id: s.id,
                    applied: true,
                    at: testScheduler.now(),
                  })),
                ),
              );
            });
          },
        });
        const handled = hot<readonly Handled<string>[]>('-a 48ms b', {
          a: [ok(reservedJob('a', 'a'), 'A')],
          b: [ok(reservedJob('b', 'b'), 'B')],
        });
        // a: fails at 2, retried at 102 (100 ms), fails at 103, retried at 303 (200 ms), written at 304.
        // b arrived at 50 and is written after a's call completes.
        expectObservable(handled.pipe(settle<string>({ store, pipeline: 'p', logger }), brief)).toBe(
          '304ms a b',
          { a: 'completed:a', b: 'completed:b' },
        );
      });
      expect(calls).toEqual([['a'], ['b']]);
      expect(subscribed).toEqual([1, 102, 303, 304]);
      expect(entries.map((e) => [e.level, e.message, e.meta?.['attempt']])).toEqual([
        ['warn', 'settle failed; retrying', 1],
        ['warn', 'settle failed; retrying', 2],
      ]);
    });

    it('caps the retry delay at maxRetryDelayMs', () => {
      const subscribed: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        let attempts = 0;
        const store = stubStore({
          settle: (settlements: readonly Settlement[]) =>
            defer(() => {
              subscribed.push(testScheduler.now());
              return (attempts++ < 3 ? cold('#') : cold('(r|)')).pipe(
                map(() => settlements.map((s): SettleResult => ({ id: s.id, applied: true, at: 0 }))),
              );
            }),
        });
        const handled = hot<readonly Handled<string>[]>('a', { a: [ok(reservedJob('a', 'a'), 'A')] });
        expectObservable(
          handled.pipe(settle<string>({ store, pipeline: 'p', maxRetryDelayMs: 150 }), brief),
        ).toBe('400ms a', { a: 'completed:a' });
      });
      // 100, then 200 and 400 capped at 150.
      expect(subscribed).toEqual([0, 100, 250, 400]);
    });

    it('stops at a closed store: no retry, the jobs released to lease recovery, no outcome', () => {
      const { logger, entries } = recordingLogger();
      const settled: number[] = [];
      const inFlight = new InFlight();
      const a = reservedJob('a', 'a');
      const subscribed: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        inFlight.add([a]);
        // Closed at the first call; a retry would have been answered.
        const store = failingOnce(cold, subscribed, '-#', new StoreClosedError('redis'));
        const handled = hot<readonly Handled<string>[]>('-x 199ms |', { x: [ok(a, 'A')] });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p', logger, inFlight, demand: new RecordingDemand(settled) }),
          ),
        ).toBe('- 199ms -|');
      });
      expect(subscribed).toEqual([1]);
      expect(settled).toEqual([1]);
      expect(inFlight.size).toBe(0);
      expect(entries.map((e) => [e.level, e.message, e.meta?.['jobs']])).toEqual([
        ['warn', 'store closed; leaving jobs to lease recovery', 1],
      ]);
    });

    it('treats an answer it cannot read (a store bug) as no answer: released, no outcome, the pipeline goes on', () => {
      const { logger, entries } = recordingLogger();
      const settled: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        let calls = 0;
        const store = stubStore({
          // The first answer is not a list of results; the second is.
          settle: (settlements: readonly Settlement[]) =>
            calls++ === 0
              ? cold('-(r|)', { r: null as unknown as readonly SettleResult[] })
              : cold('-(r|)', {
                  r: settlements.map((s): SettleResult => ({ id: s.id, applied: true, at: 0 })),
                }),
        });
        const handled = hot<readonly Handled<string>[]>('-a 9ms b', {
          a: [ok(reservedJob('a', 'a'), 'A')],
          b: [ok(reservedJob('b', 'b'), 'B')],
        });
        expectObservable(
          handled.pipe(
            settle<string>({ store, pipeline: 'p', logger, demand: new RecordingDemand(settled) }),
            brief,
          ),
        ).toBe('- 9ms --b', { b: 'completed:b' });
      });
      expect(settled).toEqual([1, 1]);
      expect(entries.map((e) => e.message)).toEqual(['store closed; leaving jobs to lease recovery']);
    });

    it('cancels a retry that waits when its output is unsubscribed: no store call after', () => {
      const subscribed: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const store = failingOnce(cold, subscribed, '#', new Error('READONLY'));
        const handled = hot<readonly Handled<string>[]>('a', { a: [ok(reservedJob('a', 'a'), 'A')] });
        // The call fails at 0 and would be sent again at 100; the output is dropped at 50.
        expectObservable(handled.pipe(settle<string>({ store, pipeline: 'p' })), '50ms !').toBe('');
      });
      testScheduler.flush();
      expect(subscribed).toEqual([0]);
    });
  });

  describe('a store that applies calls in order (settlesInOrder)', () => {
    /**
     * A MemoryStore whose settles apply when subscribed but answer 5 ms later (a round trip), and
     * which says so, or not.
     */
    class SlowAnswers extends MemoryStore {
      constructor(readonly settlesInOrder: boolean) {
        super();
      }
      override settle(settlements: readonly Settlement[]): Observable<readonly SettleResult[]> {
        return defer(() => {
          let results: readonly SettleResult[] = [];
          super.settle(settlements).subscribe((r) => (results = r));
          return timer(5).pipe(map(() => results));
        });
      }
    }

    /** Runs two handled jobs through settle at 1 ms and records, per frame, demand and in-flight counts. */
    function run(ordered: boolean) {
      const store = new SlowAnswers(ordered);
      const requested: [number, number][] = [];
      const seen: [number, string, number, number][] = [];
      const inFlight = new InFlight();
      testScheduler.run(({ hot, expectObservable }) => {
        const jobs = reserve(store, ['a', 'b']);
        inFlight.add(jobs);
        const demand = new (class extends Demand {
          override request(n: number): void {
            requested.push([testScheduler.now(), n]);
            seen.push([testScheduler.now(), 'request', inFlight.size, inFlight.held]);
            super.request(n);
          }
        })({ initial: 0 });
        const handled = hot<readonly Handled<string>[]>('-a', { a: jobs.map((j) => ok(j, 'ok')) });
        const out = handled.pipe(
          settle<string>({ store, pipeline: 'p', inFlight, demand }),
          tap(() => seen.push([testScheduler.now(), 'outcome', inFlight.size, inFlight.held])),
          brief,
        );
        expectObservable(out).toBe('------(ab)', { a: 'completed:1', b: 'completed:2' });
      });
      return { requested, seen, inFlight };
    }

    it('gives the demand back when the settle is sent; the leases stay held until it is answered', () => {
      const { requested, seen, inFlight } = run(true);
      // Sent at 1 ms, answered at 6 ms: the demand of both jobs came back at 1 ms.
      expect(requested).toEqual([[1, 2]]);
      // At 1 ms they no longer count against the budget, but heartbeats still extend their leases.
      expect(seen[0]).toEqual([1, 'request', 0, 2]);
      expect(seen.slice(1)).toEqual([
        [6, 'outcome', 0, 0],
        [6, 'outcome', 0, 0],
      ]);
      expect(inFlight.held).toBe(0);
    });

    it('gives it back when the settle is answered, with a store that does not say so', () => {
      const { requested, seen } = run(false);
      expect(requested).toEqual([[6, 2]]);
      expect(seen[0]).toEqual([6, 'request', 0, 0]);
    });

    it('keeps a job leased again before the answer of its earlier settlement came', () => {
      const inFlight = new InFlight();
      const job = reservedJob('j', 'data');
      inFlight.add([job]);
      expect(inFlight.settling('j', 'j.1')).toBe(true);
      expect(inFlight.settling('j', 'j.1')).toBe(false); // its demand comes back once
      expect([inFlight.size, inFlight.held]).toEqual([0, 1]);
      // A retry without delay, taken by the next reserve before the settle's answer came back.
      const again = reservedJob('j', 'data', {
        attempt: 2,
        lease: { token: 'j.2', expiresAt: 30_000, startedAt: 0 },
      });
      inFlight.add([again]);
      // Each lease its own entry: the earlier one, settling, is still extended until its answer.
      expect([inFlight.size, inFlight.held]).toEqual([1, 2]);
      inFlight.settled('j', 'j.1'); // the answer: the new lease stays
      expect(inFlight.jobs()).toEqual([again]);
      // Nor does a settlement of the earlier lease sent now (its attempt outlived its lease and the
      // job was leased again), its removal (a store that answers out of order) or its loss.
      expect(inFlight.settling('j', 'j.1')).toBe(false);
      expect([inFlight.size, inFlight.held]).toEqual([1, 1]);
      expect(inFlight.remove('j', 'j.1')).toBe(false);
      expect(inFlight.abort('j', 'lease-lost', undefined, 'j.1')).toBe(false);
      expect(inFlight.jobs()).toEqual([again]);
      expect(inFlight.remove('j', 'j.2')).toBe(true);
      expect([inFlight.size, inFlight.held]).toEqual([0, 0]);
    });

    it("removes by a job's entry only the lease it was taken under", () => {
      const inFlight = new InFlight();
      const j = reservedJob('j', 'data');
      const k = reservedJob('k', 'data');
      inFlight.add([j, k]);
      const first = inFlight.settlingOf(j);
      expect(first?.job).toBe(j);
      expect(inFlight.settlingOf(j)).toBeUndefined(); // marked once
      const again = reservedJob('j', 'data', {
        attempt: 2,
        lease: { token: 'j.2', expiresAt: 30_000, startedAt: 0 },
      });
      inFlight.add([again]);
      // Both leases held until the earlier one's answer: only the new one counts in the budget.
      expect([inFlight.size, inFlight.held]).toEqual([2, 3]);
      if (first) inFlight.settledHeld(first); // the earlier lease's answer: the new one stays
      expect(inFlight.jobs().map((job) => job.lease.token)).toEqual(['k.1', 'j.2']);
      expect([inFlight.size, inFlight.held]).toEqual([2, 2]);
      // An entry that is not settling removes nothing; one that is, once.
      const started = inFlight.start(again, () => undefined);
      expect(started?.job).toBe(again);
      if (started) inFlight.settledHeld(started);
      expect(inFlight.held).toBe(2);
      const second = inFlight.settlingOf(again);
      expect([inFlight.size, inFlight.held]).toEqual([1, 2]);
      if (second) {
        inFlight.settledHeld(second);
        inFlight.settledHeld(second);
      }
      expect(inFlight.jobs().map((job) => job.lease.token)).toEqual(['k.1']);
      expect([inFlight.size, inFlight.held]).toEqual([1, 1]);
      // The freed slot is used again; the removed job's mark is not taken for the new entry there.
      const m = reservedJob('m', 'data');
      inFlight.add([m]);
      expect(inFlight.start(again, () => undefined)).toBeUndefined();
      expect(inFlight.settlingOf(again)).toBeUndefined();
      expect(inFlight.has('m') && inFlight.has('k') && !inFlight.has('j')).toBe(true);
      expect(inFlight.removeOf(m)).toBe(true);
      expect([inFlight.size, inFlight.held]).toEqual([1, 1]);
      // A copy of a held job (no mark) is found by its id and lease; the mark is invisible.
      expect(k).toEqual(reservedJob('k', 'data'));
      expect(Object.getOwnPropertySymbols(k)).toEqual([]);
      expect(inFlight.removeOf({ ...k })).toBe(true);
      expect([inFlight.size, inFlight.held]).toEqual([0, 0]);
    });

    it('marks a job whose class extends HeldMark in the field it was made with', () => {
      // A store's job class (LeasedJob in @sluice/redis) extends HeldMark: its objects carry the
      // mark from construction. Found by the mark, and nothing of it is visible on the job.
      class OwnJob extends HeldMark {
        constructor(
          readonly id: string,
          readonly lease: ReservedJob['lease'],
        ) {
          super();
        }
      }
      const plain = reservedJob('p', 'data');
      const made = new OwnJob('p', plain.lease);
      const job = Object.assign(made, { ...plain, lease: made.lease }) as unknown as ReservedJob;
      expect(HeldMark.read(job)).toBeUndefined();
      expect(Object.keys(made).sort()).toEqual(Object.keys({ ...plain }).sort());
      const inFlight = new InFlight();
      inFlight.add([job]);
      const held = HeldMark.read(job);
      expect(held?.job).toBe(job);
      // A copy has no mark: found by id and lease instead; the original by its mark.
      expect(HeldMark.read({ ...job })).toBeUndefined();
      expect(inFlight.start(job, () => undefined)).toBe(held);
      expect(inFlight.settlingOf(job)).toBe(held);
      if (held) inFlight.settledHeld(held);
      expect([inFlight.size, inFlight.held]).toEqual([0, 0]);
      // A plain object gets the mark when it is first held.
      inFlight.add([plain]);
      expect(HeldMark.read(plain)?.job).toBe(plain);
      expect(Object.getOwnPropertySymbols(plain)).toEqual([]);
    });

    it("detaches a handler by its job's entry: a later abort is remembered, not delivered", () => {
      const inFlight = new InFlight();
      const job = reservedJob('j', 'data');
      inFlight.add([job]);
      const reasons: string[] = [];
      const held = inFlight.start(job, (reason) => reasons.push(reason.message));
      expect(held?.pending).toBeUndefined();
      expect(inFlight.abort('j', 'cancelled', 'first')).toBe(true);
      expect(reasons).toHaveLength(1);
      if (held) inFlight.detachHeld(held);
      expect(inFlight.abort('j', 'cancelled', 'second')).toBe(true);
      expect(reasons).toHaveLength(1);
      expect(inFlight.start(job, () => undefined)?.pending).toEqual({ cause: 'cancelled', detail: 'second' });
    });

    it('aborts the lease a job is running under when it is held twice', () => {
      const inFlight = new InFlight();
      const job = reservedJob('j', 'data');
      inFlight.add([job]);
      inFlight.settlingOf(job);
      const again = reservedJob('j', 'data', {
        attempt: 2,
        lease: { token: 'j.2', expiresAt: 30_000, startedAt: 0 },
      });
      inFlight.add([again]);
      const reasons: string[] = [];
      inFlight.start(again, (reason) => reasons.push(reason.message));
      // A cancellation names the id alone: it reaches the attempt that runs, not the one settling.
      expect(inFlight.abort('j', 'cancelled', 'by request')).toBe(true);
      expect(reasons).toHaveLength(1);
      inFlight.abortAll('shutdown');
      expect(reasons).toHaveLength(2);
    });
  });

  describe('completion', () => {
    it('completes after the last write when the upstream completes', () => {
      testScheduler.run((helpers) => {
        const replies: ReturnType<RunHelpers['cold']>[] = [];
        const store = stubStore({
          settle: (settlements: readonly Settlement[]) => {
            const reply = helpers.cold('---(r|)');
            replies.push(reply);
            return reply.pipe(
              map(() => settlements.map((s): SettleResult => ({ id: s.id, applied: true, at: 0 }))),
            );
          },
        });
        const handled = helpers.hot<readonly Handled<string>[]>('-a-|', {
          a: [ok(reservedJob('a', 'a'), 'A')],
        });
        helpers
          .expectObservable(handled.pipe(settle<string>({ store, pipeline: 'p' }), brief))
          .toBe('----(a|)', { a: 'completed:a' });
      });
    });

    it('forwards an upstream error', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const handled = hot<readonly Handled<string>[]>('--#', undefined, new Error('upstream'));
        expectObservable(handled.pipe(settle<string>({ store: stubStore({}), pipeline: 'p' }))).toBe(
          '--#',
          undefined,
          new Error('upstream'),
        );
      });
    });
  });
});

describe('settle: results of one turn', () => {
  it('writes the results that finish in one turn of the event loop in one store call, in real time', async () => {
    const calls: string[][] = [];
    const store = stubStore({
      settle: (settlements: readonly Settlement[]) => {
        calls.push(settlements.map((s) => s.id));
        return timer(1).pipe(
          map((): SettleResult[] => settlements.map((s) => ({ id: s.id, applied: true, at: 0 }))),
        );
      },
    });
    const handled = new Subject<readonly Handled<string>[]>();
    const outcomes: string[] = [];
    const done = new Promise<void>((resolve) => {
      handled.pipe(settle({ store, pipeline: 'p' })).subscribe({
        next: (o) => outcomes.push(o.job.id),
        complete: resolve,
      });
    });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => reservedJob(id, id));
    // One turn: a result at once, two more from promise callbacks (handlers finishing together).
    handled.next([ok(a!, 1)]);
    void Promise.resolve()
      .then(() => {
        handled.next([ok(b!, 2)]);
      })
      .then(() => {
        handled.next([ok(c!, 3)]);
      });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // A later turn, the writer idle: a call of its own.
    handled.next([ok(d!, 4)]);
    handled.complete();
    await done;
    expect(calls).toEqual([['a', 'b', 'c'], ['d']]);
    expect(outcomes).toEqual(['a', 'b', 'c', 'd']);
  });
});

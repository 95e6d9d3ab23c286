import { config as rxConfig, map, Observable, queueScheduler, startWith } from 'rxjs';
import type { RunHelpers, TestScheduler } from 'rxjs/testing';
import {
  Demand,
  InFlight,
  InvalidArgumentError,
  MemoryStore,
  source,
  type Reservation,
  type ReservedJob,
  type ReserveOptions,
  type ReserveResult,
  type SourceConfig,
  type Store,
} from '@sluice/core';
import { newTestScheduler, reservedJob, stubStore } from '../pipeline/helpers';

/** A MemoryStore that records when each reserve call was made and for how many jobs. */
class CountingStore extends MemoryStore {
  readonly calls: { at: number; n: number }[] = [];
  override reserve<T = unknown>(
    queue: string,
    n: number,
    options: ReserveOptions,
  ): Observable<ReserveResult<T>> {
    this.calls.push({ at: this.now(), n });
    return super.reserve<T>(queue, n, options);
  }
}

/** Adds one ready job per payload to queue `q`, synchronously. */
function enqueue(store: MemoryStore, payloads: readonly string[]): void {
  store.enqueue(payloads.map((data) => ({ queue: 'q', data }))).subscribe();
}

/** Each reservation as the list of its payloads, for marble values. */
const payloads = map((r: Reservation) => r.jobs.map((job) => job.data));

/** A cold observable of `cold()`, with its subscription log. */
type ColdObservable<T> = Observable<T> & {
  readonly subscriptions: ReturnType<RunHelpers['cold']>['subscriptions'];
};

/** A reserve answer. */
function answer(jobs: readonly ReservedJob[], extra: Partial<ReserveResult> = {}): ReserveResult {
  return { jobs, paused: false, rejected: [], ...extra };
}

/**
 * A fake store whose reserve calls answer, in order, with the given cold observables (the last one
 * repeats). It records each call and keeps every observable it handed out, for subscription checks.
 */
function scriptedStore(
  testScheduler: TestScheduler,
  replies: readonly (() => ColdObservable<ReserveResult>)[],
): {
  store: Store;
  calls: { at: number; n: number; options: ReserveOptions }[];
  handedOut: ColdObservable<ReserveResult>[];
} {
  const calls: { at: number; n: number; options: ReserveOptions }[] = [];
  const handedOut: ColdObservable<ReserveResult>[] = [];
  const store = stubStore({
    reserve: <T>(_queue: string, n: number, options: ReserveOptions) => {
      calls.push({ at: testScheduler.now(), n, options });
      const reply = (
        replies[Math.min(calls.length, replies.length) - 1] as () => ColdObservable<ReserveResult>
      )();
      handedOut.push(reply);
      return reply as Observable<ReserveResult<T>>;
    },
  });
  return { store, calls, handedOut };
}

describe('source', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  function config(overrides: Partial<SourceConfig> & Pick<SourceConfig, 'store' | 'demand'>): SourceConfig {
    return { queue: 'q', leaseMs: 1_000, ...overrides };
  }

  describe('demand', () => {
    it('reserves at most min(demand, maxBatch) per call, and again at once after a full answer', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
        const demand = new Demand({ initial: 5 });
        hot('  10ms r      ').subscribe(() => {
          demand.request(4);
        });
        hot('  20ms c      ').subscribe(() => {
          demand.cancel();
        });
        const expected = '(xy) 6ms (zw) 6ms |';
        expectObservable(source(config({ store, demand, maxBatch: 3 })).pipe(payloads)).toBe(expected, {
          x: ['a', 'b', 'c'],
          y: ['d', 'e'],
          z: ['f', 'g', 'h'],
          w: ['i'],
        });
      });
      expect(store.calls).toEqual([
        { at: 0, n: 3 },
        { at: 0, n: 2 },
        { at: 10, n: 3 },
        { at: 10, n: 1 },
      ]);
    });

    it('never calls the store while demand is 0, even when woken up', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b']);
        const demand = new Demand({ initial: 0 });
        const wakeups = hot('10ms w 9ms w');
        hot('                50ms r      ').subscribe(() => {
          demand.request(1);
        });
        hot('                80ms c      ').subscribe(() => {
          demand.cancel();
        });
        const expected = '   50ms x 29ms |';
        expectObservable(source(config({ store, demand, wakeups })).pipe(payloads)).toBe(expected, {
          x: ['a'],
        });
      });
      // One call, for the one unit of demand; the full answer used it up, so no second call.
      expect(store.calls).toEqual([{ at: 50, n: 1 }]);
    });

    it('reserves back to back while each answer is full', () => {
      testScheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        let next = 0;
        const fake = scriptedStore(testScheduler, [
          () =>
            cold('--(r|)', { r: answer([reservedJob(`j${next}`, next++), reservedJob(`j${next}`, next++)]) }),
        ]);
        const demand = new Demand({ initial: 6 });
        hot('20ms c').subscribe(() => {
          demand.cancel();
        });
        const expected = '--x-y-z 13ms |';
        expectObservable(source(config({ store: fake.store, demand, maxBatch: 2 })).pipe(payloads)).toBe(
          expected,
          { x: [0, 1], y: [2, 3], z: [4, 5] },
        );
        testScheduler.flush();
        expect(fake.handedOut).toHaveLength(3);
        expectSubscriptions(fake.handedOut[0]!.subscriptions).toBe('^-!   ');
        expectSubscriptions(fake.handedOut[1]!.subscriptions).toBe('--^-! ');
        expectSubscriptions(fake.handedOut[2]!.subscriptions).toBe('----^-!');
      });
    });

    it('gives back what a short answer did not use', () => {
      const store = new CountingStore();
      const outstanding: number[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b']);
        const demand = new Demand({ initial: 5 });
        hot('5ms s').subscribe(() => outstanding.push(demand.outstanding));
        hot('9ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store, demand })).pipe(payloads)).toBe('x 8ms |', { x: ['a', 'b'] });
      });
      expect(store.calls).toEqual([{ at: 0, n: 5 }]);
      expect(outstanding).toEqual([3]);
    });
  });

  describe('idle polling', () => {
    it('sleeps after an empty answer, doubling from idle.minMs up to idle.maxMs, and resets after jobs', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        const demand = new Demand({ initial: 5 });
        hot('120ms a').subscribe(() => {
          enqueue(store, ['x']);
        });
        hot('200ms c').subscribe(() => {
          demand.cancel();
        });
        const expected = '150ms x 49ms |';
        expectObservable(
          source(config({ store, demand, idle: { minMs: 10, maxMs: 40 } })).pipe(payloads),
        ).toBe(expected, { x: ['x'] });
      });
      // Sleeps 10, 20, 40, 40, 40 (the job added at 120 waits for the poll at 150); after the short
      // answer at 150 they start again from 10: 10, 10, 20, …
      expect(store.calls.map((c) => c.at)).toEqual([0, 10, 30, 70, 110, 150, 160, 170, 190]);
    });

    it('reserves again at once after a short answer when a wake-up came during the call', () => {
      let calls: { at: number }[] = [];
      testScheduler.run(({ cold, hot }) => {
        const demand = new Demand({ initial: 5 });
        // The first call takes 10 frames and finds nothing; a job is added (wake-up) at frame 5.
        const fake = scriptedStore(testScheduler, [
          () => cold('----------(a|)', { a: answer([]) }),
          () => cold('(a|)', { a: answer([reservedJob('1', 'x')]) }),
        ]);
        calls = fake.calls;
        const wakeups = hot('5ms w');
        const sub = source(config({ store: fake.store, demand, wakeups, idle: { minMs: 100 } })).subscribe();
        hot('50ms c').subscribe(() => {
          sub.unsubscribe();
        });
      });
      // Without the wake-up it would sleep 100 frames after the empty answer at 10.
      expect(calls.map((c) => c.at)).toEqual([0, 10]);
    });

    it('cuts an idle sleep short on a wake-up', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const demand = new Demand({ initial: 5 });
        hot('              20ms a       ').subscribe(() => {
          enqueue(store, ['x']);
        });
        const wakeups = hot('30ms w      ');
        hot('              60ms c       ').subscribe(() => {
          demand.cancel();
        });
        const expected = '  30ms x 29ms |';
        expectObservable(
          source(config({ store, demand, wakeups, idle: { minMs: 100 } })).pipe(payloads),
        ).toBe(expected, { x: ['x'] });
        expectSubscriptions(wakeups.subscriptions).toBe('^ 59ms !');
      });
      expect(store.calls.map((c) => c.at)).toEqual([0, 30]);
    });

    it('sleeps only until nextCheckInMs when the store says a job becomes due sooner', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        store.enqueue([{ queue: 'q', data: 'later', delayMs: 30 }]).subscribe();
        const demand = new Demand({ initial: 1 });
        hot('50ms c').subscribe(() => {
          demand.cancel();
        });
        const expected = '30ms x 19ms |';
        expectObservable(source(config({ store, demand, idle: { minMs: 100 } })).pipe(payloads)).toBe(
          expected,
          { x: ['later'] },
        );
      });
      expect(store.calls.map((c) => c.at)).toEqual([0, 30]);
    });

    it('never sleeps longer than the idle sleep because of nextCheckInMs, and lets a wake-up cut it', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('(r|)', { r: answer([], { nextCheckInMs: 500 }) }),
          () => cold('(r|)', { r: answer([], { nextCheckInMs: 30 }) }),
        ]);
        const demand = new Demand({ initial: 1 });
        const wakeups = hot('35ms w');
        hot('                50ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store: fake.store, demand, wakeups, idle: { minMs: 20 } }))).toBe(
          '50ms |',
        );
        testScheduler.flush();
        // 0: sleeps min(20, 500) = 20. 20: sleeps min(40, 30) = 30, cut short by the wake-up at 35.
        // 35: sleeps min(20, 30) = 20 (a wake-up resets the idle sleep), due after the cancellation.
        expect(fake.calls.map((c) => c.at)).toEqual([0, 20, 35]);
      });
    });
  });

  describe('rate limits', () => {
    it('sleeps exactly retryAfterMs and does not let a wake-up cut that sleep short', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('(r|)', { r: answer([], { retryAfterMs: 40 }) }),
          () => cold('(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 1 });
        const wakeups = hot('10ms w 9ms w');
        hot('                50ms c       ').subscribe(() => {
          demand.cancel();
        });
        const expected = '   40ms x 9ms | ';
        expectObservable(source(config({ store: fake.store, demand, wakeups })).pipe(payloads)).toBe(
          expected,
          { x: ['a'] },
        );
        testScheduler.flush();
        expect(fake.calls.map((c) => c.at)).toEqual([0, 40]);
      });
    });

    it('obeys the rate limit a MemoryStore enforces, whatever the wake-ups', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b', 'c', 'd', 'e']);
        const demand = new Demand({ initial: 5 });
        const wakeups = hot('50ms w');
        hot('                250ms c').subscribe(() => {
          demand.cancel();
        });
        const limit = { key: 'q', allowed: 2, periodMs: 100 };
        const expected = 'x 99ms y 99ms z 49ms |';
        expectObservable(source(config({ store, demand, wakeups, limit })).pipe(payloads)).toBe(expected, {
          x: ['a', 'b'],
          y: ['c', 'd'],
          z: ['e'],
        });
      });
      expect(store.calls).toEqual([
        { at: 0, n: 5 },
        { at: 100, n: 3 },
        { at: 200, n: 1 },
      ]);
    });

    it('hands leaseMs, limit and fill to every reserve call', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 1 });
        const limit = { allowed: 10, periodMs: 1_000 };
        const fill = { count: 5, waitMs: 100 };
        expectObservable(
          source(config({ store: fake.store, demand, leaseMs: 5_000, limit, fill })).pipe(payloads),
          '5ms !',
        ).toBe('x', { x: ['a'] });
        testScheduler.flush();
        expect(fake.calls).toEqual([{ at: 0, n: 1, options: { leaseMs: 5_000, limit, fill } }]);
      });
    });
  });

  describe('pause', () => {
    it('makes no store call while paused and resumes at once when unpaused', () => {
      const store = new CountingStore();
      testScheduler.run(({ cold, hot, expectObservable }) => {
        enqueue(store, ['a', 'b', 'c']);
        const demand = new Demand({ initial: 1 });
        const paused = cold('50ms f 4ms t 24ms f', { f: false, t: true }).pipe(startWith(true));
        const wakeups = hot('10ms w 54ms w');
        hot('                60ms r        ').subscribe(() => {
          demand.request(1);
        });
        hot('                100ms c       ').subscribe(() => {
          demand.cancel();
        });
        const expected = '   50ms x 29ms y 19ms |';
        expectObservable(source(config({ store, demand, paused, wakeups })).pipe(payloads)).toBe(expected, {
          x: ['a'],
          y: ['b'],
        });
      });
      expect(store.calls.map((c) => c.at)).toEqual([50, 80]);
    });

    it('sleeps the longest idle sleep when the store reports the queue paused, until woken', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('(r|)', { r: answer([], { paused: true }) }),
          () => cold('(r|)', { r: answer([], { paused: true }) }),
          () => cold('(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 1 });
        const wakeups = hot('300ms w');
        hot('                400ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(
          source(config({ store: fake.store, demand, wakeups, idle: { minMs: 10, maxMs: 200 } })).pipe(
            payloads,
          ),
        ).toBe('300ms x 99ms |', { x: ['a'] });
        testScheduler.flush();
        expect(fake.calls.map((c) => c.at)).toEqual([0, 200, 300]);
      });
    });
  });

  describe('store failures', () => {
    it('gives back the demand of a failed call and retries after a doubling backoff, never erroring', () => {
      const errors: unknown[] = [];
      const outstanding: number[] = [];
      testScheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('--#', undefined, new Error('connection reset')),
          () => cold('--#', undefined, new Error('connection reset')),
          () => cold('--(r|)', { r: answer([reservedJob('a', 'a'), reservedJob('b', 'b')]) }),
        ]);
        const demand = new Demand({ initial: 2 });
        hot('1ms s 3ms s').subscribe(() => outstanding.push(demand.outstanding));
        hot('50ms c').subscribe(() => {
          demand.cancel();
        });
        const expected = '36ms x 13ms |';
        expectObservable(
          source(
            config({
              store: fake.store,
              demand,
              idle: { minMs: 10 },
              onError: (err) => errors.push(err),
            }),
          ).pipe(payloads),
        ).toBe(expected, { x: ['a', 'b'] });
        testScheduler.flush();
        // Error at 2, sleep 10; error at 14, sleep 20; answered at 36.
        expect(fake.calls.map(({ at, n }) => ({ at, n }))).toEqual([
          { at: 0, n: 2 },
          { at: 12, n: 2 },
          { at: 34, n: 2 },
        ]);
        expectSubscriptions(fake.handedOut[0]!.subscriptions).toBe('^-!');
        expectSubscriptions(fake.handedOut[1]!.subscriptions).toBe('12ms ^-!');
        expectSubscriptions(fake.handedOut[2]!.subscriptions).toBe('34ms ^-!');
      });
      expect(errors).toEqual([new Error('connection reset'), new Error('connection reset')]);
      // In flight at 1 (taken), given back by 5.
      expect(outstanding).toEqual([0, 2]);
    });

    it('treats a store observable that completes without answering as an empty answer', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold<ReserveResult>('-|'),
          () => cold('(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 1 });
        hot('30ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(
          source(config({ store: fake.store, demand, idle: { minMs: 10 } })).pipe(payloads),
        ).toBe('11ms x 18ms |', { x: ['a'] });
      });
    });
  });

  describe('completion', () => {
    it('completes when the demand is cancelled while idle, and makes no more calls', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        const demand = new Demand({ initial: 5 });
        hot('30ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store, demand, idle: { minMs: 20 } }))).toBe('30ms |');
      });
      expect(store.calls.map((c) => c.at)).toEqual([0, 20]);
    });

    it('completes when the demand is cancelled while paused', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const demand = new Demand({ initial: 5 });
        const paused = hot<boolean>('-').pipe(startWith(true));
        hot('30ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store: new CountingStore(), demand, paused }))).toBe('30ms |');
      });
    });

    it('completes after the answer of a call in flight when the demand is cancelled meanwhile', () => {
      testScheduler.run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('----(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 3 });
        hot('2ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store: fake.store, demand })).pipe(payloads)).toBe('----(x|)', {
          x: ['a'],
        });
        testScheduler.flush();
        expectSubscriptions(fake.handedOut[0]!.subscriptions).toBe('^---!');
        expect(fake.handedOut).toHaveLength(1);
      });
    });

    it('completes after a failed call in flight when the demand is cancelled meanwhile', () => {
      testScheduler.run(({ cold, hot, expectObservable }) => {
        const fake = scriptedStore(testScheduler, [() => cold<ReserveResult>('----#')]);
        const demand = new Demand({ initial: 3 });
        hot('2ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store: fake.store, demand }))).toBe('----|');
      });
    });
  });

  describe('multipleOf', () => {
    it('reserves only whole multiples, waiting for demand to reach the next one', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
        const demand = new Demand({ initial: 7 });
        hot('5ms r 4ms r').subscribe(() => {
          demand.request(1);
        });
        hot('20ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store, demand, multipleOf: 3 })).pipe(payloads)).toBe(
          'x 9ms y 9ms |',
          { x: ['a', 'b', 'c', 'd', 'e', 'f'], y: ['g', 'h', 'i'] },
        );
      });
      // 7 → 6 taken, 1 left; +1 at 5 is still short of 3; +1 at 10 makes 3.
      expect(store.calls).toEqual([
        { at: 0, n: 6 },
        { at: 10, n: 3 },
      ]);
    });

    it('raises maxBatch to multipleOf', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable }) => {
        enqueue(store, ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
        const demand = new Demand({ initial: 7 });
        hot('10ms c').subscribe(() => {
          demand.cancel();
        });
        expectObservable(source(config({ store, demand, multipleOf: 3, maxBatch: 2 })).pipe(payloads)).toBe(
          '(xy) 6ms |',
          { x: ['a', 'b', 'c'], y: ['d', 'e', 'f'] },
        );
      });
      expect(store.calls.map((c) => c.n)).toEqual([3, 3]);
    });
  });

  describe('unsubscription', () => {
    it('stops the idle timer and unsubscribes from wake-ups and pause', () => {
      const store = new CountingStore();
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const demand = new Demand({ initial: 5 });
        const wakeups = hot('-');
        const paused = hot<boolean>('-');
        const unsub = '      25ms !';
        expectObservable(source(config({ store, demand, wakeups, paused, idle: { minMs: 10 } })), unsub).toBe(
          '-',
        );
        expectSubscriptions(wakeups.subscriptions).toBe('^ 24ms !');
        expectSubscriptions(paused.subscriptions).toBe('^ 24ms !');
      });
      // Polls at 0 and 10; the one due at 30 never happens.
      expect(store.calls.map((c) => c.at)).toEqual([0, 10]);
    });

    it('unsubscribes from a store call in flight', () => {
      testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
        const fake = scriptedStore(testScheduler, [
          () => cold('----(r|)', { r: answer([reservedJob('a', 'a')]) }),
        ]);
        const demand = new Demand({ initial: 1 });
        expectObservable(source(config({ store: fake.store, demand })), '--!').toBe('-');
        testScheduler.flush();
        expectSubscriptions(fake.handedOut[0]!.subscriptions).toBe('^-!');
      });
    });
  });

  it('adds every reservation to the in-flight registry before emitting it, with its grant', () => {
    const store = new CountingStore();
    const log: string[] = [];
    const inFlight = new InFlight();
    const grants: unknown[] = [];
    testScheduler.run(({ hot }) => {
      enqueue(store, ['a', 'b', 'c']);
      const demand = new Demand({ initial: 2 });
      hot('10ms r').subscribe(() => {
        demand.request(1);
      });
      hot('20ms c').subscribe(() => {
        demand.cancel();
      });
      source(config({ store, demand, inFlight })).subscribe((r) => {
        log.push(
          `emitted ${r.jobs.map((j) => `${String(j.data)}${inFlight.has(j.id) ? '+' : '-'}`).join('')}`,
        );
        grants.push(r.grant);
      });
    });
    expect(log).toEqual(['emitted a+b+', 'emitted c+']);
    expect(inFlight.size).toBe(3);
    // Store time of the lease (the slot, with no limit), and the call's local send and answer times
    // (virtual: instant).
    expect(grants).toEqual([
      { at: 0, storeNow: 0, sentAt: 0, receivedAt: 0 },
      { at: 10, storeNow: 10, sentAt: 10, receivedAt: 10 },
    ]);
  });

  it('under a limit, places slots a lead ahead and emits one reservation per slot', () => {
    const store = new MemoryStore();
    const emitted: string[] = [];
    testScheduler.run(() => {
      enqueue(store, ['a', 'b', 'c', 'd', 'e']);
      const demand = new Demand({ initial: 5 });
      const lead = { leadMs: () => 10, aheadMs: () => 500 };
      // 3 per 400 ms, 2 of them spent at 0 by another reserve.
      store.reserve('q', 2, { leaseMs: 1000, limit: { allowed: 3, periodMs: 400 } }).subscribe();
      source(
        config({ store, demand, limit: { allowed: 3, periodMs: 400 }, slotLead: lead, slotSpread: true }),
      ).subscribe((r) => {
        emitted.push(`${r.jobs.map((j) => String(j.data)).join('')}@${String(r.grant?.at)}`);
        demand.cancel(); // a drain the first reservation starts still lets the second out
      });
    });
    // c at the lead (10); d and e when a and b leave the window (400), within 500 ahead, spread a
    // millisecond apart (at most one a millisecond for 3 per 400 ms).
    expect(emitted).toEqual(['c@10', 'd@400', 'e@401']);
  });

  it('puts on each grant the margin its reserve asked the store to count the window with', () => {
    const store = new MemoryStore();
    const grants: (number | undefined)[] = [];
    const asked: (number | undefined)[] = [];
    const reserve = store.reserve.bind(store);
    jest.spyOn(store, 'reserve').mockImplementation((queue, n, options) => {
      asked.push(options.limit?.marginMs);
      return reserve(queue, n, options);
    });
    testScheduler.run(({ hot }) => {
      enqueue(store, ['a', 'b']);
      const demand = new Demand({ initial: 1 });
      let margin = 10;
      const lead = { leadMs: () => 5, aheadMs: () => 50, marginMs: () => margin };
      hot('20ms r').subscribe(() => {
        margin = 17; // the worker's margin grew (late requests) before its next reserve
        demand.request(1);
      });
      hot('30ms c').subscribe(() => {
        demand.cancel();
      });
      source(config({ store, demand, limit: { allowed: 100, periodMs: 1000 }, slotLead: lead })).subscribe(
        (r) => grants.push(r.grant?.marginMs),
      );
    });
    expect(asked).toEqual([10, 17]);
    expect(grants).toEqual([10, 17]);
  });

  describe('configuration', () => {
    const demand = new Demand({ initial: 1 });
    const store = new MemoryStore();

    it.each([
      [{ leaseMs: 0 }, /leaseMs must be > 0, got 0/],
      [{ leaseMs: -5 }, /leaseMs must be > 0/],
      [{ leaseMs: Number.NaN }, /leaseMs must be > 0/],
      [{ maxBatch: 1.5 }, /maxBatch must be an integer ≥ 1, got 1.5/],
      [{ maxBatch: Number.NaN }, /maxBatch must be an integer ≥ 1/],
    ])('throws InvalidArgumentError at once for %o', (overrides, message) => {
      const create = () => source({ store, queue: 'q', demand, leaseMs: 1_000, ...overrides });
      expect(create).toThrow(InvalidArgumentError);
      expect(create).toThrow(message);
    });

    // maxBatch is raised to multipleOf (default 1) before it is checked, so the `< 1` check can only
    // fire when multipleOf is itself below 1: 0 and negative values are silently replaced by 1.
    it.each([[{ maxBatch: 0 }], [{ maxBatch: -3 }]])('throws InvalidArgumentError for %o', (overrides) => {
      expect(() => source({ store, queue: 'q', demand, leaseMs: 1_000, ...overrides })).toThrow(
        InvalidArgumentError,
      );
    });

    // multipleOf is not checked at all; 1.5 makes the source take (and reserve) fractions of a job.
    it('throws InvalidArgumentError for a multipleOf that is not a positive integer', () => {
      expect(() => source({ store, queue: 'q', demand, leaseMs: 1_000, multipleOf: 1.5 })).toThrow(
        InvalidArgumentError,
      );
    });
  });

  // With a synchronous scheduler a 0 ms sleep fires inside `timer(...).subscribe()`, and the callback
  // reads the `const s` it is being assigned to (temporal dead zone): a ReferenceError is reported as
  // an unhandled error. operators/source.ts, sleepFor().
  it('runs on a synchronous scheduler when a sleep is 0 ms', async () => {
    const unhandled: unknown[] = [];
    const previous = rxConfig.onUnhandledError;
    rxConfig.onUnhandledError = (err) => unhandled.push(err);
    try {
      const replies = [answer([], { retryAfterMs: 0 }), answer([reservedJob('a', 'a')])];
      let call = 0;
      const store = stubStore({
        reserve: <T>() => {
          const reply = replies[Math.min(call++, 1)]!;
          return new Observable<ReserveResult<T>>((subscriber) => {
            subscriber.next(reply as ReserveResult<T>);
            subscriber.complete();
          });
        },
      });
      const demand = new Demand({ initial: 1 });
      const seen: unknown[] = [];
      const sub = source({ store, queue: 'q', demand, leaseMs: 1_000, scheduler: queueScheduler }).subscribe(
        (r) => seen.push(...r.jobs.map((j) => j.data)),
      );
      sub.unsubscribe();
      // RxJS reports errors thrown in subscribers on a later macrotask.
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(seen).toEqual(['a']);
      expect(unhandled).toEqual([]);
    } finally {
      rxConfig.onUnhandledError = previous;
    }
  });
});

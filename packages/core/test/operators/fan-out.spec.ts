import {
  Subject,
  Subscription,
  concatMap,
  interval,
  of,
  queueScheduler,
  take,
  tap,
  throwError,
  timer,
} from 'rxjs';
import type { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { InvalidArgumentError } from '../../src/model/errors';
import { fanOut } from '../../src/operators/fan-out';
import type { FanOutStats, FanOutSubscriberConfig } from '../../src/operators/fan-out';

interface Delivery<T> {
  /** Virtual time at which the consumer was called. */
  readonly at: number;
  readonly item: T;
}

function stats(partial: Partial<FanOutStats>): FanOutStats {
  return { delivered: 0, failed: 0, dropped: 0, buffered: 0, maxBuffered: 0, consuming: false, ...partial };
}

describe('fanOut', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).toEqual(expected);
    });
  });

  /** A consumer that takes `durationMs` of virtual time per item and logs when it was called. */
  function slowConsumer<T>(durationMs: number, log: Delivery<T>[]): (item: T) => Observable<0> {
    return (item) => {
      log.push({ at: testScheduler.now(), item });
      return timer(durationMs);
    };
  }

  it('behaves as its documentation marble diagram says', () => {
    const log: Delivery<string>[] = [];
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const fan = fanOut<string>();
      const subscriber = fan.attach(slowConsumer(5, log), { bufferSize: 2, overflow: 'drop-oldest' });
      const source = hot('  -abcde|');
      const primary = '     -abcde|';
      const sub = '         ^-----!';
      const done = '        ----------------(s|)';
      expectObservable(source.pipe(fan.tap)).toBe(primary);
      expectSubscriptions(source.subscriptions).toBe(sub);
      expectObservable(subscriber.done$).toBe(done, {
        s: stats({ delivered: 3, dropped: 2, maxBuffered: 2 }),
      });
    });
    expect(log).toEqual([
      { at: 1, item: 'a' },
      { at: 6, item: 'd' },
      { at: 11, item: 'e' },
    ]);
  });

  describe('primary path', () => {
    it('sees every item, unchanged and on time, however slow the subscribers are', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        fan.attach(() => timer(1_000), { bufferSize: 1, overflow: 'drop-newest' });
        fan.attach(() => timer(1_000), { bufferSize: 1, overflow: 'drop-oldest' });
        const source = hot('  a-bc-defgh-ij-|');
        const expected = '    a-bc-defgh-ij-|';
        expectObservable(source.pipe(fan.tap)).toBe(expected);
      });
    });

    it('passes the very same item objects through, and offers them as they are', () => {
      // A synchronous scheduler, so that the test can look at the consumer's log right away.
      const fan = fanOut<{ n: number }>({ scheduler: queueScheduler });
      const offered: { n: number }[] = [];
      fan.attach(
        (item) => {
          offered.push(item);
          return of(undefined);
        },
        { bufferSize: 10, overflow: 'drop-oldest' },
      );
      const items = [{ n: 1 }, { n: 2 }];
      const seen: { n: number }[] = [];
      of(...items)
        .pipe(fan.tap)
        .subscribe((item) => seen.push(item));
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBe(items[0]);
      expect(seen[1]).toBe(items[1]);
      expect(offered).toHaveLength(2);
      expect(offered[0]).toBe(items[0]);
      expect(offered[1]).toBe(items[1]);
    });

    it('keeps its own backpressure: a slow primary sink gets every item in order', () => {
      const stored: number[] = [];
      let completedAt = -1;
      testScheduler.run(() => {
        const fan = fanOut<number>();
        fan.attach(() => timer(50), { bufferSize: 2, overflow: 'drop-oldest' });
        interval(1)
          .pipe(
            take(30),
            fan.tap,
            concatMap((n) => timer(3).pipe(tap(() => stored.push(n)))),
          )
          .subscribe({ complete: () => (completedAt = testScheduler.now()) });
      });
      expect(stored).toEqual(Array.from({ length: 30 }, (_, i) => i));
      // The first item arrives at 1, then each write takes 3 ms, one after the other.
      expect(completedAt).toBe(1 + 3 * 30);
    });

    it('never calls a consumer on the primary path’s call stack', () => {
      const fan = fanOut<number>({ scheduler: testScheduler });
      const consumed: number[] = [];
      fan.attach(
        (item) => {
          consumed.push(item);
          return of(undefined);
        },
        { bufferSize: 10, overflow: 'drop-oldest' },
      );
      const primary = new Subject<number>();
      const passed: number[] = [];
      primary.pipe(fan.tap).subscribe((item) => passed.push(item));
      primary.next(1);
      primary.next(2);
      expect(passed).toEqual([1, 2]);
      expect(consumed).toEqual([]);
      testScheduler.flush();
      expect(consumed).toEqual([1, 2]);
    });
  });

  describe('bounded buffers', () => {
    it.each<[FanOutSubscriberConfig['overflow']]>([['drop-oldest'], ['drop-newest']])(
      'a slow subscriber (%s) never buffers more than bufferSize, and counts what it drops',
      (overflow) => {
        const bufferSize = 3;
        const log: Delivery<number>[] = [];
        const observed: FanOutStats[] = [];
        let final: FanOutStats | undefined;
        testScheduler.run(() => {
          const fan = fanOut<number>();
          const slow = fan.attach(
            (item) => {
              observed.push(slow.stats);
              return slowConsumer(7, log)(item);
            },
            { bufferSize, overflow },
          );
          slow.done$.subscribe((s) => (final = s));
          interval(1)
            .pipe(
              take(100),
              fan.tap,
              tap(() => observed.push(slow.stats)),
            )
            .subscribe();
        });

        expect(observed.length).toBeGreaterThan(100);
        for (const s of observed) expect(s.buffered).toBeLessThanOrEqual(bufferSize);
        expect(Math.max(...observed.map((s) => s.buffered))).toBe(bufferSize);
        expect(final).toBeDefined();
        expect(final!.maxBuffered).toBe(bufferSize);
        expect(final!.dropped).toBeGreaterThan(50);
        // Every item was either delivered or dropped.
        expect(final!.delivered + final!.dropped).toBe(100);
        expect(final!.delivered).toBe(log.length);
        const items = log.map((d) => d.item);
        expect(items).toEqual([...items].sort((a, b) => a - b));
        // Consumed one at a time: each call starts once the previous one (7 ms) has completed.
        log.slice(1).forEach((d, i) => {
          expect(d.at - log[i]!.at).toBeGreaterThanOrEqual(7);
        });
      },
    );

    it("'drop-oldest' keeps the newest items", () => {
      const log: Delivery<string>[] = [];
      let subscriberStats: FanOutStats | undefined;
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 2, overflow: 'drop-oldest' });
        const source = hot('  abcdef|');
        expectObservable(source.pipe(fan.tap)).toBe('abcdef|');
        testScheduler.schedule(() => (subscriberStats = subscriber.stats), 6);
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'e', 'f']);
      expect(subscriberStats).toEqual(stats({ dropped: 3, buffered: 2, maxBuffered: 2, consuming: true }));
    });

    it("'drop-newest' keeps the oldest items", () => {
      const log: Delivery<string>[] = [];
      let subscriberStats: FanOutStats | undefined;
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 2, overflow: 'drop-newest' });
        const source = hot('  abcdef|');
        expectObservable(source.pipe(fan.tap)).toBe('abcdef|');
        testScheduler.schedule(() => (subscriberStats = subscriber.stats), 6);
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'b', 'c']);
      expect(subscriberStats).toEqual(stats({ dropped: 3, buffered: 2, maxBuffered: 2, consuming: true }));
    });

    it('gives each subscriber its own buffer', () => {
      const fast: Delivery<string>[] = [];
      const slow: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        fan.attach(slowConsumer(1, fast), { bufferSize: 1, overflow: 'drop-oldest' });
        fan.attach(slowConsumer(100, slow), { bufferSize: 1, overflow: 'drop-oldest' });
        const source = hot('  a-b-c-d-|');
        expectObservable(source.pipe(fan.tap)).toBe('a-b-c-d-|');
      });
      expect(fast).toEqual([
        { at: 0, item: 'a' },
        { at: 2, item: 'b' },
        { at: 4, item: 'c' },
        { at: 6, item: 'd' },
      ]);
      expect(slow).toEqual([
        { at: 0, item: 'a' },
        { at: 100, item: 'd' },
      ]);
    });
  });

  describe('failing consumers', () => {
    it('count their failures and disturb neither the primary path nor the other subscribers', () => {
      const healthyLog: Delivery<string>[] = [];
      const failingCalls: string[] = [];
      let failingStats: FanOutStats | undefined;
      let healthyStats: FanOutStats | undefined;
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const fan = fanOut<string>();
        const asyncFailure = cold('-#', undefined, new Error('socket closed'));
        const failing = fan.attach(
          (item): Observable<unknown> => {
            failingCalls.push(item);
            if (item === 'b') throw new Error('serialisation failed');
            if (item === 'c') return asyncFailure;
            if (item === 'd') return 42 as unknown as Observable<unknown>; // not an ObservableInput
            return of(item);
          },
          { bufferSize: 10, overflow: 'drop-oldest' },
        );
        const healthy = fan.attach(slowConsumer(1, healthyLog), { bufferSize: 10, overflow: 'drop-oldest' });
        failing.done$.subscribe((s) => (failingStats = s));
        healthy.done$.subscribe((s) => (healthyStats = s));
        const source = hot('  a-b-c-d-e-|');
        const sub = '         ^---------!';
        expectObservable(source.pipe(fan.tap)).toBe('a-b-c-d-e-|');
        expectSubscriptions(source.subscriptions).toBe(sub);
        expectSubscriptions(asyncFailure.subscriptions).toBe('----^!');
      });
      expect(failingCalls).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(failingStats).toEqual(stats({ delivered: 2, failed: 3, maxBuffered: 1 }));
      expect(healthyLog.map((d) => d.item)).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(healthyStats).toEqual(stats({ delivered: 5, maxBuffered: 1 }));
    });
  });

  describe('completion', () => {
    it('lets subscribers drain what they hold after the primary completes, then finish', () => {
      const log: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  abc|');
        const primary = '     abc|';
        const done = '        30ms (s|)';
        expectObservable(source.pipe(fan.tap)).toBe(primary);
        expectObservable(subscriber.done$).toBe(done, { s: stats({ delivered: 3, maxBuffered: 2 }) });
        testScheduler.schedule(() => {
          expect(fan.ended).toBe(true);
          expect(subscriber.closed).toBe(false);
          expect(fan.subscribers).toEqual([subscriber]);
        }, 5);
        testScheduler.schedule(() => {
          expect(subscriber.closed).toBe(true);
          expect(fan.subscribers).toEqual([]);
        }, 31);
      });
      expect(log.map((d) => d.at)).toEqual([0, 10, 20]);
    });

    it('finishes idle subscribers as soon as the primary completes', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(() => of(0), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  -a--|');
        expectObservable(source.pipe(fan.tap)).toBe('-a--|');
        expectObservable(subscriber.done$).toBe('----(s|)', { s: stats({ delivered: 1, maxBuffered: 1 }) });
      });
    });

    it('forwards a primary error unchanged and lets subscribers drain, then finish', () => {
      const log: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  ab#', undefined, new Error('store down'));
        expectObservable(source.pipe(fan.tap)).toBe('ab#', undefined, new Error('store down'));
        expectObservable(subscriber.done$).toBe('20ms (s|)', { s: stats({ delivered: 2, maxBuffered: 1 }) });
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'b']);
    });

    it('replays the final stats to a late done$ subscriber', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(() => of(0), { bufferSize: 5, overflow: 'drop-oldest' });
        hot('  a|').pipe(fan.tap).subscribe();
        const late = cold('10ms a|').pipe(concatMap(() => subscriber.done$));
        expectObservable(late).toBe('10ms s|', { s: stats({ delivered: 1, maxBuffered: 1 }) });
      });
    });
  });

  describe('unsubscription, detach and end', () => {
    it('does not end the fan-out when the primary is unsubscribed, end() does', () => {
      const log: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  abc---d|');
        const unsub = '       ---!';
        const sub = '         ^--!';
        expectObservable(source.pipe(fan.tap), unsub).toBe('abc');
        expectSubscriptions(source.subscriptions).toBe(sub);
        // Still attached and draining after the unsubscription; finished by end() at 50.
        expectObservable(subscriber.done$).toBe('50ms (s|)', { s: stats({ delivered: 3, maxBuffered: 2 }) });
        testScheduler.schedule(() => {
          expect(fan.ended).toBe(false);
          fan.end();
          fan.end();
          expect(fan.ended).toBe(true);
        }, 50);
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'b', 'c']);
    });

    it('end() lets subscribers drain, and stops offering items still flowing through tap', () => {
      const log: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(10, log), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  ab-cd|');
        expectObservable(source.pipe(fan.tap)).toBe('ab-cd|');
        expectObservable(subscriber.done$).toBe('20ms (s|)', { s: stats({ delivered: 2, maxBuffered: 1 }) });
        testScheduler.schedule(() => {
          fan.end();
        }, 2);
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'b']);
    });

    it('detach() unsubscribes the consumer in flight, discards the buffer and finishes at once', () => {
      const healthy: Delivery<string>[] = [];
      testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
        const fan = fanOut<string>();
        const consumption = cold('10ms |');
        const detached = fan.attach(() => consumption, { bufferSize: 5, overflow: 'drop-oldest' });
        fan.attach(slowConsumer(1, healthy), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  abc--d|');
        expectObservable(source.pipe(fan.tap)).toBe('abc--d|');
        expectSubscriptions(consumption.subscriptions).toBe('^---!');
        expectObservable(detached.done$).toBe('----(s|)', { s: stats({ maxBuffered: 2 }) });
        testScheduler.schedule(() => {
          expect(detached.stats).toEqual(stats({ buffered: 2, maxBuffered: 2, consuming: true }));
          detached.detach();
          detached.detach();
          expect(detached.closed).toBe(true);
          expect(detached.stats).toEqual(stats({ maxBuffered: 2 }));
          expect(fan.subscribers).toHaveLength(1);
        }, 4);
      });
      expect(healthy.map((d) => d.item)).toEqual(['a', 'b', 'c', 'd']);
    });

    it('unsubscribe() is detach(), so a subscriber can join a Subscription', () => {
      const log: Delivery<string>[] = [];
      testScheduler.run(({ hot }) => {
        const fan = fanOut<string>();
        const subscriber = fan.attach(slowConsumer(0, log), { bufferSize: 5, overflow: 'drop-oldest' });
        const connection = new Subscription();
        connection.add(subscriber);
        hot('  ab--c|').pipe(fan.tap).subscribe();
        testScheduler.schedule(() => {
          connection.unsubscribe();
        }, 3);
        testScheduler.schedule(() => {
          expect(subscriber.closed).toBe(true);
        }, 4);
      });
      expect(log.map((d) => d.item)).toEqual(['a', 'b']);
    });
  });

  describe('attach', () => {
    it('lets a late subscriber see only the items offered after it attached', () => {
      const early: Delivery<string>[] = [];
      const late: Delivery<string>[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const fan = fanOut<string>();
        fan.attach(slowConsumer(0, early), { bufferSize: 5, overflow: 'drop-oldest' });
        const source = hot('  ab-cd|');
        expectObservable(source.pipe(fan.tap)).toBe('ab-cd|');
        testScheduler.schedule(() => {
          fan.attach(slowConsumer(0, late), { bufferSize: 5, overflow: 'drop-oldest' });
        }, 2);
      });
      expect(early.map((d) => d.item)).toEqual(['a', 'b', 'c', 'd']);
      expect(late).toEqual([
        { at: 3, item: 'c' },
        { at: 4, item: 'd' },
      ]);
    });

    it('finishes a subscriber attached after the fan-out ended at once', () => {
      const consumer = jest.fn(() => of(0));
      const finished: { at: number; stats: FanOutStats }[] = [];
      testScheduler.run(({ cold }) => {
        const fan = fanOut<string>();
        cold('  a|').pipe(fan.tap).subscribe();
        testScheduler.schedule(() => {
          expect(fan.ended).toBe(true);
          const subscriber = fan.attach(consumer, { bufferSize: 5, overflow: 'drop-oldest' });
          subscriber.done$.subscribe((s) => finished.push({ at: testScheduler.now(), stats: s }));
        }, 5);
      });
      expect(finished).toEqual([{ at: 5, stats: stats({}) }]);
      expect(consumer).not.toHaveBeenCalled();
    });

    it('names subscribers subscriber-<n> unless given a name, and lists the active ones', () => {
      const fan = fanOut<string>();
      const first = fan.attach(() => of(0), { bufferSize: 1, overflow: 'drop-oldest' });
      const named = fan.attach(() => of(0), { bufferSize: 1, overflow: 'drop-oldest', name: 'browser-7' });
      const third = fan.attach(() => of(0), { bufferSize: 1, overflow: 'drop-newest' });
      expect([first.name, named.name, third.name]).toEqual(['subscriber-1', 'browser-7', 'subscriber-3']);
      expect(fan.subscribers).toEqual([first, named, third]);
      named.detach();
      expect(fan.subscribers).toEqual([first, third]);
    });

    it('works with a synchronous scheduler and synchronous consumers', () => {
      const fan = fanOut<number>({ scheduler: queueScheduler });
      const consumed: number[] = [];
      const subscriber = fan.attach(
        (item) => {
          consumed.push(item);
          return item === 2 ? throwError(() => new Error('no')) : of(item);
        },
        { bufferSize: 2, overflow: 'drop-oldest' },
      );
      const primary = new Subject<number>();
      primary.pipe(fan.tap).subscribe();
      primary.next(1);
      primary.next(2);
      primary.next(3);
      expect(consumed).toEqual([1, 2, 3]);
      primary.complete();
      expect(subscriber.closed).toBe(true);
      expect(subscriber.stats).toEqual(stats({ delivered: 2, failed: 1, maxBuffered: 1 }));
    });

    it.each<[string, unknown, RegExp]>([
      [
        'bufferSize 0',
        { bufferSize: 0, overflow: 'drop-oldest' },
        /bufferSize must be a positive integer, got 0/,
      ],
      [
        'bufferSize 1.5',
        { bufferSize: 1.5, overflow: 'drop-oldest' },
        /bufferSize must be a positive integer/,
      ],
      [
        'bufferSize Infinity',
        { bufferSize: Number.POSITIVE_INFINITY, overflow: 'drop-oldest' },
        /bufferSize must be a positive integer/,
      ],
      [
        "overflow 'error'",
        { bufferSize: 1, overflow: 'error' },
        /overflow must be one of drop-oldest, drop-newest, got "error"/,
      ],
      ['no overflow', { bufferSize: 1 }, /overflow must be one of/],
      [
        'an empty name',
        { bufferSize: 1, overflow: 'drop-oldest', name: '' },
        /name must be a non-empty string/,
      ],
    ])('throws InvalidArgumentError at once for %s', (_label, config, message) => {
      const fan = fanOut<number>();
      const attach = () => fan.attach(() => of(0), config as FanOutSubscriberConfig);
      expect(attach).toThrow(InvalidArgumentError);
      expect(attach).toThrow(message);
      expect(fan.subscribers).toEqual([]);
    });

    it('throws InvalidArgumentError when the consumer is not a function', () => {
      const fan = fanOut<number>();
      const attach = () =>
        fan.attach(null as unknown as () => Observable<0>, { bufferSize: 1, overflow: 'drop-oldest' });
      expect(attach).toThrow(InvalidArgumentError);
      expect(attach).toThrow(/consumer must be a function/);
    });
  });
});

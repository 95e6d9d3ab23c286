import { config, filter, lastValueFrom, map, take, toArray, type Subscription } from 'rxjs';
import { Hub } from '../src/util/hub';

describe('Hub', () => {
  it('is hot: a subscriber sees the values emitted after it subscribed, in order', () => {
    const hub = new Hub<number>();
    const a: number[] = [];
    const b: number[] = [];
    hub.next(0);
    hub.observable.subscribe((v) => a.push(v));
    hub.next(1);
    hub.observable.subscribe((v) => b.push(v));
    hub.next(2);
    hub.next(3);
    expect(a).toEqual([1, 2, 3]);
    expect(b).toEqual([2, 3]);
  });

  it('says whether anyone is subscribed, and forgets a subscriber that unsubscribes', () => {
    const hub = new Hub<number>();
    expect(hub.observed).toBe(false);
    const seen: number[] = [];
    const one = hub.observable.subscribe((v) => seen.push(v));
    const two = hub.observable.subscribe(() => undefined);
    expect(hub.observed).toBe(true);
    one.unsubscribe();
    hub.next(1);
    expect(seen).toEqual([]);
    expect(hub.observed).toBe(true);
    two.unsubscribe();
    expect(hub.observed).toBe(false);
  });

  it('works through operators (take completes and unsubscribes its subscriber)', async () => {
    const hub = new Hub<number>();
    const firstTwoEven = lastValueFrom(
      hub.observable.pipe(
        filter((v) => v % 2 === 0),
        map((v) => v * 10),
        take(2),
        toArray(),
      ),
    );
    for (let i = 1; i <= 6; i++) hub.next(i);
    await expect(firstTwoEven).resolves.toEqual([20, 40]);
    expect(hub.observed).toBe(false);
  });

  it('does not give the value being emitted to one that subscribes during it, nor more to one that leaves', () => {
    const hub = new Hub<string>();
    const late: string[] = [];
    const leaving: string[] = [];
    const subscriptions: Subscription[] = [];
    hub.observable.subscribe((v) => {
      if (v === 'a') hub.observable.subscribe((w) => late.push(w));
      if (v === 'b') subscriptions[0]?.unsubscribe();
    });
    subscriptions.push(hub.observable.subscribe((v) => leaving.push(v)));
    hub.next('a');
    hub.next('b');
    hub.next('c');
    expect(late).toEqual(['b', 'c']);
    expect(leaving).toEqual(['a']);
  });

  it('keeps emitting to the others when a subscriber throws (the error is reported, not thrown at the emitter)', () => {
    const reported: unknown[] = [];
    const before = config.onUnhandledError;
    config.onUnhandledError = (error) => {
      reported.push(error);
    };
    jest.useFakeTimers();
    try {
      const hub = new Hub<number>();
      const seen: number[] = [];
      hub.observable.subscribe(() => {
        throw new Error('boom');
      });
      hub.observable.subscribe((v) => seen.push(v));
      expect(() => {
        hub.next(1);
      }).not.toThrow();
      hub.next(2);
      jest.runAllTimers();
      expect(seen).toEqual([1, 2]);
      expect(reported).toHaveLength(2);
    } finally {
      jest.useRealTimers();
      config.onUnhandledError = before;
    }
  });

  it('completes every subscriber, and any later one at once; a value after that goes nowhere', () => {
    const hub = new Hub<number>();
    const events: string[] = [];
    hub.observable.subscribe({ next: (v) => events.push(`a${v}`), complete: () => events.push('a done') });
    hub.observable.subscribe({ next: (v) => events.push(`b${v}`), complete: () => events.push('b done') });
    hub.next(1);
    hub.complete();
    hub.complete();
    hub.next(2);
    hub.observable.subscribe({ next: (v) => events.push(`c${v}`), complete: () => events.push('c done') });
    expect(events).toEqual(['a1', 'b1', 'a done', 'b done', 'c done']);
    expect(hub.observed).toBe(false);
  });
});

import { TestScheduler } from 'rxjs/testing';
import { rateLimit, SlidingWindowLimiter } from '@sluice/core';

describe('rateLimit', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).toEqual(expected);
    });
  });

  it('grants what the window allows and the rest when grants leave the window', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const requests = hot('  -a--------b-|', { a: 5, b: 3 });
      const subs = '        ^-----------!';
      const expected = '    -x---------y|';
      expectObservable(requests.pipe(rateLimit({ allowed: 4, periodMs: 10 }))).toBe(expected, { x: 4, y: 4 });
      expectSubscriptions(requests.subscriptions).toBe(subs);
    });
  });

  it('keeps granting what is owed after the requests complete, then completes', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const requests = cold('a|', { a: 9 });
      expectObservable(requests.pipe(rateLimit({ allowed: 4, periodMs: 10 }))).toBe(
        'x---------y---------(z|)',
        {
          x: 4,
          y: 4,
          z: 1,
        },
      );
    });
  });

  it('passes errors through at once', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const requests = cold('a-#', { a: 1 }, new Error('boom'));
      expectObservable(requests.pipe(rateLimit({ allowed: 4, periodMs: 10 }))).toBe(
        'x-#',
        { x: 1 },
        new Error('boom'),
      );
    });
  });

  it('stops its timer when unsubscribed', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const requests = cold('a', { a: 10 });
      expectObservable(requests.pipe(rateLimit({ allowed: 4, periodMs: 10 })), '^--------!').toBe('x', {
        x: 4,
      });
    });
  });

  it('shares a limiter between streams', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const limiter = new SlidingWindowLimiter({ allowed: 3, periodMs: 10 });
      expectObservable(cold('a|', { a: 2 }).pipe(rateLimit({ limiter }))).toBe('x|', { x: 2 });
      expectObservable(cold('-a|', { a: 2 }).pipe(rateLimit({ limiter }))).toBe('-x--------(y|)', {
        x: 1,
        y: 1,
      });
    });
  });

  it('requires allowed and periodMs or a limiter', () => {
    expect(() => rateLimit({})).toThrow(/allowed/);
  });
});

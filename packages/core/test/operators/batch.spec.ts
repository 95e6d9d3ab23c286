import { Subject, of } from 'rxjs';
import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ErrorCode, InvalidArgumentError } from '../../src/model/errors';
import { batch } from '../../src/operators/batch';

function createTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** Wraps a scheduler and records every piece of work scheduled on it, and whether it ran. */
function spyScheduler(inner: SchedulerLike): {
  scheduler: SchedulerLike;
  scheduled: { subscription: Subscription; ran: boolean }[];
} {
  const scheduled: { subscription: Subscription; ran: boolean }[] = [];
  const scheduler: SchedulerLike = {
    now: () => inner.now(),
    schedule<S>(work: (this: SchedulerAction<S>, state?: S) => void, delay?: number, state?: S) {
      const record = { subscription: undefined as unknown as Subscription, ran: false };
      scheduled.push(record);
      record.subscription = inner.schedule<S>(
        function (this: SchedulerAction<S>, s?: S) {
          record.ran = true;
          work.call(this, s);
        },
        delay,
        state,
      );
      return record.subscription;
    },
  };
  return { scheduler, scheduled };
}

describe('batch', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = createTestScheduler();
  });

  it('behaves as its documentation marble diagram says', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  -a-b-c-d-----e---------|');
      const expected = '    -----x------y-----z----|';
      const sub = '         ^----------------------!';
      expectObservable(source.pipe(batch({ size: 3, timeMs: 5 }))).toBe(expected, {
        x: ['a', 'b', 'c'],
        y: ['d'],
        z: ['e'],
      });
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('emits a batch each time the buffer reaches size, without a timer', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  -a-b-c-d-e-|');
      const expected = '    ---x---y---(z|)';
      const sub = '         ^----------!';
      expectObservable(source.pipe(batch({ size: 2 }))).toBe(expected, {
        x: ['a', 'b'],
        y: ['c', 'd'],
        z: ['e'],
      });
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('without timeMs keeps a partial batch until the source completes, however long that takes', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  -a 999ms b-|');
      const expected = '    -- 999ms --(x|)';
      expectObservable(source.pipe(batch({ size: 3 }))).toBe(expected, { x: ['a', 'b'] });
    });
  });

  it('measures timeMs from the first item that entered the empty buffer, not on fixed intervals', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      // a enters the empty buffer at 0, so [a, b] is due at 50; c starts a new buffer at 60, due at 110.
      // Fixed 50 ms intervals would have emitted [c] at 100.
      const source = hot('  a 29ms b 29ms c 139ms |');
      const expected = '    50ms x 59ms y 89ms |';
      expectObservable(source.pipe(batch({ size: 10, timeMs: 50 }))).toBe(expected, {
        x: ['a', 'b'],
        y: ['c'],
      });
    });
  });

  it('restarts the timer for the first item after a size flush', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      // [a, b] fills up at 10 and cancels its timer; c, at 20, starts a new one due at 50.
      const source = hot('  a 9ms b 9ms c 99ms |');
      const expected = '    10ms x 39ms y 69ms |';
      expectObservable(source.pipe(batch({ size: 2, timeMs: 30 }))).toBe(expected, {
        x: ['a', 'b'],
        y: ['c'],
      });
    });
  });

  it('emits whichever comes first, a full buffer or the timeout', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  abc 10ms d 20ms |');
      const expected = '    --x 15ms y 15ms |';
      expectObservable(source.pipe(batch({ size: 3, timeMs: 5 }))).toBe(expected, {
        x: ['a', 'b', 'c'],
        y: ['d'],
      });
    });
  });

  it('never emits an empty batch', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  --- 500ms |');
      const expected = '    --- 500ms |';
      expectObservable(source.pipe(batch({ size: 2, timeMs: 10 }))).toBe(expected);
    });
  });

  it('flushes the remainder on completion, cancelling its timer', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  -a-b-|');
      const expected = '    -----(x|)';
      expectObservable(source.pipe(batch({ size: 5, timeMs: 100 }))).toBe(expected, { x: ['a', 'b'] });
    });
  });

  it('splits a synchronous burst larger than size into several full batches', () => {
    testScheduler.run(({ expectObservable }) => {
      const source = of(1, 2, 3, 4, 5, 6, 7);
      expectObservable(source.pipe(batch({ size: 3, timeMs: 10 }))).toBe('(xyz|)', {
        x: [1, 2, 3],
        y: [4, 5, 6],
        z: [7],
      });
    });
  });

  it('emits every item alone when size is 1', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  -a-b-|');
      const expected = '    -x-y-|';
      expectObservable(source.pipe(batch({ size: 1, timeMs: 10 }))).toBe(expected, {
        x: ['a'],
        y: ['b'],
      });
    });
  });

  it('forwards a source error and discards the buffer', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  -a-b-#', undefined, new Error('boom'));
      const expected = '    -----#';
      const sub = '         ^----!';
      expectObservable(source.pipe(batch({ size: 5, timeMs: 100 }))).toBe(
        expected,
        undefined,
        new Error('boom'),
      );
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('unsubscribes from the source and cancels the pending timer when unsubscribed', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions, flush }) => {
      const { scheduler, scheduled } = spyScheduler(testScheduler);
      const source = hot('  -a-b------c-|');
      const unsub = '       ------!';
      const expected = '    -------';
      const sub = '         ^-----!';
      expectObservable(source.pipe(batch({ size: 5, timeMs: 10, scheduler })), unsub).toBe(expected);
      expectSubscriptions(source.subscriptions).toBe(sub);
      flush();
      expect(scheduled).toHaveLength(1);
      expect(scheduled[0]!.subscription.closed).toBe(true);
      expect(scheduled[0]!.ran).toBe(false);
    });
  });

  it('uses the given scheduler to measure timeMs', () => {
    testScheduler.run(({ hot, expectObservable, flush }) => {
      const { scheduler, scheduled } = spyScheduler(testScheduler);
      const source = hot('  -a------|');
      const expected = '    ---x----|';
      expectObservable(source.pipe(batch({ size: 5, timeMs: 2, scheduler }))).toBe(expected, { x: ['a'] });
      flush();
      expect(scheduled.map((s) => s.ran)).toEqual([true]);
    });
  });

  it('starts a fresh buffer before emitting, so items pushed synchronously by the consumer are kept', () => {
    const subject = new Subject<number>();
    const seen: number[][] = [];
    subject.pipe(batch({ size: 2 })).subscribe((items) => {
      seen.push(items);
      if (items[0] === 1) subject.next(3);
    });
    subject.next(1);
    subject.next(2);
    subject.next(4);
    subject.complete();
    expect(seen).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it.each([
    [{ size: 0 }, /size must be a positive integer, got 0/],
    [{ size: -1 }, /size must be a positive integer/],
    [{ size: 1.5 }, /size must be a positive integer/],
    [{ size: Number.NaN }, /size must be a positive integer/],
    [{ size: 2, timeMs: -1 }, /timeMs must be a finite number >= 0, got -1/],
    [{ size: 2, timeMs: Number.POSITIVE_INFINITY }, /timeMs must be a finite number/],
    [{ size: 2, timeMs: Number.NaN }, /timeMs must be a finite number/],
  ])('throws InvalidArgumentError at once for %o', (config, message) => {
    const create = () => batch(config);
    expect(create).toThrow(InvalidArgumentError);
    expect(create).toThrow(message);
    try {
      create();
    } catch (err: unknown) {
      expect((err as InvalidArgumentError).code).toBe(ErrorCode.InvalidArgument);
    }
  });

  it('accepts timeMs 0', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  -a-b--|');
      const expected = '    -x-y--|';
      expectObservable(source.pipe(batch({ size: 5, timeMs: 0 }))).toBe(expected, { x: ['a'], y: ['b'] });
    });
  });
  describe('with a key', () => {
    it('batches every key on its own: its own size, its own timer, flushed in the order batches fill', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const source = cold('a-b-c-d-e-----f-|', { a: 'a1', b: 'b1', c: 'a2', d: 'a3', e: 'b2', f: 'b3' });
        const key = (item: string) => item[0];
        // a fills at 6; b times out 8 after b1; b3 waits for the completion.
        expectObservable(source.pipe(batch({ size: 3, timeMs: 8, key }))).toBe('------x---y-----(z|)', {
          x: ['a1', 'a2', 'a3'],
          y: ['b1', 'b2'],
          z: ['b3'],
        });
      });
    });

    it('flushes what every key holds at completion, in the order of their first items', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const source = cold('b-a-c-|', { b: 'b1', a: 'a1', c: 'b2' });
        expectObservable(source.pipe(batch({ size: 5, key: (item: string) => item[0] }))).toBe(
          '------(xy|)',
          {
            x: ['b1', 'b2'],
            y: ['a1'],
          },
        );
      });
    });

    it('errors when the key function throws, dropping every buffer', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const source = cold('a-b-|');
        const key = (item: string) => {
          if (item === 'b') throw new Error('bad item');
          return item;
        };
        expectObservable(source.pipe(batch({ size: 5, timeMs: 1, key }))).toBe(
          '-x#',
          { x: ['a'] },
          new Error('bad item'),
        );
      });
      expect(() => batch({ size: 2, key: 'group' as never })).toThrow('batch: key must be a function');
    });
  });
});

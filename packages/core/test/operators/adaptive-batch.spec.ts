import { Subject, asyncScheduler, interval, map, of, range, take, throwError, timer } from 'rxjs';
import type { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { BufferOverflowError, ErrorCode, InvalidArgumentError, SluiceError } from '../../src/model/errors';
import { adaptiveBatch } from '../../src/operators/adaptive-batch';
import type { AdaptiveBatchConfig } from '../../src/operators/adaptive-batch';

interface WriteRecord<T> {
  /** Virtual time at which the write was started. */
  readonly at: number;
  readonly items: readonly T[];
}

describe('adaptiveBatch', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = new TestScheduler((actual, expected) => {
      expect(actual).toEqual(expected);
    });
  });

  /** A write taking `durationMs` of virtual time, then emitting its items joined into one string. */
  function slowWriter(
    durationMs: number,
    log: WriteRecord<string>[] = [],
  ): (items: string[]) => Observable<string> {
    return (items) => {
      log.push({ at: testScheduler.now(), items: [...items] });
      return timer(durationMs).pipe(map(() => items.join('')));
    };
  }

  describe('acceptance', () => {
    it('writes the first item alone at once, then ~10 items per write, when items come every 10 ms and a write takes 100 ms', () => {
      const log: WriteRecord<number>[] = [];
      const sizes: number[] = [];
      let completedAt = -1;
      testScheduler.run(() => {
        const write = (items: number[]) => {
          log.push({ at: testScheduler.now(), items: [...items] });
          return timer(100).pipe(map(() => items.length));
        };
        interval(10)
          .pipe(take(201), adaptiveBatch(write, { maxSize: 1_000 }))
          .subscribe({
            next: (size) => sizes.push(size),
            complete: () => (completedAt = testScheduler.now()),
          });
      });

      // The first item (emitted by interval at 10) is written alone, at the moment it arrives.
      expect(log[0]).toEqual({ at: 10, items: [0] });
      // From then on each write starts the moment the previous one ends and takes what gathered meanwhile.
      expect(log.length).toBeGreaterThan(15);
      log.forEach((record, i) => {
        expect(record.at).toBe(10 + 100 * i);
      });
      for (const record of log.slice(1)) {
        expect(record.items.length).toBeGreaterThanOrEqual(9);
        expect(record.items.length).toBeLessThanOrEqual(11);
      }
      // Every item is written exactly once, in order, and every write's value reaches the output.
      expect(log.flatMap((record) => record.items)).toEqual(Array.from({ length: 201 }, (_, i) => i));
      expect(sizes).toEqual(log.map((record) => record.items.length));
      expect(completedAt).toBe(log[log.length - 1]!.at + 100);
    });

    it('writes every item alone, at the moment it arrives, when items come every 200 ms', () => {
      const log: WriteRecord<string>[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('  a 199ms b 199ms c 199ms d 199ms |');
        const expected = '    100ms a 199ms b 199ms c 199ms d 99ms |';
        const sub = '         ^ 199ms - 199ms - 199ms - 199ms !';
        expectObservable(source.pipe(adaptiveBatch(slowWriter(100, log), { maxSize: 10 }))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(sub);
      });
      expect(log).toEqual([
        { at: 0, items: ['a'] },
        { at: 200, items: ['b'] },
        { at: 400, items: ['c'] },
        { at: 600, items: ['d'] },
      ]);
    });
  });

  it('behaves as its documentation marble diagram says', () => {
    const log: WriteRecord<string>[] = [];
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  a-b-c-d-e-------f-|');
      const expected = '    -----x----y----z-----(w|)';
      const write = (items: string[]) => {
        log.push({ at: testScheduler.now(), items: [...items] });
        return timer(5).pipe(map(() => items.length));
      };
      expectObservable(source.pipe(adaptiveBatch(write, { maxSize: 10 }))).toBe(expected, {
        x: 1,
        y: 2,
        z: 2,
        w: 1,
      });
    });
    expect(log.map((record) => record.at)).toEqual([0, 5, 10, 16]);
  });

  it('takes at most maxSize items per write and leaves the rest for the next free slot', () => {
    const log: WriteRecord<string>[] = [];
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  abcde|');
      const expected = '    10ms x 9ms y 9ms (z|)';
      expectObservable(source.pipe(adaptiveBatch(slowWriter(10, log), { maxSize: 2 }))).toBe(expected, {
        x: 'a',
        y: 'bc',
        z: 'de',
      });
    });
    expect(log.map((record) => record.at)).toEqual([0, 10, 20]);
  });

  it('keeps up to `concurrency` writes in flight', () => {
    const log: WriteRecord<string>[] = [];
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  abcd|');
      const expected = '    10ms ab 8ms (c|)';
      expectObservable(source.pipe(adaptiveBatch(slowWriter(10, log), { maxSize: 10, concurrency: 2 }))).toBe(
        expected,
        { a: 'a', b: 'b', c: 'cd' },
      );
    });
    expect(log).toEqual([
      { at: 0, items: ['a'] },
      { at: 1, items: ['b'] },
      { at: 10, items: ['c', 'd'] },
    ]);
  });

  it('writes every item alone with unbounded concurrency', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  abc|');
      const expected = '    10ms ab(c|)';
      expectObservable(
        source.pipe(adaptiveBatch(slowWriter(10), { maxSize: 10, concurrency: Number.POSITIVE_INFINITY })),
      ).toBe(expected);
    });
  });

  it('emits every value the writes emit', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const source = hot('  -a 9ms b 9ms |');
      const expected = '    -(wx) 6ms (yz) 6ms |';
      // An array is an ObservableInput: every value in it becomes an output value.
      const write = (items: string[]) => items.flatMap((item) => [`${item}1`, `${item}2`]);
      expectObservable(source.pipe(adaptiveBatch(write, { maxSize: 10 }))).toBe(expected, {
        w: 'a1',
        x: 'a2',
        y: 'b1',
        z: 'b2',
      });
    });
  });

  it('completes at once when the source completes with nothing buffered or in flight', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  ---|');
      const expected = '    ---|';
      const sub = '         ^--!';
      expectObservable(source.pipe(adaptiveBatch(slowWriter(10), { maxSize: 10 }))).toBe(expected);
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('keeps writing the buffer in maxSize chunks after the source completed, then completes', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  abcdefg|');
      const expected = '    5ms a 4ms b 4ms c 4ms (d|)';
      const sub = '         ^------!';
      expectObservable(source.pipe(adaptiveBatch(slowWriter(5), { maxSize: 2 }))).toBe(expected, {
        a: 'a',
        b: 'bc',
        c: 'de',
        d: 'fg',
      });
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('forwards a source error, discarding the buffer and unsubscribing the writes in flight', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('     -a-b-#', undefined, new Error('source failed'));
      const written = cold('    -----(x|)', { x: 1 });
      const expected = '       -----#';
      const sourceSub = '      ^----!';
      const writeSub = '       -^---!';
      expectObservable(source.pipe(adaptiveBatch(() => written, { maxSize: 10 }))).toBe(
        expected,
        undefined,
        new Error('source failed'),
      );
      expectSubscriptions(source.subscriptions).toBe(sourceSub);
      expectSubscriptions(written.subscriptions).toBe(writeSub);
    });
  });

  it('errors when a write errors, and unsubscribes the source', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('     -a-b-c-|');
      const failing = cold('    --#', undefined, new Error('write failed'));
      const expected = '       ---#';
      const sourceSub = '      ^--!';
      expectObservable(source.pipe(adaptiveBatch(() => failing, { maxSize: 10 }))).toBe(
        expected,
        undefined,
        new Error('write failed'),
      );
      expectSubscriptions(source.subscriptions).toBe(sourceSub);
    });
  });

  it('errors when write throws', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('  --a-|');
      const expected = '    --#';
      const sub = '         ^-!';
      const write = (): Observable<never> => {
        throw new Error('cannot write');
      };
      expectObservable(source.pipe(adaptiveBatch(write, { maxSize: 10 }))).toBe(
        expected,
        undefined,
        new Error('cannot write'),
      );
      expectSubscriptions(source.subscriptions).toBe(sub);
    });
  });

  it('unsubscribes the source and every write in flight when unsubscribed', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('     -a-b----c-|');
      const written = cold('    -----(x|)', { x: 1 });
      const unsub = '          ----!';
      const expected = '       -----';
      const sourceSub = '      ^---!';
      const writeSub = '       -^--!';
      expectObservable(source.pipe(adaptiveBatch(() => written, { maxSize: 10 })), unsub).toBe(expected);
      expectSubscriptions(source.subscriptions).toBe(sourceSub);
      expectSubscriptions(written.subscriptions).toBe(writeSub);
    });
  });

  describe('gather', () => {
    it('writes the items that reach an idle writer in one frame together, in virtual time', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const log: WriteRecord<string>[] = [];
        const gathered = cold('-(abc)--d-e|').pipe(
          adaptiveBatch(slowWriter(5, log), { maxSize: 10, gather: testScheduler }),
        );
        // (abc) in one write at frame 1; d reaches an idle writer at 8, alone in its turn; e at 10
        // waits for that write to end (13).
        expectObservable(gathered).toBe('------x------y----(z|)', { x: 'abc', y: 'd', z: 'e' });
      });
    });

    it('writes the first item alone without it, as the same source shows', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const plain = cold('-(abc)--d-e|').pipe(adaptiveBatch(slowWriter(5), { maxSize: 10 }));
        // a alone at once; b and c wait for its write (6); d and e for that one (11).
        expectObservable(plain).toBe('------x----y----(z|)', { x: 'a', y: 'bc', z: 'de' });
      });
    });

    it('gathers what arrives in one turn of the event loop, microtasks included, in real time', async () => {
      const source = new Subject<number>();
      const writes: number[][] = [];
      const done = new Promise<void>((resolve) => {
        source
          .pipe(
            adaptiveBatch(
              (items: number[]) => {
                writes.push([...items]);
                return of(items.length);
              },
              { maxSize: 100, gather: asyncScheduler },
            ),
          )
          .subscribe({ complete: resolve });
      });
      // One turn: a synchronous item, then items from chains of promise callbacks.
      source.next(1);
      for (let i = 2; i <= 4; i++) {
        void Promise.resolve()
          .then(() => undefined)
          .then(() => {
            source.next(i);
          });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
      // A later turn: a write of its own.
      source.next(5);
      await new Promise((resolve) => setTimeout(resolve, 5));
      source.complete();
      await done;
      expect(writes).toEqual([[1, 2, 3, 4], [5]]);
    });

    it('writes nothing gathered once unsubscribed, and writes what is gathered when the source completes', async () => {
      const writes: number[][] = [];
      const write = (items: number[]) => {
        writes.push([...items]);
        return of(items.length);
      };
      const source = new Subject<number>();
      const subscription = source
        .pipe(adaptiveBatch(write, { maxSize: 10, gather: asyncScheduler }))
        .subscribe();
      source.next(1);
      subscription.unsubscribe();
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(writes).toEqual([]);
      // Completing within the turn writes the gathered items at once, then completes.
      let completed = false;
      const other = new Subject<number>();
      other.pipe(adaptiveBatch(write, { maxSize: 10, gather: asyncScheduler })).subscribe({
        complete: () => (completed = true),
      });
      other.next(2);
      other.next(3);
      other.complete();
      expect(writes).toEqual([[2, 3]]);
      expect(completed).toBe(true);
    });
  });

  describe('concurrency as an Observable', () => {
    it('follows the latest value: more slots start buffered writes at once', () => {
      testScheduler.run(({ hot, cold, expectObservable }) => {
        const source = hot('     a-b-c-d-e-|');
        const concurrency = hot('x---y-----', { x: 1, y: 3 });
        const write = (batch: string[]) => cold('-----(v|)', { v: batch.join('') });
        // One slot until frame 4: a alone, b and c gather. At 4 two more slots open: (bc) starts;
        // d and e then find free slots and go alone.
        const expected = '     -----a---x-y-(z|)';
        expectObservable(source.pipe(adaptiveBatch(write, { maxSize: 10, concurrency }))).toBe(expected, {
          a: 'a',
          x: 'bc',
          y: 'd',
          z: 'e',
        });
      });
    });
  });

  describe('overflow', () => {
    it("errors with a BufferOverflowError by default ('error')", () => {
      const dropped: string[] = [];
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('  abcd-|');
        const expected = '    ---#';
        const sub = '         ^--!';
        expectObservable(
          source.pipe(
            adaptiveBatch(slowWriter(10), { maxSize: 10, maxBuffered: 2, onDrop: (d) => dropped.push(d) }),
          ),
        ).toBe(expected, undefined, expect.any(BufferOverflowError));
        expectSubscriptions(source.subscriptions).toBe(sub);
      });
      expect(dropped).toEqual([]);
    });

    it('BufferOverflowError is a SluiceError with its own code, the operator and the bound', () => {
      const error = new BufferOverflowError('adaptiveBatch', 2);
      expect(error).toBeInstanceOf(SluiceError);
      expect(error.code).toBe(ErrorCode.BufferOverflow);
      expect(error.name).toBe('BufferOverflowError');
      expect(error.operator).toBe('adaptiveBatch');
      expect(error.maxBuffered).toBe(2);
      expect(error.message).toMatch(/^adaptiveBatch: 2 items already buffered/);
    });

    it("'drop-oldest' drops the oldest buffered item and reports it to onDrop", () => {
      const dropped: string[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const source = hot('  abcde|');
        const expected = '    10ms x 9ms (y|)';
        const config: AdaptiveBatchConfig<string> = {
          maxSize: 10,
          maxBuffered: 2,
          overflow: 'drop-oldest',
          onDrop: (d) => dropped.push(d),
        };
        expectObservable(source.pipe(adaptiveBatch(slowWriter(10), config))).toBe(expected, {
          x: 'a',
          y: 'de',
        });
      });
      expect(dropped).toEqual(['b', 'c']);
    });

    it("'drop-newest' drops the arriving item and reports it to onDrop", () => {
      const dropped: string[] = [];
      testScheduler.run(({ hot, expectObservable }) => {
        const source = hot('  abcde|');
        const expected = '    10ms x 9ms (y|)';
        const config: AdaptiveBatchConfig<string> = {
          maxSize: 10,
          maxBuffered: 2,
          overflow: 'drop-newest',
          onDrop: (d) => dropped.push(d),
        };
        expectObservable(source.pipe(adaptiveBatch(slowWriter(10), config))).toBe(expected, {
          x: 'a',
          y: 'bc',
        });
      });
      expect(dropped).toEqual(['d', 'e']);
    });

    it('drops without onDrop', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const source = hot('  abcde|');
        const expected = '    10ms x 9ms (y|)';
        expectObservable(
          source.pipe(
            adaptiveBatch(slowWriter(10), { maxSize: 10, maxBuffered: 1, overflow: 'drop-oldest' }),
          ),
        ).toBe(expected, { x: 'a', y: 'e' });
      });
    });

    it('errors with what onDrop throws', () => {
      testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
        const source = hot('  abc-|');
        const expected = '    --#';
        const sub = '         ^-!';
        const onDrop = () => {
          throw new Error('onDrop failed');
        };
        expectObservable(
          source.pipe(
            adaptiveBatch(slowWriter(10), { maxSize: 10, maxBuffered: 1, overflow: 'drop-oldest', onDrop }),
          ),
        ).toBe(expected, undefined, new Error('onDrop failed'));
        expectSubscriptions(source.subscriptions).toBe(sub);
      });
    });

    it('holds 10_000 items by default', () => {
      const run = (count: number) => {
        const outcome: { values: string[]; error?: unknown } = { values: [] };
        testScheduler.run(() => {
          range(0, count)
            .pipe(
              map((i) => String(i)),
              adaptiveBatch(slowWriter(10), { maxSize: 20_000 }),
              map((joined) => joined.slice(0, 3)),
            )
            .subscribe({
              next: (value) => outcome.values.push(value),
              error: (error: unknown) => (outcome.error = error),
            });
        });
        return outcome;
      };
      // One item written at once, 10_000 waiting: fits.
      expect(run(10_001)).toEqual({ values: ['0', '123'] });
      // One more overflows.
      expect(run(10_002).error).toBeInstanceOf(BufferOverflowError);
    });
  });

  it('drains a large buffer through a synchronous writer without growing the stack', () => {
    const source = new Subject<number>();
    let writes = 0;
    const gate = new Subject<number>();
    let total = 0;
    let completed = false;
    source
      .pipe(
        // The first write waits for the gate; every later write completes synchronously.
        adaptiveBatch((items: number[]) => (writes++ === 0 ? gate : of(items.length)), {
          maxSize: 1,
          maxBuffered: 100_000,
        }),
      )
      .subscribe({
        next: (n) => (total += n),
        complete: () => (completed = true),
      });
    for (let i = 0; i < 100_000; i++) source.next(i);
    source.complete();
    expect(writes).toBe(1);
    gate.next(1);
    gate.complete();
    expect(writes).toBe(100_000);
    expect(total).toBe(100_000);
    expect(completed).toBe(true);
  });

  it('errors with a write error raised synchronously by throwError', () => {
    const errors: unknown[] = [];
    of(1, 2)
      .pipe(adaptiveBatch(() => throwError(() => new Error('nope')), { maxSize: 1 }))
      .subscribe({ error: (err: unknown) => errors.push(err) });
    expect(errors).toEqual([new Error('nope')]);
  });

  describe('invalid config', () => {
    const write = (items: number[]) => of(items.length);

    it.each<[string, AdaptiveBatchConfig<number>, RegExp]>([
      ['maxSize 0', { maxSize: 0 }, /maxSize must be a positive integer, got 0/],
      ['maxSize 2.5', { maxSize: 2.5 }, /maxSize must be a positive integer/],
      ['maxSize NaN', { maxSize: Number.NaN }, /maxSize must be a positive integer/],
      ['concurrency 0', { maxSize: 1, concurrency: 0 }, /concurrency must be a positive integer or Infinity/],
      ['concurrency 1.5', { maxSize: 1, concurrency: 1.5 }, /concurrency must be a positive integer/],
      ['maxBuffered 0', { maxSize: 1, maxBuffered: 0 }, /maxBuffered must be a positive integer, got 0/],
      [
        'maxBuffered Infinity',
        { maxSize: 1, maxBuffered: Number.POSITIVE_INFINITY },
        /maxBuffered must be a positive integer/,
      ],
      [
        'an unknown overflow',
        { maxSize: 1, overflow: 'drop-all' as 'error' },
        /overflow must be one of error, drop-oldest, drop-newest, got "drop-all"/,
      ],
      [
        'an onDrop that is not a function',
        { maxSize: 1, onDrop: 42 as unknown as () => void },
        /onDrop must be a function/,
      ],
    ])('throws InvalidArgumentError at once for %s', (_label, config, message) => {
      const create = () => adaptiveBatch(write, config);
      expect(create).toThrow(InvalidArgumentError);
      expect(create).toThrow(message);
    });

    it('throws InvalidArgumentError when write is not a function', () => {
      const create = () => adaptiveBatch(undefined as unknown as typeof write, { maxSize: 1 });
      expect(create).toThrow(InvalidArgumentError);
      expect(create).toThrow(/write must be a function/);
    });
  });
});

import { asyncScheduler, map, timer } from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import {
  adaptiveBatches,
  batchJobs,
  BufferOverflowError,
  chunkJobs,
  failed,
  perJob,
  processBatches,
  type BatchHandler,
  type Handled,
  type StartGate,
  type Reservation,
  type ReservedJob,
} from '@sluice/core';
import { newTestScheduler, reservedJob } from '../pipeline/helpers';

const job = (id: string): ReservedJob<string> => reservedJob(id, id);
const r = (...ids: string[]): Reservation<string> => ({ jobs: ids.map(job) });
/** A reservation of jobs `[id, group?]`. */
const rg = (...jobs: [string, string?][]): Reservation<string> => ({
  jobs: jobs.map(([id, group]) => reservedJob(id, id, group === undefined ? {} : { group })),
});
/** Each handler call's results as `ids=status` strings. */
const calls = map((handled: readonly Handled<string>[]) =>
  handled.map((h) => `${h.job.id}=${h.status}`).join(' '),
);
/** A batch handler that records each call's ids and start, then takes `ms` frames. */
const slowBatch =
  (ms: number, log: string[] = []): BatchHandler<string> =>
  (jobs) => {
    log.push(`${jobs.map((j) => j.id).join('')}@${asyncScheduler.now()}`);
    return timer(ms).pipe(map(() => jobs.length));
  };

describe('batch-handler operators', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  describe('processBatches', () => {
    it('calls the handler once per reservation, with bounded concurrency', () => {
      const log: string[] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const reservations = cold('-a-(bc)-----|', { a: r('a1', 'a2'), b: r('b1'), c: r('c1', 'c2', 'c3') });
        expectObservable(
          reservations.pipe(processBatches(slowBatch(3, log), { pipeline: 'p', concurrency: 1 }), calls),
        ).toBe('----x--y--z-|', {
          x: 'a1=completed a2=completed',
          y: 'b1=completed',
          z: 'c1=completed c2=completed c3=completed',
        });
      });
      expect(log).toEqual(['a1a2@1', 'b1@4', 'c1c2c3@7']);
    });

    it('settles each job on its own with perJob, one failure not touching the others', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const handler: BatchHandler<string> = (jobs) =>
          perJob(jobs.map((j) => (j.id === 'b' ? failed(new Error('bad item')) : j.id)));
        expectObservable(
          cold('(x|)', { x: r('a', 'b', 'c') }).pipe(processBatches(handler, { pipeline: 'p' }), calls),
        ).toBe('(x|)', { x: 'a=completed b=failed c=completed' });
      });
    });

    it('errors loudly when more reservations wait than the bound allows', () => {
      testScheduler.run(({ hot, expectObservable }) => {
        const reservations = hot('-abc', { a: r('a'), b: r('b'), c: r('c') });
        expectObservable(
          reservations.pipe(processBatches(slowBatch(100), { pipeline: 'p', maxBuffered: () => 1 })),
        ).toBe('---#', undefined, new BufferOverflowError('processBatches', 1));
      });
    });
  });

  describe('adaptiveBatches', () => {
    it('handles the first jobs at once and gathers the rest while the handler is busy (the TSDoc diagram)', () => {
      const log: string[] = [];
      testScheduler.run(({ cold, expectObservable }) => {
        const reservations = cold('a-b-c-d-e-------f-|', {
          a: r('a'),
          b: r('b'),
          c: r('c'),
          d: r('d'),
          e: r('e'),
          f: r('f', 'g'), // one reservation of two jobs
        });
        expectObservable(
          reservations.pipe(adaptiveBatches(slowBatch(5, log), { pipeline: 'p', maxSize: 10 }), calls),
        ).toBe('-----A----B----C-----(D|)', {
          A: 'a=completed',
          B: 'b=completed c=completed',
          C: 'd=completed e=completed',
          D: 'f=completed g=completed',
        });
      });
      expect(log).toEqual(['a@0', 'bc@5', 'de@10', 'fg@16']);
    });

    it('never starts one job of a reservation alone when the handler is idle: the reservation goes whole', () => {
      const log: string[] = [];
      testScheduler.run(({ cold }) => {
        const big = r(...Array.from({ length: 25 }, (_, i) => `j${i}`));
        cold('x 29ms y', { x: big, y: r('late') })
          .pipe(adaptiveBatches(slowBatch(5, log), { pipeline: 'p', maxSize: 10 }))
          .subscribe();
      });
      // 25 at once: 10, then 10 and 5 as the handler frees up; `late` arrives to an idle handler.
      expect(log.map((l) => l.split('@')[1])).toEqual(['0', '5', '10', '30']);
      expect(log.map((l) => l.split('@')[0]!.match(/j|late/g)!.length)).toEqual([10, 10, 5, 1]);
    });

    it('asks the start gate of the first job of a call, with its grant, before calling the handler', () => {
      const admitted: string[] = [];
      const gate: StartGate = {
        admit: (jobs, grant, start) => {
          admitted.push(`${jobs.map((j) => j.id).join('')}@${String(grant?.at)}`);
          start();
          return undefined;
        },
      };
      const log: string[] = [];
      testScheduler.run(({ cold }) => {
        const grant = { at: 1, storeNow: 1, sentAt: 1, receivedAt: 1 };
        cold('x-y', {
          x: { ...r('a', 'b', 'c'), grant, gate },
          y: { ...r('d'), grant: { ...grant, at: 2 }, gate },
        })
          .pipe(adaptiveBatches(slowBatch(5, log), { pipeline: 'p', maxSize: 2 }))
          .subscribe();
      });
      // a, b go at once; c (same reservation) and d (the next) gather while the handler is busy.
      expect(admitted).toEqual(['ab@1', 'cd@1']);
      expect(log).toEqual(['ab@0', 'cd@5']);
    });
  });

  describe('batchJobs and chunkJobs', () => {
    it('batchJobs regroups jobs of several reservations by size and time', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const reservations = cold('-(ab)-c-d-----e---|', {
          a: r('a1', 'a2'),
          b: r('b1'),
          c: r('c1'),
          d: r('d1'),
          e: r('e1'),
        });
        expectObservable(
          reservations.pipe(
            batchJobs({ size: 3, timeMs: 5 }),
            map((x) => x.jobs.map((j) => j.id).join(' ')),
          ),
        ).toBe('-x---------y------(z|)', { x: 'a1 a2 b1', y: 'c1 d1', z: 'e1' });
      });
    });

    it('chunkJobs splits a reservation into calls of at most n jobs, keeping its grant', () => {
      const grant = { at: 7, storeNow: 7, sentAt: 6, receivedAt: 8 };
      testScheduler.run(({ cold, expectObservable }) => {
        expectObservable(
          cold('(x|)', { x: { ...r('a', 'b', 'c', 'd', 'e'), grant } }).pipe(chunkJobs(2)),
        ).toBe('(pqr|)', {
          p: { ...r('a', 'b'), grant },
          q: { ...r('c', 'd'), grant },
          r: { ...r('e'), grant },
        });
      });
      expect(() => chunkJobs(0)).toThrow('chunkJobs: size must be a positive integer, got 0');
    });

    it('batchJobs never mixes groups unless asked: each group fills and times out its own batch', () => {
      testScheduler.run(({ cold, expectObservable }) => {
        const reservations = cold('-(ab)-c-d-|', {
          a: rg(['a1', 'x'], ['a2', 'y']),
          b: rg(['b1', 'x']),
          c: rg(['c1', 'y'], ['c2']),
          d: rg(['d1', 'x']),
        });
        const ids = map((x: Reservation<string>) => x.jobs.map((j) => j.id).join(' '));
        // x fills at 8; y and the jobs of no group wait for the completion.
        expectObservable(reservations.pipe(batchJobs({ size: 3, timeMs: 20 }), ids)).toBe('--------x-(yz|)', {
          x: 'a1 b1 d1',
          y: 'a2 c1',
          z: 'c2',
        });
        expectObservable(reservations.pipe(batchJobs({ size: 3, timeMs: 20, mixGroups: true }), ids)).toBe(
          '-x------y-|',
          { x: 'a1 a2 b1', y: 'c1 c2 d1' },
        );
      });
    });

    it('chunkJobs splits a reservation by group first, keeping its grant, unless mixGroups', () => {
      const grant = { at: 7, storeNow: 7, sentAt: 6, receivedAt: 8 };
      const ids = map((x: Reservation<string>) => `${x.jobs.map((j) => j.id).join(' ')}@${x.grant?.at}`);
      testScheduler.run(({ cold, expectObservable }) => {
        const one = { ...rg(['a', 'x'], ['b', 'y'], ['c', 'x'], ['d'], ['e', 'x']), grant };
        expectObservable(cold('(u|)', { u: one }).pipe(chunkJobs(2), ids)).toBe('(pqrs|)', {
          p: 'a c@7',
          q: 'e@7',
          r: 'b@7',
          s: 'd@7',
        });
        expectObservable(cold('(u|)', { u: one }).pipe(chunkJobs(2, { mixGroups: true }), ids)).toBe(
          '(pqr|)',
          {
            p: 'a b@7',
            q: 'c d@7',
            r: 'e@7',
          },
        );
      });
    });

    it('adaptiveBatches gathers a call from the oldest waiting job and the jobs of its group, unless mixGroups', () => {
      const apart: string[] = [];
      const mixed: string[] = [];
      testScheduler.run(({ cold }) => {
        // The first job finds the handler idle; the rest gather while it is busy.
        const reservations = cold('a-(bcde)|', {
          a: rg(['a1', 'x']),
          b: rg(['b1', 'y']),
          c: rg(['c1', 'x']),
          d: rg(['d1', 'y']),
          e: rg(['e1']),
        });
        reservations.pipe(adaptiveBatches(slowBatch(5, apart), { pipeline: 'p', maxSize: 10 })).subscribe();
        reservations
          .pipe(adaptiveBatches(slowBatch(5, mixed), { pipeline: 'p', maxSize: 10, mixGroups: true }))
          .subscribe();
      });
      expect(apart).toEqual(['a1@0', 'b1d1@5', 'c1@10', 'e1@15']);
      expect(mixed).toEqual(['a1@0', 'b1c1d1e1@5']);
    });
  });
});

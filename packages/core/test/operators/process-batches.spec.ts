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
  });
});

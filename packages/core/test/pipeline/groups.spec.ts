import { asyncScheduler, map, timer, toArray } from 'rxjs';
import {
  definePipeline,
  fixed,
  maxInAnyWindow,
  MemoryStore,
  type Job,
  type RateLimitSpec,
} from '@sluice/core';
import { describeOutcome, pipelineHarness } from '@sluice/testing';
import { newTestScheduler } from './helpers';

interface Start {
  readonly data: string;
  readonly group: string | undefined;
  readonly attempt: number;
  readonly at: number;
  end?: number;
}

/** A handler that records each start and end, taking `ms` of virtual time. */
function recorder(ms: number, fail?: (job: Job<string>) => boolean) {
  const starts: Start[] = [];
  const handler = (job: Job<string>) => {
    const start: Start = { data: job.data, group: job.group, attempt: job.attempt, at: asyncScheduler.now() };
    starts.push(start);
    return timer(ms).pipe(
      map(() => {
        start.end = asyncScheduler.now();
        if (fail?.(job)) throw new Error(`${job.data} failed on attempt ${job.attempt}`);
        return job.data;
      }),
    );
  };
  return { starts, handler };
}

describe('groups in whole pipelines (virtual time)', () => {
  it('serves groups round-robin: one small job each for three groups comes before the rest of a backlog', () => {
    const { starts, handler } = recorder(10);
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({
        pipelines: [definePipeline<string>({ queue: 'hooks', concurrency: 1, handler })],
      });
      h.enqueueAt(0, 'hooks', [
        ...['a1', 'a2', 'a3', 'a4'].map((data) => ({ data, options: { group: 'a' } })),
        { data: 'b1', options: { group: 'b' } },
        { data: 'c1', options: { group: 'c' } },
      ]);
      const outcomes$ = h.run({ until: 1_000 }).pipe(map(describeOutcome), toArray());
      expectObservable(outcomes$).toBe('1000ms (x|)', {
        x: ['a1', 'b1', 'c1', 'a2', 'a3', 'a4'].map((d) => `completed:${d}`),
      });
    });
    expect(starts.map((s) => s.data)).toEqual(['a1', 'b1', 'c1', 'a2', 'a3', 'a4']);
  });

  it.each([
    ['size/time batches', { size: 4, timeMs: 20 }],
    ['adaptive batches', { adaptive: true as const, maxSize: 4 }],
  ])('%s never mix groups in one handler call unless asked', (_kind, spec) => {
    const run = (mixGroups: boolean): string[][] => {
      const calls: string[][] = [];
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          pipelines: [
            definePipeline<string>({
              queue: 'rows',
              concurrency: 1,
              batch: { ...spec, mixGroups },
              handler: (jobs) => {
                calls.push(jobs.map((j) => `${j.group ?? '-'}:${j.data}`));
                return timer(10).pipe(map(() => jobs.map((j) => j.data)));
              },
            }),
          ],
        });
        h.enqueueAt(
          0,
          'rows',
          Array.from({ length: 12 }, (_, i) => ({
            data: String(i),
            ...(i % 3 === 2 ? {} : { options: { group: `t${i % 3}` } }),
          })),
        );
        h.run({ until: 1_000 }).subscribe();
      });
      return calls;
    };
    const apart = run(false);
    expect(apart.flat()).toHaveLength(12);
    for (const call of apart) expect(new Set(call.map((c) => c.split(':')[0])).size).toBe(1);
    const mixed = run(true);
    expect(mixed.flat()).toHaveLength(12);
    expect(mixed.some((call) => new Set(call.map((c) => c.split(':')[0])).size > 1)).toBe(true);
  });

  it("a noisy group's backlog of 20,000 jobs delays 50 other groups by about one round each, not by its backlog", () => {
    const { starts, handler } = recorder(10);
    const concurrency = 4;
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        pipelines: [definePipeline<string>({ queue: 'hooks', concurrency, handler })],
      });
      h.enqueueAt(
        0,
        'hooks',
        Array.from({ length: 20_000 }, (_, i) => ({ data: `noisy-${i}`, options: { group: 'noisy' } })),
      );
      // At 500 ms, 50 customers add 3 jobs each.
      h.enqueueAt(
        500,
        'hooks',
        Array.from({ length: 150 }, (_, i) => ({
          data: `c${i % 50}-${Math.floor(i / 50)}`,
          options: { group: `c${i % 50}` },
        })),
      );
      h.run({ until: 3_000 }).subscribe();
    });
    const small = starts.filter((s) => s.group !== 'noisy');
    expect(small).toHaveLength(150);
    const lastSmall = Math.max(...small.map((s) => s.at));
    // Each round serves one job of every group with ready jobs (51 groups); three rounds serve every
    // customer job. The noisy group gets at most one start a round, plus what was in flight at 500.
    const noisyMeanwhile = starts.filter((s) => s.group === 'noisy' && s.at >= 500 && s.at <= lastSmall);
    expect(noisyMeanwhile.length).toBeLessThanOrEqual(3 + concurrency);
    // The noisy group's own order is kept, and it goes on once the others are served.
    const noisy = starts.filter((s) => s.group === 'noisy').map((s) => s.data);
    expect(noisy).toEqual(noisy.map((_, i) => `noisy-${i}`));
    expect(noisy.length).toBeGreaterThan(500);
  });

  it('groups.concurrency 1 across two pipelines: never two jobs of a group at once, in add order, retries included', () => {
    // Every job whose number is a multiple of 3 fails its first attempt (retried after 40 ms).
    const { starts, handler } = recorder(
      7,
      (job) => job.attempt === 1 && Number(job.data.split('-')[1]) % 3 === 0,
    );
    newTestScheduler().run(() => {
      const spec = {
        queue: 'orders',
        concurrency: 5,
        groups: { concurrency: 1 },
        backoff: fixed(40),
        handler,
      };
      const h = pipelineHarness({
        pipelines: [
          definePipeline<string>({ ...spec, name: 'w1' }),
          definePipeline<string>({ ...spec, name: 'w2' }),
        ],
      });
      for (let t = 0; t < 200; t += 20) {
        h.enqueueAt(
          t,
          'orders',
          Array.from({ length: 12 }, (_, i) => {
            const group = `e${i % 4}`;
            return { data: `${group}-${t / 20}${String(Math.floor(i / 4))}`, options: { group } };
          }),
        );
      }
      h.run({ until: 5_000, drainTimeoutMs: 1_000 }).subscribe();
    });
    expect(starts.filter((s) => s.attempt === 1)).toHaveLength(120);
    for (const group of ['e0', 'e1', 'e2', 'e3']) {
      const runs = starts.filter((s) => s.group === group);
      // One at a time: each start comes after the previous job of the group ended.
      for (let i = 1; i < runs.length; i++) {
        expect(runs[i]!.at).toBeGreaterThanOrEqual(runs[i - 1]!.end ?? Infinity);
      }
      // In add order, a retried job again before the next one.
      const firstStarts = runs
        .filter((s, i) => runs.findIndex((r) => r.data === s.data) === i)
        .map((s) => s.data);
      expect(firstStarts).toEqual([...firstStarts].sort());
      for (let i = 1; i < runs.length; i++) {
        if (runs[i - 1]!.data !== runs[i]!.data) expect(runs[i]!.attempt).toBe(1);
      }
      expect(runs.filter((s) => s.attempt === 2).length).toBeGreaterThan(0);
    }
  });

  describe('rate limits per group', () => {
    /** Start times of each group's jobs (first attempts and retries alike). */
    const byGroup = (starts: readonly Start[]): Map<string, number[]> => {
      const out = new Map<string, number[]>();
      for (const s of starts) {
        if (s.group === undefined) continue;
        out.set(s.group, [...(out.get(s.group) ?? []), s.at]);
      }
      return out;
    };

    it('never starts more than allowed jobs of a group in any window by handler start; groups apart, in add order', () => {
      const { starts, handler } = recorder(10);
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          pipelines: [
            definePipeline<string>({
              queue: 'hooks',
              concurrency: 10,
              groups: { rateLimit: { allowed: 3, periodMs: 1000 } },
              handler,
            }),
          ],
        });
        h.enqueueAt(
          0,
          'hooks',
          ['a', 'b', 'c', 'd', 'e'].flatMap((g) =>
            Array.from({ length: 20 }, (_, i) => ({
              data: `${g}-${String(i).padStart(2, '0')}`,
              options: { group: g },
            })),
          ),
        );
        // Jobs of no group are not limited by any group's log.
        h.enqueueAt(
          100,
          'hooks',
          Array.from({ length: 30 }, (_, i) => ({ data: `plain-${i}` })),
        );
        h.run({ until: 5_000 }).subscribe();
      });
      const groups = byGroup(starts);
      expect([...groups.keys()].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
      for (const [group, times] of groups) {
        expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(3);
        // Saturated: 3 a window, so in 5 s at least 13 of its 20 (the first window starts at once).
        expect(times.length).toBeGreaterThanOrEqual(13);
        const order = starts.filter((s) => s.group === group).map((s) => s.data);
        expect(order).toEqual([...order].sort());
      }
      const plain = starts.filter((s) => s.group === undefined);
      expect(plain).toHaveLength(30);
      // Not held behind the groups' windows: all of them start within a few handler runs.
      expect(Math.max(...plain.map((s) => s.at))).toBeLessThan(200);
    });

    it("checks a group's log with the pipeline's limit: both hold by handler start", () => {
      const { starts, handler } = recorder(5);
      newTestScheduler().run(() => {
        const h = pipelineHarness({
          pipelines: [
            definePipeline<string>({
              queue: 'hooks',
              concurrency: 8,
              rateLimit: { allowed: 10, periodMs: 1000 },
              groups: { rateLimit: { allowed: 4, periodMs: 1000 } },
              handler,
            }),
          ],
        });
        h.enqueueAt(
          0,
          'hooks',
          ['a', 'b', 'c', 'd'].flatMap((g) =>
            Array.from({ length: 15 }, (_, i) => ({ data: `${g}-${i}`, options: { group: g } })),
          ),
        );
        h.run({ until: 4_000 }).subscribe();
      });
      expect(
        maxInAnyWindow(
          starts.map((s) => s.at),
          1000,
        ),
      ).toBeLessThanOrEqual(10);
      for (const times of byGroup(starts).values())
        expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(4);
      expect(starts.length).toBeGreaterThanOrEqual(35); // 10 a window, four windows
    });

    it("moves a late unit in its group's log too, and hands back none out of order (concurrency 1 per group)", () => {
      // Handlers of 300 ms behind one handler slot: units granted ahead wait for the slot and come late.
      const { starts, handler } = recorder(300);
      const moves: RateLimitSpec[] = [];
      newTestScheduler().run(() => {
        const store = new MemoryStore();
        const rebase = store.rebaseLimit.bind(store);
        store.rebaseLimit = (queue, limit, from, units, lead) => {
          moves.push(limit);
          return rebase(queue, limit, from, units, lead);
        };
        const h = pipelineHarness({
          store,
          pipelines: [
            definePipeline<string>({
              queue: 'hooks',
              concurrency: 1,
              groups: { concurrency: 1, rateLimit: { allowed: 2, periodMs: 1000 } },
              handler,
            }),
          ],
        });
        h.enqueueAt(
          0,
          'hooks',
          ['a', 'b', 'c'].flatMap((g) =>
            Array.from({ length: 6 }, (_, i) => ({ data: `${g}-${i}`, options: { group: g } })),
          ),
        );
        h.run({ until: 8_000 }).subscribe();
      });
      // Some units were moved, each in its group's log (a group-only pipeline has no log of its own).
      expect(moves.length).toBeGreaterThan(0);
      for (const m of moves) {
        expect(m.group).toMatch(/^[abc]$/);
        expect(m.also ?? []).toEqual([]);
      }
      for (const [group, times] of byGroup(starts)) {
        expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(2);
        const order = starts.filter((s) => s.group === group).map((s) => s.data);
        expect(order).toEqual([...order].sort());
        expect(new Set(order).size).toBe(order.length); // each job once (no attempt spent twice)
      }
      expect(starts.length).toBeGreaterThanOrEqual(15);
    });
  });
});

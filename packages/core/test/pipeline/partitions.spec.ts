import { asyncScheduler, finalize, map, timer } from 'rxjs';
import { definePipeline, MemoryStore, PartitionedStore } from '@sluice/core';
import { pipelineHarness } from '@sluice/testing';
import { maxInAnyWindow, newTestScheduler } from './helpers';

/** Whole pipelines over a partitioned queue (a `PartitionedStore` over a `MemoryStore`), in virtual time. */
describe('a pipeline over a partitioned queue', () => {
  const partitioned = (): PartitionedStore =>
    new PartitionedStore(new MemoryStore(), { partitions: { emails: 3 } });

  it('rate limit 400 per 1,000 ms over three partitions: never more than 400 starts in any window, each partition drained', async () => {
    const starts: number[] = [];
    const store = partitioned();
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<number>({
            queue: 'emails',
            concurrency: 50,
            rateLimit: { allowed: 400, periodMs: 1000 },
            handler: (job) => {
              starts.push(asyncScheduler.now());
              return timer(7).pipe(map(() => job.data));
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'emails',
        Array.from({ length: 3_000 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 8_000 }).subscribe();
    });
    expect(maxInAnyWindow(starts, 1000)).toBeLessThanOrEqual(400);
    expect(starts).toHaveLength(3_000);
    // 3,000 at 400 a second: the last starts after 7 s (the first 400 at once).
    expect(Math.max(...starts)).toBeGreaterThanOrEqual(7_000);
    expect(starts.filter((t) => t < 5_000).length).toBeGreaterThanOrEqual(1_950);
    const completed = await Promise.all(
      store.partitionNames('emails').map(async (p) => (await store.inner.stats(p)).totals.completed),
    );
    expect(completed).toEqual([1_000, 1_000, 1_000]);
  });

  it('global concurrency 10 over three partitions: never more than 10 handlers at once', () => {
    let running = 0;
    let most = 0;
    let done = 0;
    const store = partitioned();
    newTestScheduler().run(() => {
      const h = pipelineHarness({
        store,
        pipelines: [
          definePipeline<number>({
            queue: 'emails',
            concurrency: 50,
            globalConcurrency: 10,
            handler: (job) => {
              most = Math.max(most, ++running);
              return timer(20).pipe(
                map(() => job.data),
                finalize(() => {
                  running--;
                  done++;
                }),
              );
            },
          }),
        ],
      });
      h.enqueueAt(
        0,
        'emails',
        Array.from({ length: 600 }, (_, i) => ({ data: i })),
      );
      h.run({ until: 5_000 }).subscribe();
    });
    expect(done).toBe(600);
    expect(most).toBe(10);
  });
});

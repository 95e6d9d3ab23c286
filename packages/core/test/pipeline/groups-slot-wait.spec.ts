import { asyncScheduler, map, timer } from 'rxjs';
import { definePipeline, type Job } from '@sluice/core';
import { pipelineHarness } from '@sluice/testing';
import { newTestScheduler } from './helpers';

/** Start times (virtual ms) of `count` jobs of one group, `groups: { concurrency: 1 }`, `ms` each. */
function startsOfOneGroup(count: number, ms: number): number[] {
  const starts: number[] = [];
  const handler = (job: Job<number>) => {
    starts.push(asyncScheduler.now());
    return timer(ms).pipe(map(() => job.data));
  };
  newTestScheduler().run(() => {
    const h = pipelineHarness({
      pipelines: [
        definePipeline<number>({ queue: 'q', concurrency: 4, groups: { concurrency: 1 }, handler }),
      ],
    });
    h.enqueueAt(
      0,
      'q',
      Array.from({ length: count }, (_, i) => ({ data: i, options: { group: 'one' } })),
    );
    h.run({ until: 20_000 }).subscribe();
  });
  return starts;
}

/**
 * A group at its concurrency makes the reserve come back short (or empty), and the pipeline's source
 * then sleeps (`idle.minMs`, doubling up to `idle.maxMs` while answers are empty). The settle that
 * frees the group's slot releases its next job and wakes the queue's sleeping workers (the store's
 * `wakeups`), so a concurrency-1 group runs its jobs back to back, not one per idle sleep (before
 * the wake-up: a start every 50 ms with a 10 ms handler).
 */
describe('a group at its concurrency (virtual time)', () => {
  it('starts the next job of a concurrency-1 group soon after the last one settles (10 ms jobs)', () => {
    const starts = startsOfOneGroup(20, 10);
    expect(starts).toHaveLength(20);
    // One after another: the last can start at 190 ms. Allow 20 ms per job to settle and reserve.
    expect(starts[19]).toBeLessThanOrEqual(20 * 30);
  });
});

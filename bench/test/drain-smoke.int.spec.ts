import { drain } from '../src/drain';

/**
 * `npm run bench:drain` end to end on a small backlog: every job drained, in both modes, and each
 * figure a measurement of that drain (worker and Redis CPU spent, script calls made).
 */
describe('bench:drain', () => {
  it.each([false, true])(
    'drains its backlog and measures it (batch: %s)',
    async (batch) => {
      const [round] = await drain({ batch, jobs: 3000, rounds: 1 });
      expect(round).toBeDefined();
      expect(round!.mode).toBe(batch ? 'batches of 100' : 'concurrency 100');
      expect(round!.jobs).toBe(3000);
      expect(round!.jobsPerSecond).toBeGreaterThan(0);
      expect(round!.workerUsPerJob).toBeGreaterThan(0);
      expect(round!.redisUsPerJob).toBeGreaterThan(0);
      // Every job is reserved and settled: at least one script call per reserve of at most the
      // prefetch budget, and far fewer than two calls per job.
      expect(round!.callsPerThousand).toBeGreaterThan(batch ? 0.5 : 5);
      expect(round!.callsPerThousand).toBeLessThan(2000);
      expect(round!.windows).toEqual([]);
    },
    60_000,
  );

  it('measures the worker in windows of completions when asked', async () => {
    const [round] = await drain({ batch: false, jobs: 3000, rounds: 1, window: 1000 });
    // Three windows of 1,000 jobs, each a measurement of its own.
    expect(round!.windows).toHaveLength(3);
    for (const w of round!.windows) expect(w).toBeGreaterThan(0);
  }, 60_000);
});

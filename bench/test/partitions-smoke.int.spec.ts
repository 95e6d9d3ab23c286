import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAYOUTS, type PartitionsResults } from '../src/partitions';
import { runSmoke } from './smoke';

/**
 * `npm run bench:partitions -- --smoke` end to end: a 3-master Cluster of its own, one queue on 1, 2
 * and 3 masters and BullMQ's one queue, both output files. The figures of a smoke run mean nothing;
 * what is checked holds whatever the speed: every job of a layout completed in its own partitions
 * (evenly: jobs are added round-robin), and each layout's Redis work fell on the masters it uses.
 */
describe('bench:partitions --smoke', () => {
  let out = '';
  let results: PartitionsResults;
  let markdown = '';

  beforeAll(async () => {
    out = await runSmoke('partitions.js', 'bench:partitions');
    results = JSON.parse(readFileSync(join(out, 'results', 'partitions.json'), 'utf8')) as PartitionsResults;
    markdown = readFileSync(join(out, 'RESULTS-partitions.md'), 'utf8');
  }, 180_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('spreads each layout’s jobs evenly over its partitions', () => {
    const jobs = results.profile.jobs;
    expect(results.median['sluice-1'].perPartition).toEqual([jobs]);
    expect(results.median['sluice-2'].perPartition).toEqual([jobs / 2, jobs / 2]);
    expect(results.median['sluice-3'].perPartition).toEqual([jobs / 3, jobs / 3, jobs / 3]);
    const limited = results.profile.limitJobs;
    expect(results.median['queue-limit'].perPartition).toEqual([limited]);
    expect(results.median['sluice-3-limit'].perPartition).toEqual([limited / 3, limited / 3, limited / 3]);
  });

  it('measures the Redis CPU of every master, most of it on the masters a layout uses', () => {
    for (const layout of LAYOUTS) {
      const f = results.median[layout];
      expect([layout, f.jobsPerSec > 0, f.masterUsPerJob.length, f.totalUsPerJob > 0]).toEqual([
        layout,
        true,
        3,
        true,
      ]);
    }
    // One partition on master 1: the idle masters only keep the Cluster alive.
    expect(results.median['sluice-1'].masterShare[0]).toBeGreaterThan(0.5);
    expect(results.median['sluice-2'].masterShare[2]).toBeLessThan(0.25);
  });

  it('writes the table', () => {
    expect(markdown).toContain('| Sluice, 3 partitions (one per master)');
    expect(markdown).toMatch(/Spread: 2 master\(s\)/);
    expect(markdown).toContain('The cost of a rate limit kept exact across partitions');
  });
});

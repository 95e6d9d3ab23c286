import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DurableResults } from '../src/durable';
import { runSmoke } from './smoke';

/**
 * `npm run bench:durable -- --smoke` end to end: its own master and replica, every mode, both output
 * files. The figures of a smoke run mean nothing; what is checked is that each was measured and that
 * a durable add's jobs were on the replica the moment the add resolved.
 */
describe('bench:durable --smoke', () => {
  let out = '';
  let results: DurableResults;
  let markdown = '';

  beforeAll(async () => {
    out = await runSmoke('durable.js', 'bench:durable');
    results = JSON.parse(readFileSync(join(out, 'results', 'durable.json'), 'utf8')) as DurableResults;
    markdown = readFileSync(join(out, 'RESULTS-durable.md'), 'utf8');
  }, 120_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('measures every mode', () => {
    for (const mode of ['plain', 'durable', 'bullmq'] as const) {
      const f = results.median[mode];
      expect([
        mode,
        f.singleP50Ms > 0,
        f.singleP99Ms >= f.singleP50Ms,
        f.bulkJobsPerSec > 0,
        f.redisUsPerJob > 0,
      ]).toEqual([mode, true, true, true, true]);
    }
    expect(results.machine.redis).toMatch(/^\d+\.\d+/);
  });

  it('finds a durable add’s jobs on the replica the moment it resolved', () => {
    expect(results.median.durable.onReplicaAtOnce).toBe(results.profile.batch);
  });

  it('writes the table', () => {
    expect(markdown).toContain('`durableAdds: { replicas: 1 }`');
    expect(markdown).toMatch(/\| Sluice, plain \(the default\) +\| +[\d.]+ \|/);
  });
});

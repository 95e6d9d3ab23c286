import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitsResults } from '../src/limits';
import { runSmoke } from './smoke';

/**
 * `npm run bench:limits -- --smoke` end to end: its own redis-server, a worker under a limit, both
 * output files. The figures of a smoke run mean nothing; what is checked is that each was measured
 * and that the limit held the backlog to its rate (300 jobs at 2,000 a second start at once).
 */
describe('bench:limits --smoke', () => {
  let out = '';
  let results: LimitsResults;
  let markdown = '';

  beforeAll(async () => {
    out = await runSmoke('limits.js', 'bench:limits');
    results = JSON.parse(readFileSync(join(out, 'results', 'limits.json'), 'utf8')) as LimitsResults;
    markdown = readFileSync(join(out, 'RESULTS-limits.md'), 'utf8');
  }, 120_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('measures every limit of the profile', () => {
    expect(results.figures.map((f) => f.allowed)).toEqual(results.profile.limits);
    for (const f of results.figures) {
      expect([f.jobsPerSec > 0, f.redisUsPerJob > 0, f.scriptCallsPerJob > 0, f.moved >= 0]).toEqual([
        true,
        true,
        true,
        true,
      ]);
    }
  });

  it('writes the table', () => {
    expect(markdown).toContain('| run | limit per 1,000 ms |');
    expect(markdown).toMatch(/\|\s+1 \|\s+2,000 \|/);
  });
});

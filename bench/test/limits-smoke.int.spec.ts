import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitsResults } from '../src/limits';
import { runSmoke } from './smoke';

/**
 * `npm run bench:limits -- --smoke` end to end: its own redis-server, a worker under a limit, both
 * output files. The figures of a smoke run mean nothing; what is checked is that each run was
 * measured: 300 jobs at 2,000 a second (they start at once), then handlers of 5 ms under a limit
 * they cannot reach.
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

  it('measures every run of the profile', () => {
    expect(results.figures.map(({ allowed, handlerMs }) => ({ allowed, handlerMs }))).toEqual(
      results.profile.runs,
    );
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
    expect(markdown).toContain('| run | limit per 1,000 ms | handler call (ms) |');
    expect(markdown).toMatch(/\|\s+1 \|\s+2,000 \|\s+0 \|/);
    expect(markdown).toMatch(/\|\s+2 \|\s+1,000,000 \|\s+5 \|/);
  });
});

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as markdownPlugin from 'prettier/plugins/markdown';
import * as prettier from 'prettier/standalone';
import type { GroupsResults } from '../src/groups';
import { BENCH, runSmoke } from './smoke';

/**
 * `npm run bench:groups -- --smoke` end to end: its own redis-server, the Sluice worker process with
 * groups and the BullMQ worker process with a queue and a Worker per tenant, both output files. The
 * figures of a smoke run mean nothing; what is checked is that each was measured, and what holds
 * whatever the speed: every small group's job was timed, drained groups leave no key, a BullMQ
 * Worker per tenant opens at least a connection per tenant while Sluice's worker opens a few.
 */
describe('bench:groups --smoke', () => {
  let out = '';
  let results: GroupsResults;
  let markdown = '';

  beforeAll(async () => {
    out = await runSmoke('groups.js', 'bench:groups');
    results = JSON.parse(readFileSync(join(out, 'results', 'groups.json'), 'utf8')) as GroupsResults;
    markdown = readFileSync(join(out, 'RESULTS-groups.md'), 'utf8');
  }, 120_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('times every small group job, with and without the big group, and leaves the big backlog waiting', () => {
    const p = results.profile.fairness;
    for (const run of [results.fairness.alone, results.fairness.withBig]) {
      expect(run['smallJobs']).toBe(p.groups * p.perGroup);
      for (const key of ['p50', 'p99', 'max']) expect(run[key]).toBeGreaterThan(0);
    }
    // The small groups were served while most of the big group still waited.
    expect(results.fairness.withBig['bigWaitingAfter']).toBeGreaterThan(p.big / 2);
    expect(Number.isFinite(results.fairness.p99Ratio)).toBe(true);
  });

  it('measures Redis CPU and memory with few and many groups; drained groups leave no key', () => {
    for (const run of [results.scale.few, results.scale.many]) {
      expect(run['processing']).toBeGreaterThan(0);
      expect(run['redisUsPerJob']).toBeGreaterThan(0);
      expect(run['bytesPerQueuedJob']).toBeGreaterThan(0);
      expect(run['groupKeysLeft']).toBe(0);
    }
    expect(results.scale.many['groups']).toBe(results.profile.scale.manyGroups);
  });

  it('compares Sluice groups with a BullMQ queue and Worker per tenant', () => {
    const { sluice, bullmq } = results.tenants;
    for (const side of [sluice, bullmq]) {
      for (const key of ['processing', 'redisUsPerJob', 'workerUsPerJob', 'rssMiB', 'heapMiB']) {
        expect({ key, value: side[key] }).toEqual({ key, value: expect.any(Number) });
        expect(side[key]).toBeGreaterThan(0);
      }
    }
    // Connections: a BullMQ Worker per tenant holds its own; Sluice's one pipeline holds a few.
    expect(bullmq['connections']).toBeGreaterThanOrEqual(results.profile.tenants.tenants);
    expect(sluice['connections']).toBeGreaterThan(0);
    expect(sluice['connections']).toBeLessThanOrEqual(4);
    expect(results.machine.bullmq).toMatch(/^6\./);
  });

  it('writes a RESULTS-groups.md that Prettier leaves as it is', async () => {
    expect(markdown).toContain('## Fairness');
    expect(markdown).toContain('## 1,000 tenants side by side');
    const config = JSON.parse(readFileSync(join(BENCH, '..', '.prettierrc.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(await prettier.check(markdown, { ...config, parser: 'markdown', plugins: [markdownPlugin] })).toBe(
      true,
    );
  });
});

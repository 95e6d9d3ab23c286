import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { InstructionsResults } from '../src/instructions';
import { runSmoke } from './smoke';

/**
 * `npm run bench:instructions -- --smoke` end to end: redis-server under callgrind, every phase
 * counted, both output files. The counts of a smoke run are only checked to be counts of the work
 * asked: each phase processed its jobs and redis-server executed instructions for them.
 */
describe('bench:instructions --smoke', () => {
  let out = '';
  let results: InstructionsResults;
  let markdown = '';

  beforeAll(async () => {
    out = await runSmoke('instructions.js', 'bench:instructions');
    results = JSON.parse(
      readFileSync(join(out, 'results', 'instructions.json'), 'utf8'),
    ) as InstructionsResults;
    markdown = readFileSync(join(out, 'RESULTS-instructions.md'), 'utf8');
  }, 120_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('counts every phase of the profile', () => {
    expect(results.phases.map((p) => [p.phase, p.jobs])).toEqual([
      ['enqueue, calls of 1,000', results.profile.jobs],
      ['process, batches of 100', results.profile.jobs],
      ['add, one job per call, none parked', results.profile.singleJobs],
      ['process, one job per call', results.profile.singleJobs],
      ['add, one job handed over to a parked worker', results.profile.singleJobs],
      ["floor: a job's record read, finished and deleted (hash per job), 100 a call", results.profile.jobs],
      ['floor: the same with one string per job (MGET, MSET, DEL), 100 a call', results.profile.jobs],
    ]);
    for (const p of results.phases) {
      expect(p.instructions).toBeGreaterThan(0);
      expect(p.perJob).toBe(Math.round(p.instructions / p.jobs));
    }
    const perJob = (i: number) => results.phases[i]!.perJob;
    const [enqueue, batches, addOne, single, handedOver, hashFloor, stringFloor] = [0, 1, 2, 3, 4, 5, 6];
    // One job per call costs each call's fixed work per job: more than a batch of 100 does.
    expect(perJob(single)).toBeGreaterThan(perJob(batches));
    // An add of one job pays a call's fixed work alone: more than one of 1,000; handed over, more still.
    expect(perJob(addOne)).toBeGreaterThan(perJob(enqueue));
    expect(perJob(handedOver)).toBeGreaterThan(perJob(addOne));
    // A record's own commands are part of what processing a job costs, and a string less than a hash.
    expect(perJob(hashFloor)).toBeLessThan(perJob(batches));
    expect(perJob(stringFloor)).toBeLessThan(perJob(hashFloor));
    expect(results.valgrind).toMatch(/^valgrind-/);
  });

  it('writes the table', () => {
    for (const p of results.phases) expect(markdown).toContain(`| ${p.phase}`);
  });
});

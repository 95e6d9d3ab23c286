import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as markdownPlugin from 'prettier/plugins/markdown';
import * as prettier from 'prettier/standalone';
import { PROFILES } from '../src/profile';
import type { JsonResults } from '../src/report';
import type { RunDiagnostics } from '../src/runner';
import { TARGETS } from '../src/targets';
import { BENCH, runSmoke } from './smoke';

/**
 * `npm run bench -- --smoke` end to end, through the same code as `--quick` and the full run (tiny
 * sizes, one round): its own redis-server, both systems' worker processes, every scenario, both
 * output files. Checks their shape, not the figures (a smoke run is too short to mean anything).
 */
describe('bench --smoke', () => {
  let out = '';
  let json: JsonResults;
  let markdown = '';
  let diagnostics: RunDiagnostics[] = [];

  beforeAll(async () => {
    out = await runSmoke('run.js', 'bench');
    json = JSON.parse(readFileSync(join(out, 'results', 'latest.json'), 'utf8')) as JsonResults;
    diagnostics = JSON.parse(
      readFileSync(join(out, 'results', 'diagnostics.json'), 'utf8'),
    ) as RunDiagnostics[];
    markdown = readFileSync(join(out, 'RESULTS.md'), 'utf8');
  }, 120_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('reports every scenario with the documented fields', () => {
    expect(new Set(json.scenarios.map((s) => s.name))).toEqual(
      new Set(['Throughput', 'Latency', 'Rate-limit accuracy', 'Backlog memory', 'Batch API shape']),
    );
    for (const s of json.scenarios) {
      expect(s).toEqual(
        expect.objectContaining({
          name: expect.any(String),
          metric: expect.any(String),
          unit: expect.any(String),
          sluice: expect.any(Number),
          bullmq: expect.any(Number),
          better: expect.stringMatching(/^(higher|lower)$/),
        }),
      );
      expect(s.ratio === null || typeof s.ratio === 'number').toBe(true);
    }
    // Every target reads a row that exists.
    const ids = new Set(json.scenarios.map((s) => s.id));
    for (const t of TARGETS) expect(ids).toContain(t.row);
    // The latency floors (a bare PUBLISH, or RPUSH to a list waited on, to another process) are
    // measured beside both systems.
    for (const floor of ['floor', 'floor-list']) {
      expect(ids).toContain(`latency.${floor}-p50`);
      expect(ids).toContain(`latency.${floor}-p99`);
    }
    // The light latency of a long-running worker (after a warm-up at the same rate) beside a new one's.
    for (const key of ['p50', 'p95', 'p99', 'max']) expect(ids).toContain(`latency.${key}-steady`);
  });

  it('measures every figure: finite, and positive except counts of limit violations', () => {
    for (const s of json.scenarios) {
      for (const [side, value] of [
        ['sluice', s.sluice],
        ['bullmq', s.bullmq],
      ] as const) {
        const label = `${s.name} / ${s.metric} / ${side}`;
        expect({ label, finite: Number.isFinite(value) }).toEqual({ label, finite: true });
        if (s.unit === 'windows') expect(value).toBeGreaterThanOrEqual(0);
        else expect({ label, positive: value > 0 }).toEqual({ label, positive: true });
      }
      if (s.ratio !== null) {
        expect(Number.isFinite(s.ratio)).toBe(true);
        expect(s.ratio).toBeGreaterThan(0);
      } else {
        expect(s.sluice === 0 || s.bullmq === 0).toBe(true);
      }
    }
  });

  it('measures each throughput run after its own warm-up: the one-job runs after warmupJobs, the batched run after batchWarmupJobs', () => {
    const p = PROFILES.smoke.throughput;
    // Two different counts, so that a run given the other one fails here.
    expect(p.batchWarmupJobs).not.toBe(p.warmupJobs);
    const warmups = diagnostics
      .filter((d) => d.scenario === 'throughput')
      .map((d) => [d.run, d.measurement['warmupJobs']] as const);
    expect(warmups).toEqual([
      ['sluice', p.warmupJobs],
      ['bullmq', p.warmupJobs],
      ['sluice-batch', p.batchWarmupJobs],
    ]);
  });

  it('describes the machine and the run', () => {
    const m = json.machine;
    expect(m.cpuCount).toBeGreaterThan(0);
    expect(m.cpuModel).not.toBe('');
    expect(m.node).toBe(process.version);
    expect(m.redis).toMatch(/^\d+\.\d+/);
    expect(m.bullmq).toMatch(/^6\./);
    expect(Number.isNaN(Date.parse(m.date))).toBe(false);
    expect(m).toEqual(expect.objectContaining({ mode: 'smoke', rounds: 1, redisSource: 'spawned' }));
  });

  it('writes a RESULTS.md that Prettier leaves as it is', async () => {
    expect(markdown).toContain('| Scenario');
    for (const s of json.scenarios) expect(markdown).toContain(s.metric);
    // The repository's Prettier options, as `prettier --check .` applies them to bench/RESULTS.md.
    const config = JSON.parse(readFileSync(join(BENCH, '..', '.prettierrc.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(await prettier.check(markdown, { ...config, parser: 'markdown', plugins: [markdownPlugin] })).toBe(
      true,
    );
  });
});

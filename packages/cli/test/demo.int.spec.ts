import { execFile } from 'node:child_process';
import path from 'node:path';
import { useRedis } from '@sluice/testing';
import { runDemo, type DemoSummary } from '../src/demo/demo';

const root = path.resolve(__dirname, '../../..');

function runNpmDemo(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npm',
      ['run', '--silent', 'demo', '--', '--json', ...args],
      { cwd: root, env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function lastJson(stdout: string): DemoSummary {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '') as DemoSummary;
}

describe('the demo (the README’s first command)', () => {
  const redis = useRedis();

  it('`npm run demo -- --json` exits 0 and accounts for every job within the rate limit', async () => {
    const { code, stdout, stderr } = await runNpmDemo({ REDIS_URL: redis.url });
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const summary = lastJson(stdout);
    expect(summary.jobs).toBe(2000);
    expect(summary.completed + summary.dead).toBe(summary.jobs);
    expect(summary.dead).toBeGreaterThan(0); // the hard bounces
    expect(summary.maxStartsInAnyWindow).toBeLessThanOrEqual(summary.allowed);
    expect(summary.allowed).toBe(400);
    expect(summary.periodMs).toBe(1000);
    expect(summary.store).toBe('redis'); // REDIS_URL points at the test's own server
    expect(stderr).toMatch(/^store: redis — Redis at redis:\/\/127.0.0.1:\d+ answered/m);
  }, 120_000);

  it('says which store it used and falls back to memory when no Redis answers', async () => {
    const { code, stdout, stderr } = await runNpmDemo({ REDIS_URL: 'redis://127.0.0.1:1' }, [
      '--jobs',
      '200',
      '--allowed',
      '100',
      '--period-ms',
      '500',
    ]);
    expect(code).toBe(0);
    expect(lastJson(stdout).store).toBe('memory');
    expect(stderr).toMatch(/store: memory — /);
  }, 120_000);

  it('runs in-process on the memory store with custom numbers', async () => {
    const lines: string[] = [];
    const summary = await runDemo({
      store: 'memory',
      jobs: 300,
      allowed: 100,
      periodMs: 500,
      concurrency: 4,
      progress: false,
      print: (l) => lines.push(l),
    });
    expect(summary.store).toBe('memory');
    expect(summary.completed + summary.dead).toBe(300);
    expect(summary.maxStartsInAnyWindow).toBeLessThanOrEqual(100);
    expect(lines.join('\n')).toMatch(/sent \d+ of 300 emails/);
  }, 60_000);
});

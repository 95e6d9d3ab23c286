import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import { spawnRedis, useRedis, useSpawnedRedis, type SpawnedRedis } from '@sluice/testing';
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
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
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
    // It ends by pointing at what to try next.
    const next = lines.slice(lines.indexOf('next:'));
    expect(next.join('\n')).toMatch(/npx sluice dashboard/);
    expect(next.join('\n')).toMatch(/npx sluice --help/);
    expect(next.join('\n')).toMatch(/examples\//);
  }, 60_000);
});

const bin = path.join(root, 'packages/cli/bin/sluice.js');

/** The demo as a child process (the bin, no npm in between, so signals reach it directly). */
function startDemo(url: string, args: string[]) {
  const child = spawn(process.execPath, [bin, '--redis', url, 'demo', '--store', 'redis', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('exit', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
  return { child, exited, output: () => stdout };
}

async function waitUntil(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the demo when things go wrong', () => {
  it('names the URL and the cause when Redis cannot be reached', async () => {
    const { code, stderr } = await startDemo('redis://127.0.0.1:1', []).exited;
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^sluice: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/),
    ]);
  }, 30_000);

  describe('on its own Redis', () => {
    const redis = useSpawnedRedis();
    let admin: Redis;
    beforeAll(() => {
      admin = new Redis(redis.url);
    });
    afterAll(() => {
      admin.disconnect();
    });
    const demoKeys = (): Promise<string[]> => admin.keys('sluice-demo:*');

    it('Ctrl-C stops it and removes the keys it created', async () => {
      const demo = startDemo(redis.url, ['--jobs', '5000', '--allowed', '50']);
      await waitUntil(async () => (await demoKeys()).length > 0, 'the demo to write its keys');
      await waitUntil(() => /^store: redis/m.test(demo.output()), 'the demo to start');
      demo.child.kill('SIGINT');
      const { code, stderr } = await demo.exited;
      expect(stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^sluice: interrupted: sent \d+ of 5000 emails; the demo's keys were removed$/),
      ]);
      expect(code).toBe(130);
      expect(await demoKeys()).toEqual([]);
    }, 60_000);
  });

  it('ends with one line when Redis goes away mid-run', async () => {
    let server: SpawnedRedis | undefined = await spawnRedis();
    try {
      const admin = new Redis(server.url);
      const demo = startDemo(server.url, ['--jobs', '5000', '--allowed', '50']);
      try {
        await waitUntil(
          async () => (await admin.keys('sluice-demo:*')).length > 0,
          'the demo to write its keys',
        );
      } finally {
        admin.disconnect();
      }
      await server.kill('SIGKILL');
      const { code, stderr } = await demo.exited;
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(
            `^sluice: lost Redis at redis://127\\.0\\.0\\.1:${server.port} mid-run \\(.+\\); sent \\d+ of 5000 emails$`,
          ),
        ),
      ]);
      await server.stop();
      server = undefined;
    } finally {
      await server?.stop();
    }
  }, 60_000);
});

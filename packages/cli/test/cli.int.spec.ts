import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { definePipeline, PermanentError, silentLogger, Worker, type Outcome } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';

const bin = path.resolve(__dirname, '../dist/bin.js');

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('sluice (the real binary against a real Redis)', () => {
  const redis = useRedis();
  let prefix: string;
  beforeEach(() => {
    prefix = uniquePrefix('cli').replace(/:$/, '');
  });

  const sluice = (...args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [bin, '--redis', redis.url, '--prefix', prefix, ...args],
        { timeout: 30_000, env: { ...process.env, REDIS_URL: '' } },
        (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
    });
  const json = async (...args: string[]): Promise<unknown> => {
    const r = await sluice('--json', ...args);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as unknown;
  };

  /** Runs a worker on `queue` until `count` outcomes arrived. */
  const work = async (
    queue: string,
    count: number,
    handler: (data: unknown) => unknown,
  ): Promise<Outcome[]> => {
    const store = await RedisStore.connect({ url: redis.url, prefix });
    const worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [definePipeline({ queue, handler: (job) => handler(job.data) })],
    });
    const outcomes: Outcome[] = [];
    const done = new Promise<void>((resolve) => {
      worker.outcomes$.subscribe((o) => {
        outcomes.push(o);
        if (outcomes.length >= count) resolve();
      });
    });
    worker.start();
    await done;
    await worker.close({ timeoutMs: 2000 });
    await store.close();
    return outcomes;
  };

  it('enqueue → stats shows it → a worker completes it → stats shows that', async () => {
    const added = (await json(
      'enqueue',
      'emails',
      '{"to":"ada@example.com"}',
      '--priority',
      '2',
      '--create',
    )) as {
      id: string;
    };
    expect(added.id).toEqual(expect.any(String));
    const before = (await json('stats')) as { queue: string; counts: Record<string, number> }[];
    expect(before).toEqual([
      expect.objectContaining({ queue: 'emails', counts: expect.objectContaining({ ready: 1 }) }),
    ]);

    const table = await sluice('stats');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/QUEUE\s+READY/);
    expect(table.stdout).toMatch(/emails\s+1\s/);

    const outcomes = await work('emails', 1, (data) => data);
    expect(outcomes[0]).toMatchObject({ kind: 'completed', result: { to: 'ada@example.com' } });
    const after = (await json('stats')) as { counts: Record<string, number> }[];
    expect(after[0]?.counts).toMatchObject({ ready: 0, completed: 1 });

    const job = (await json('job', added.id)) as { state: string; data: unknown };
    expect(job).toMatchObject({ state: 'completed', data: { to: 'ada@example.com' } });
    expect((await sluice('job', added.id)).stdout).toMatch(/state:\s+completed/);
  });

  it('retry and purge work on dead jobs', async () => {
    await json('enqueue', 'hooks', '{"n":1}', '--max-attempts', '1', '--create');
    await json('enqueue', 'hooks', '{"n":2}', '--max-attempts', '1');
    await work('hooks', 2, () => {
      throw new PermanentError('gone');
    });
    const dead = (await json('jobs', 'hooks', '--state', 'dead')) as { id: string; reason: string }[];
    expect(dead).toHaveLength(2);
    expect(dead[0]?.reason).toMatch(/permanent failure: gone/);
    expect((await sluice('jobs', 'hooks', '--state', 'dead')).stdout).toMatch(/permanent failure/);

    expect(await json('retry', 'hooks', dead[0]!.id)).toEqual({ retried: 1 });
    expect(((await json('stats')) as { counts: Record<string, number> }[])[0]?.counts).toMatchObject({
      ready: 1,
      dead: 1,
    });
    expect(await json('purge', 'hooks', '--state', 'dead')).toEqual({ purged: 1 });
    expect(await json('jobs', 'hooks', '--state', 'dead')).toEqual([]);
    expect(await json('retry', 'hooks', '--all')).toEqual({ retried: 0 });
  });

  it('enqueues from a file with --delay, --unique and NDJSON bulk', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-'));
    const one = path.join(dir, 'one.json');
    await writeFile(one, JSON.stringify({ report: 'weekly' }));
    const first = (await json(
      'enqueue',
      'reports',
      `@${one}`,
      '--unique',
      'weekly',
      '--delay',
      '60000',
      '--create',
    )) as {
      id: string;
      duplicate: boolean;
    };
    const second = (await json('enqueue', 'reports', `@${one}`, '--unique', 'weekly')) as {
      id: string;
      duplicate: boolean;
    };
    expect(second).toEqual({ id: first.id, duplicate: true });
    expect((await json('jobs', 'reports', '--state', 'scheduled')) as unknown[]).toHaveLength(1);

    const many = path.join(dir, 'many.ndjson');
    await writeFile(many, Array.from({ length: 2500 }, (_, i) => JSON.stringify({ i })).join('\n'));
    expect(await json('enqueue', 'bulk', `@${many}`, '--create')).toMatchObject({
      enqueued: 2500,
      duplicates: 0,
    });
  });

  it('pauses and resumes a queue', async () => {
    await json('enqueue', 'q', '1', '--create');
    expect(await json('pause', 'q')).toEqual({ queue: 'q', paused: true });
    expect(((await json('stats')) as { paused: boolean }[])[0]?.paused).toBe(true);
    expect(await json('resume', 'q')).toEqual({ queue: 'q', paused: false });
  });

  it('sets, shows and clears the numbers of a rate-limit key store-wide', async () => {
    expect(await json('limit', 'mail', '--allowed', '50', '--period', '1000')).toEqual({
      key: 'mail',
      numbers: { allowed: 50, periodMs: 1000 },
    });
    // What every worker's next reserve reads.
    const store = await RedisStore.connect({ url: redis.url, prefix });
    try {
      expect(await store.getRateLimit('mail', 'mail')).toEqual({ allowed: 50, periodMs: 1000 });
    } finally {
      await store.close();
    }
    expect(await json('limit', 'mail')).toEqual({ key: 'mail', numbers: { allowed: 50, periodMs: 1000 } });
    expect(await json('limit', 'mail', '--clear')).toEqual({ key: 'mail', numbers: null });
  });

  it('prints one clear line and exits non-zero for each error', async () => {
    const cases: [string[], RegExp][] = [
      [['stats', '--redis', 'not a url'], /invalid Redis URL/],
      [['stats', '--redis', 'http://x:1'], /scheme must be redis/],
      [['stats', '--redis', 'redis://127.0.0.1:1'], /cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/],
      [['jobs', 'nope', '--state', 'dead'], /unknown queue "nope"/],
      [['enqueue', 'nope', '1'], /unknown queue "nope" \(known: q\); pass --create to create it$/],
      [['enqueue', 'q', '{not json'], /invalid JSON in the payload/],
      [['enqueue', 'q', '@/does/not/exist.json'], /cannot read \/does\/not\/exist\.json: ENOENT/],
      [['jobs', 'q', '--state', 'weird'], /option '--state <state>' argument 'weird' is invalid/],
      [['retry', 'q'], /give a job id or --all/],
      [['limit', 'mail', '--allowed', '5'], /give both --allowed and --period/],
      [['bogus'], /unknown command 'bogus'/],
    ];
    await json('enqueue', 'q', '1', '--create');
    for (const [args, message] of cases) {
      const r = await sluice(...args);
      expect({ args, code: r.code > 0 }).toEqual({ args, code: true });
      const lines = r.stderr.trim().split('\n');
      expect({ args, lines: lines.length }).toEqual({ args, lines: 1 });
      expect(lines[0]).toMatch(message);
      expect(lines[0]).toMatch(/^sluice: /);
    }
  });

  it('enqueue refuses an unknown queue unless --create says so', async () => {
    await json('enqueue', 'emails', '{"n":1}', '--create');
    const refused = await sluice('enqueue', 'emials', '{"n":2}');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      'sluice: unknown queue "emials" (known: emails); pass --create to create it',
    );
    expect(((await json('stats')) as { queue: string }[]).map((s) => s.queue)).toEqual(['emails']);
    // A known queue needs no flag.
    expect(await json('enqueue', 'emails', '{"n":3}')).toMatchObject({ duplicate: false });
    await json('enqueue', 'emials', '{"n":2}', '--create');
    expect(((await json('stats')) as { queue: string }[]).map((s) => s.queue).sort()).toEqual([
      'emails',
      'emials',
    ]);
  });

  it('rejects a payload that fails the queue’s stored schema, storing nothing', async () => {
    const store = await RedisStore.connect({ url: redis.url, prefix });
    await store.setQueueConfig('signups', { schema: { type: 'object', required: ['email'] } });
    await store.close();
    const r = await sluice('enqueue', 'signups', '{"name":"x"}');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^sluice: payload for queue "signups" failed its schema: \/ must have required property 'email'$/,
    );
    expect(((await json('stats')) as { counts: Record<string, number> }[])[0]?.counts.ready).toBe(0);
  });

  it('serves the dashboard until interrupted', async () => {
    await json('enqueue', 'emails', '{"to":"x@example.com"}', '--create');
    const child = spawn(
      process.execPath,
      [
        bin,
        '--redis',
        redis.url,
        '--prefix',
        prefix,
        '--json',
        'dashboard',
        '--port',
        '0',
        '--token',
        's3cret',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve((JSON.parse(line) as { url: string }).url);
      });
      child.once('exit', (code) => {
        reject(new Error(`dashboard exited early with ${String(code)}`));
      });
    });
    const unauthorized = await fetch(new URL('api/overview', url));
    expect(unauthorized.status).toBe(401);
    const overview = await fetch(new URL('api/overview', url), {
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(overview.status).toBe(200);
    expect(JSON.stringify(await overview.json())).toContain('emails');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

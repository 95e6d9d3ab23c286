import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { definePipeline, PermanentError, Queue, silentLogger, Worker, type Outcome } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { firstValueFrom } from 'rxjs';
import { run, type Io } from '@sluice/cli';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { runSluice, startDashboard, type Result } from './binary';

// Each step runs the real binary (a Node process each time): slow on a loaded machine.
jest.setTimeout(90_000);

describe('sluice (the real binary against a real Redis)', () => {
  const redis = useRedis();
  let prefix: string;
  beforeEach(() => {
    prefix = uniquePrefix('cli').replace(/:$/, '');
  });

  const sluice = (...args: string[]): Promise<Result> =>
    runSluice(['--redis', redis.url, '--prefix', prefix, ...args], { REDIS_URL: '' });
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
    expect(table.stdout).toMatch(/KEPT COMPLETED\s+KEPT CANCELLED\s+KEPT DEAD\s+TOTAL COMPLETED/);
    expect(table.stdout).toMatch(/HANDLER FAILURES\s+LEASE EXPIRIES/);
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

  // Each call of the binary starts a Node process: give these two room on a loaded machine.
  it('adds jobs with --group, shows their group, lists groups busiest first a page at a time', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-cli-'));
    const three = path.join(dir, 'three.ndjson');
    await writeFile(three, ['{"n":1}', '{"n":2}', '{"n":3}'].join('\n'));
    expect(await json('enqueue', 'hooks', `@${three}`, '--group', 'big', '--create')).toMatchObject({
      enqueued: 3,
    });
    const small = (await json('enqueue', 'hooks', '{"n":4}', '--group', 'small')) as { id: string };
    await json('enqueue', 'hooks', '{"n":5}', '--group', 'tiny');
    expect(await json('job', small.id)).toMatchObject({ group: 'small', data: { n: 4 } });
    expect((await sluice('job', small.id)).stdout).toMatch(/^group:\s+small$/m);
    expect((await sluice('jobs', 'hooks')).stdout).toMatch(/^ID\s+NAME\s+GROUP\s+STATE/);

    expect(await json('groups', 'hooks')).toEqual({
      queue: 'hooks',
      total: 3,
      paused: 0,
      complete: true,
      offset: 0,
      limit: 50,
      groups: [
        { group: 'big', ready: 3, active: 0, paused: false },
        { group: 'small', ready: 1, active: 0, paused: false },
        { group: 'tiny', ready: 1, active: 0, paused: false },
      ],
    });
    const table = await sluice('groups', 'hooks');
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^GROUP\s+READY\s+ACTIVE\s+PAUSED\s+WEIGHT\s+LIMITED$/);
    expect(lines[2]).toMatch(/^big\s+3\s+0\s+no\s+1$/);
    expect(lines.pop()).toBe('groups 1-3 of 3, busiest first');
    expect(
      ((await json('groups', 'hooks', '--limit', '1', '--offset', '1')) as { groups: unknown[] }).groups,
    ).toEqual([{ group: 'small', ready: 1, active: 0, paused: false }]);
    const partial = await sluice('groups', 'hooks', '--scan-limit', '2');
    expect(partial.stdout.trim().split('\n').pop()).toBe(
      'groups 1-2 of 2, busiest first (read the first 2 by name: --scan-limit)',
    );

    for (const [args, message, code] of [
      [
        ['enqueue', 'hooks', '1', '--group', ''],
        /^sluice: expected a group name of 1-256 characters, got 0$/,
        2,
      ],
      [
        ['groups', 'hooks', '--pause', 'a', '--resume', 'b'],
        /^sluice: give --pause or --resume, not both$/,
        2,
      ],
      [['groups', 'nope'], /^sluice: unknown queue "nope" \(known: hooks\)$/, 1],
    ] as const) {
      const r = await sluice(...args);
      expect({ args, code: r.code, stderr: r.stderr.trim() }).toEqual({
        args,
        code,
        stderr: expect.stringMatching(message) as unknown,
      });
    }
  }, 60_000);

  it('pauses one group: a worker runs every other group; resumed, it runs too', async () => {
    const store = await RedisStore.connect({ url: redis.url, prefix });
    await new Queue(store, 'hooks').addBulk([
      ...[1, 2, 3].map((n) => ({ data: { n }, options: { group: 'big' } })),
      { data: { n: 4 }, options: { group: 'small' } },
      { data: { n: 5 }, options: { group: 'tiny' } },
    ]);
    await store.close();

    expect(await json('groups', 'hooks', '--pause', 'small')).toEqual({
      queue: 'hooks',
      group: 'small',
      paused: true,
    });
    expect((await sluice('groups', 'hooks', '--pause', 'small')).stdout.trim()).toBe(
      'hooks: group "small" paused',
    );
    const listed = (await json('groups', 'hooks')) as {
      paused: number;
      groups: { group: string; paused: boolean }[];
    };
    expect(listed.paused).toBe(1);
    expect(listed.groups.filter((g) => g.paused).map((g) => g.group)).toEqual(['small']);

    // A worker runs every job but the paused group's; resumed, that one runs too.
    const first = await work('hooks', 4, (data) => data);
    expect(
      first.map((o) => (o.kind === 'completed' ? (o.result as { n: number }).n : o.kind)).sort(),
    ).toEqual([1, 2, 3, 5]);
    expect(await json('groups', 'hooks')).toMatchObject({
      total: 1,
      groups: [{ group: 'small', ready: 1, active: 0, paused: true }],
    });
    expect(await json('groups', 'hooks', '--resume', 'small')).toEqual({
      queue: 'hooks',
      group: 'small',
      paused: false,
    });
    expect((await work('hooks', 1, (data) => data))[0]).toMatchObject({
      kind: 'completed',
      result: { n: 4 },
    });
    expect((await sluice('groups', 'hooks')).stdout.trim()).toBe('no groups with jobs in "hooks"');
  }, 60_000);

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

  it('sets, shows and clears the weight of one group; the groups table shows it', async () => {
    await json('enqueue', 'hooks', '{"n":1}', '--group', 'gold', '--create');
    expect(await json('group-weight', 'hooks', 'gold')).toEqual({ queue: 'hooks', group: 'gold', weight: 1 });
    expect(await json('group-weight', 'hooks', 'gold', '5')).toEqual({
      queue: 'hooks',
      group: 'gold',
      weight: 5,
    });
    expect((await sluice('group-weight', 'hooks', 'gold')).stdout.trim()).toBe(
      'hooks: group "gold": weight 5',
    );
    expect((await sluice('groups', 'hooks')).stdout.split('\n')[2]).toMatch(/^gold\s+1\s+0\s+no\s+5$/);
    const store = await RedisStore.connect({ url: redis.url, prefix });
    try {
      expect(await store.getGroupWeight('hooks', 'gold')).toBe(5);
    } finally {
      await store.close();
    }
    for (const bad of ['0', '2.5', '1001', 'heavy']) {
      const refused = await sluice('group-weight', 'hooks', 'gold', bad);
      expect([refused.code, refused.stderr.trim()]).toEqual([
        2,
        expect.stringMatching(/^sluice: a group's weight must be an integer from 1 to 1000, got /),
      ]);
    }
    expect(await json('group-weight', 'hooks', 'gold', 'default')).toEqual({
      queue: 'hooks',
      group: 'gold',
      weight: 1,
    });
    expect((await sluice('group-weight', 'hooks', 'gold')).stdout.trim()).toBe(
      'hooks: group "gold": weight 1 (default)',
    );
  });

  it('sets, shows and clears the rate-limit numbers of one group', async () => {
    await json('enqueue', 'hooks', '{"n":1}', '--group', 'gold', '--create');
    const none = 'hooks: group "gold": the numbers each pipeline declares (groups.rateLimit)';
    expect(await json('group-limit', 'hooks', 'gold')).toEqual({
      queue: 'hooks',
      group: 'gold',
      numbers: null,
    });
    expect((await sluice('group-limit', 'hooks', 'gold')).stdout.trim()).toBe(none);

    expect(await json('group-limit', 'hooks', 'gold', '--allowed', '100', '--period', '1000')).toEqual({
      queue: 'hooks',
      group: 'gold',
      numbers: { allowed: 100, periodMs: 1000 },
    });
    // What every worker's next reserve reads; the other groups keep their pipelines' numbers.
    const store = await RedisStore.connect({ url: redis.url, prefix });
    try {
      expect(await store.getGroupLimit('hooks', 'gold')).toEqual({ allowed: 100, periodMs: 1000 });
      expect(await store.getGroupLimit('hooks', 'silver')).toBeNull();
      const shown = await sluice('group-limit', 'hooks', 'gold');
      expect({ code: shown.code, stdout: shown.stdout.trim() }).toEqual({
        code: 0,
        stdout: 'hooks: group "gold": 100 per 1000 ms, on every worker',
      });
      // A group with no job yet can be given its numbers ahead of its first job.
      expect(await json('group-limit', 'hooks', 'tenant/a b', '--allowed', '5', '--period', '60000')).toEqual(
        {
          queue: 'hooks',
          group: 'tenant/a b',
          numbers: { allowed: 5, periodMs: 60_000 },
        },
      );
      expect(await store.getGroupLimit('hooks', 'tenant/a b')).toEqual({ allowed: 5, periodMs: 60_000 });

      expect(await json('group-limit', 'hooks', 'gold', '--clear')).toEqual({
        queue: 'hooks',
        group: 'gold',
        numbers: null,
      });
      expect(await store.getGroupLimit('hooks', 'gold')).toBeNull();
      expect((await sluice('group-limit', 'hooks', 'gold', '--clear')).stdout.trim()).toBe(none);
      expect(await store.getGroupLimit('hooks', 'tenant/a b')).toEqual({ allowed: 5, periodMs: 60_000 });
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses a group limit with bad input in one clear line, setting nothing', async () => {
    await json('enqueue', 'hooks', '{"n":1}', '--group', 'gold', '--create');
    const long = 'g'.repeat(257);
    for (const [args, message, code] of [
      [['gold', '--allowed', '5'], 'give both --allowed and --period', 2],
      [['gold', '--period', '1000'], 'give both --allowed and --period', 2],
      [
        ['gold', '--allowed', '5', '--period', '1000', '--clear'],
        'give --allowed and --period, or --clear, not both',
        2,
      ],
      [['gold', '--allowed', 'ten', '--period', '1000'], '--allowed: expected a number, got "ten"', 2],
      [['gold', '--allowed', '5', '--period', ''], '--period: expected a number, got ""', 2],
      // The store's own messages (InvalidArgumentError).
      [['gold', '--allowed', '0', '--period', '1000'], 'allowed must be an integer ≥ 1, got 0', 2],
      [['gold', '--allowed', '1.5', '--period', '1000'], 'allowed must be an integer ≥ 1, got 1.5', 2],
      [['gold', '--allowed', '5', '--period', '-1'], 'periodMs must be an integer ≥ 1, got -1', 2],
      [
        ['', '--allowed', '5', '--period', '1000'],
        'group must be a non-empty string of at most 256 characters, got a string of 0 characters',
        2,
      ],
      [
        [long],
        'group must be a non-empty string of at most 256 characters, got a string of 257 characters',
        2,
      ],
      [
        [long, '--clear'],
        'group must be a non-empty string of at most 256 characters, got a string of 257 characters',
        2,
      ],
    ] as const) {
      const r = await sluice('group-limit', 'hooks', ...args);
      expect({ args, code: r.code, stderr: r.stderr.trim(), stdout: r.stdout }).toEqual({
        args,
        code,
        stderr: `sluice: ${message}`,
        stdout: '',
      });
    }
    const unknown = await sluice('group-limit', 'nope', 'gold', '--allowed', '5', '--period', '1000');
    expect({ code: unknown.code, stderr: unknown.stderr.trim() }).toEqual({
      code: 1,
      stderr: 'sluice: unknown queue "nope" (known: hooks)',
    });
    const store = await RedisStore.connect({ url: redis.url, prefix });
    try {
      expect(await store.getGroupLimit('hooks', 'gold')).toBeNull();
      expect(await store.getGroupLimit('nope', 'gold')).toBeNull();
      expect(await store.queues()).toEqual(['hooks']);
    } finally {
      await store.close();
    }
  }, 60_000);

  it('says so when the store cannot set group limits', async () => {
    await json('enqueue', 'hooks', '{"n":1}', '--group', 'gold', '--create');
    const real = await RedisStore.connect({ url: redis.url, prefix });
    // The same store without the optional capability.
    const without = new Proxy(real, {
      get(target, property, receiver) {
        if (property === 'setGroupLimit' || property === 'getGroupLimit') return undefined;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const connect = jest.spyOn(RedisStore, 'connect').mockResolvedValue(without);
    const lines: string[] = [];
    const io: Io = { out: (l) => void lines.push(l), err: (l) => void lines.push(l), interactive: false };
    try {
      const code = await run(
        [
          '--redis',
          redis.url,
          '--prefix',
          prefix,
          'group-limit',
          'hooks',
          'gold',
          '--allowed',
          '5',
          '--period',
          '1000',
        ],
        io,
      );
      expect({ code, lines }).toEqual({
        code: 1,
        lines: ['sluice: this store cannot set group rate limits'],
      });
      expect(connect).toHaveBeenCalledTimes(1);
    } finally {
      connect.mockRestore();
    }
    const check = await RedisStore.connect({ url: redis.url, prefix });
    try {
      expect(await check.getGroupLimit('hooks', 'gold')).toBeNull();
    } finally {
      await check.close();
    }
  });

  it('shows and sets the retention of finished and dead jobs', async () => {
    await json('enqueue', 'reports', '1', '--create');
    expect(await json('retention', 'reports')).toEqual({ queue: 'reports', finished: null, dead: null });
    expect((await sluice('retention', 'reports')).stdout).toMatch(
      /newest 1000 \(default\)[\s\S]*dead jobs kept: all/,
    );
    expect(await json('retention', 'reports', '--finished', '500,7d', '--dead', '2h')).toEqual({
      queue: 'reports',
      finished: { keep: 'count', count: 500, ageMs: 7 * 86_400_000 },
      dead: { keep: 'age', ageMs: 7_200_000 },
    });
    // Setting one leaves the other as it was.
    expect(await json('retention', 'reports', '--dead', 'none')).toMatchObject({
      finished: { keep: 'count', count: 500 },
      dead: { keep: 'none' },
    });
    const bad = await sluice('retention', 'reports', '--finished', 'lots', '--dead', 'all');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid age "lots"/);
    expect(await json('retention', 'reports', '--finished', 'default')).toMatchObject({
      finished: null,
      dead: { keep: 'none' },
    });
  });

  it('shows the progress and log lines a handler reported', async () => {
    const { id } = (await json('enqueue', 'reports', '{"rows":4}', '--create')) as { id: string };
    const store = await RedisStore.connect({ url: redis.url, prefix });
    const reports: unknown[] = [];
    const sub = store.jobUpdates('reports').subscribe((u) => reports.push(u.progress ?? u.log));
    const worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [
        definePipeline<{ rows: number }>({
          queue: 'reports',
          handler: async (job, ctx) => {
            await ctx.log(`exporting ${job.data.rows} rows`);
            expect(await ctx.progress({ done: 2, of: job.data.rows })).toBe(true);
            await ctx.progress(100);
            return 'exported';
          },
        }),
      ],
    });
    const outcome = new Promise((resolve) => worker.outcomes$.subscribe(resolve));
    worker.start();
    expect(await outcome).toMatchObject({ kind: 'completed' });
    // The updates reach this reader on their own connection, after the handler's writes: on a loaded
    // machine the last may come after the outcome. Wait for all three (or fail with what came).
    for (const deadline = Date.now() + 10_000; reports.length < 3 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await worker.close({ timeoutMs: 2000 });
    sub.unsubscribe();
    await store.close();
    expect(reports).toEqual([['exporting 4 rows'], { done: 2, of: 4 }, 100]);
    expect(await json('job', id, '--queue', 'reports')).toMatchObject({
      progress: 100,
      logs: ['exporting 4 rows'],
    });
    const text = await sluice('job', id);
    expect(text.stdout).toMatch(/progress:\s+100/);
    expect(text.stdout).toMatch(/log \(1 newest lines\):\n {2}exporting 4 rows/);
  });

  it('adds a job with a trace context and shows it; refuses a malformed one', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { id } = (await json(
      'enqueue',
      'traced',
      '{}',
      '--traceparent',
      traceparent,
      '--tracestate',
      'k=v',
      '--create',
    )) as {
      id: string;
    };
    expect(await json('job', id)).toMatchObject({ trace: { traceparent, tracestate: 'k=v' } });
    expect((await sluice('job', id)).stdout).toContain(`trace:     ${traceparent} (k=v)`);
    const bad = await sluice('enqueue', 'traced', '{}', '--traceparent', '00-xyz');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^sluice: trace\.traceparent must be a W3C traceparent/);
    expect(((await json('stats')) as { totals: { enqueued: number } }[])[0]?.totals.enqueued).toBe(1);
  });

  it('lists jobs of one name and in a time range, page by page', async () => {
    const before = Date.now() - 60_000;
    await json('enqueue', 'mixed', '{"n":1}', '--name', 'welcome', '--create');
    await json('enqueue', 'mixed', '{"n":2}', '--name', 'digest');
    await json('enqueue', 'mixed', '{"n":3}', '--name', 'welcome');
    await json('enqueue', 'mixed', '{"n":4}', '--name', 'welcome', '--delay', '3600000');
    const data = (rows: unknown) => (rows as { data: { n: number } }[]).map((r) => r.data.n);
    expect(data(await json('jobs', 'mixed', '--name', 'welcome'))).toEqual([1, 3]);
    expect(data(await json('jobs', 'mixed', '--name', 'welcome', '--limit', '1', '--offset', '1'))).toEqual([
      3,
    ]);
    const iso = new Date(before).toISOString();
    expect(data(await json('jobs', 'mixed', '--from', iso, '--to', String(Date.now() + 60_000)))).toEqual([
      1, 2, 3,
    ]);
    expect(data(await json('jobs', 'mixed', '--to', iso))).toEqual([]);
    const later = new Date(Date.now() + 30 * 60_000).toISOString();
    expect(
      data(await json('jobs', 'mixed', '--state', 'scheduled', '--from', later, '--name', 'welcome')),
    ).toEqual([4]);
    expect((await sluice('jobs', 'mixed', '--name', 'nobody')).stdout).toMatch(
      /no ready jobs matching the filter in "mixed"/,
    );
    const bad = await sluice('jobs', 'mixed', '--from', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^sluice: expected a time \(ISO date or epoch ms\), got "yesterday"/);
    expect((await sluice('jobs', 'mixed', '--from', '2000', '--to', '1000')).stderr).toMatch(
      /--from is after --to/,
    );
  });

  it('drains a queue, and obliterates it only with --force while a job runs', async () => {
    await json('enqueue', 'jobs', '{"n":1}', '--create');
    await json('enqueue', 'jobs', '{"n":2}', '--delay', '60000');
    await json('enqueue', 'jobs', '{"n":3}');
    const store = await RedisStore.connect({ url: redis.url, prefix });
    try {
      const [running] = (await firstValueFrom(store.reserve('jobs', 1, { leaseMs: 60_000 }))).jobs;
      expect(running).toBeDefined();
      expect(await json('drain', 'jobs')).toEqual({ queue: 'jobs', drained: 2 });
      expect((await sluice('drain', 'jobs')).stdout).toMatch(/drained 0 jobs from "jobs"/);
      const refused = await sluice('obliterate', 'jobs');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^sluice: "jobs" has 1 running job: nothing was deleted .*--force/);
      expect(await store.getJob('jobs', running!.id)).toBeDefined();
      expect(await json('obliterate', 'jobs', '--force')).toEqual({ queue: 'jobs', jobs: 1, running: 1 });
      expect(await store.queues()).not.toContain('jobs');
      expect((await sluice('obliterate', 'jobs')).stderr).toMatch(/unknown queue "jobs"/);
    } finally {
      await store.close();
    }
  });

  it('asks before draining or obliterating on a terminal, unless --yes', async () => {
    const lines: string[] = [];
    const answers: boolean[] = [];
    const asked: string[] = [];
    const terminal = (withConfirm: boolean): Io => ({
      out: (l) => void lines.push(l),
      err: (l) => void lines.push(l),
      interactive: true,
      ...(withConfirm
        ? {
            confirm: (question: string) => {
              asked.push(question);
              return Promise.resolve(answers.shift() ?? false);
            },
          }
        : {}),
    });
    const cli = (io: Io, ...args: string[]) => run(['--redis', redis.url, '--prefix', prefix, ...args], io);
    await json('enqueue', 'term', '1', '--create');
    await json('enqueue', 'term', '2');
    answers.push(false);
    expect(await cli(terminal(true), 'drain', 'term')).toBe(1);
    expect(asked).toEqual(['Delete the 2 waiting jobs of "term"?']);
    expect(lines.pop()).toBe('sluice: not confirmed: nothing was deleted');
    expect(await cli(terminal(false), 'obliterate', 'term')).toBe(2);
    expect(lines.pop()).toMatch(/Confirm with --yes/);
    expect(((await json('stats')) as { counts: { ready: number } }[])[0]?.counts.ready).toBe(2);
    answers.push(true);
    expect(await cli(terminal(true), 'drain', 'term')).toBe(0);
    expect(lines.pop()).toBe('drained 2 jobs from "term"');
    expect(await cli(terminal(false), 'obliterate', 'term', '--yes')).toBe(0);
    expect(lines.pop()).toBe('obliterated "term": 0 jobs deleted');
    expect(asked).toHaveLength(2);
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
    const { child, url } = await startDashboard([
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
    ]);
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

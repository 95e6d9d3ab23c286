import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePipeline, silentLogger, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { clusterNodes, partitionCounts } from '@sluice/cli';
import { uniquePrefix, useRedisCluster } from '@sluice/testing';
import { runSluice, startDashboard, type Result } from './binary';

// Each step runs the real binary (a Node process each time): slow on a loaded machine.
jest.setTimeout(90_000);

describe('--cluster nodes', () => {
  it('reads host:port pairs, and refuses anything else with the expected form', () => {
    expect(clusterNodes({ cluster: '10.0.0.1:7000, redis-b:7001,[::1]:7002' })).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(clusterNodes({})).toBeUndefined();
    expect(partitionCounts({ partitions: 'orders=3, mail=12' })).toEqual({ orders: 3, mail: 12 });
    for (const bad of ['orders', 'orders=0', 'orders=1025', 'a=1,,b=2'])
      expect(() => partitionCounts({ partitions: bad })).toThrow(/expected queue=n/);
    for (const bad of ['10.0.0.1', 'host:0', 'host:70000', 'a:1,,b:2', 'redis://a:1']) {
      expect(() => clusterNodes({ cluster: bad })).toThrow(/expected host:port\[,host:port…\]/);
    }
  });
});

describe('sluice on a 3-master Redis Cluster (the real binary)', () => {
  const cluster = useRedisCluster();
  let prefix: string;
  beforeEach(() => {
    prefix = uniquePrefix('cli-cluster').replace(/:$/, '');
  });
  const nodes = (): string => cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',');

  const env = { REDIS_URL: '', REDIS_CLUSTER_NODES: '' };
  const sluice = (...args: string[]): Promise<Result> =>
    runSluice(['--cluster', nodes(), '--prefix', prefix, ...args], env);
  const json = async (...args: string[]): Promise<unknown> => {
    const r = await sluice('--json', ...args);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as unknown;
  };

  it('adds, shows, drains and obliterates queues of every master; a worker on the Cluster runs what it added', async () => {
    const queues = ['mail', 'sms', 'push', 'hooks', 'exports', 'thumbs'];
    for (const q of queues) await json('enqueue', q, JSON.stringify({ q }), '--create');
    type Stats = { queue: string; paused: boolean; counts: Record<string, number> }[];
    const statsOf = async (queue: string) => ((await json('stats')) as Stats).find((s) => s.queue === queue);
    const stats = (await json('stats')) as Stats;
    expect(stats.map((s) => s.queue).sort()).toEqual([...queues].sort());
    for (const s of stats) expect(s.counts.ready).toBe(1);

    // A worker on the Cluster completes the job of 'mail'; the CLI sees it.
    const store = await RedisStore.connect({
      connection: { cluster: { nodes: cluster.startupNodes } },
      prefix,
    });
    const worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [definePipeline({ queue: 'mail', handler: () => Promise.resolve('sent') })],
    });
    const done = new Promise<void>((resolve) => {
      worker.outcomes$.subscribe(() => {
        resolve();
      });
    });
    worker.start();
    await done;
    await worker.close({ timeoutMs: 2000 });
    await store.close();
    expect((await statsOf('mail'))?.counts).toMatchObject({ ready: 0, completed: 1 });

    // Pause from the CLI; drain and obliterate.
    expect((await sluice('pause', 'sms')).code).toBe(0);
    expect((await statsOf('sms'))?.paused).toBe(true);
    expect((await sluice('drain', 'push', '--yes')).code).toBe(0);
    expect((await statsOf('push'))?.counts.ready).toBe(0);
    expect((await sluice('obliterate', 'thumbs', '--yes')).code).toBe(0);
    const after = (await json('stats')) as { queue: string }[];
    expect(after.map((s) => s.queue)).not.toContain('thumbs');
  });

  it('shows a partitioned queue as one queue with --partitions, and pauses and drains all its partitions', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-cli-')), 'orders.ndjson');
    writeFileSync(file, Array.from({ length: 30 }, (_, n) => JSON.stringify({ n })).join('\n'));
    const parts = ['--partitions', 'orders=3'];
    expect(await json(...parts, 'enqueue', 'orders', `@${file}`, '--create')).toMatchObject({ enqueued: 30 });
    type Stats = { queue: string; paused: boolean; counts: Record<string, number> }[];
    const whole = (await json(...parts, 'stats')) as Stats;
    expect(whole.map((s) => [s.queue, s.counts.ready])).toEqual([['orders', 30]]);
    // Without the flag: the three partitions, ten jobs each.
    const split = (await json('stats')) as Stats;
    expect(split.map((s) => [s.queue, s.counts.ready]).sort()).toEqual([
      ['orders~3.0', 10],
      ['orders~3.1', 10],
      ['orders~3.2', 10],
    ]);
    expect((await sluice(...parts, 'pause', 'orders')).code).toBe(0);
    expect(((await json('stats')) as Stats).every((s) => s.paused)).toBe(true);
    expect((await sluice(...parts, 'drain', 'orders', '--yes')).code).toBe(0);
    expect(((await json(...parts, 'stats')) as Stats)[0]).toMatchObject({
      paused: true,
      counts: { ready: 0 },
    });
    const bad = await sluice('--partitions', 'orders=0', 'stats');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected queue=n[,queue=n…]');
  });

  it('serves the dashboard on the Cluster, a partitioned queue as one', async () => {
    await json('enqueue', 'emails', '{"to":"x@example.com"}', '--create');
    await json('--partitions', 'orders=3', 'enqueue', 'orders', '{"n":1}', '--create');
    const { child, url } = await startDashboard(
      [
        ...['--cluster', nodes(), '--prefix', prefix, '--partitions', 'orders=3', '--json'],
        ...['dashboard', '--port', '0', '--token', 's3cret'],
      ],
      env,
    );
    const overview = await fetch(new URL('api/overview', url), {
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(overview.status).toBe(200);
    const text = JSON.stringify(await overview.json());
    expect(text).toContain('emails');
    expect(text).toContain('"orders"');
    expect(text).not.toContain('orders~3');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('says which Cluster it could not reach', async () => {
    const r = await runSluice(['--cluster', '127.0.0.1:1', 'stats'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^sluice: cannot connect to the Redis Cluster at 127\.0\.0\.1:1: /);
  });
});

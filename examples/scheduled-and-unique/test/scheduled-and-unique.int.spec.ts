import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis, useRedisCluster } from '@sluice/testing';
import {
  DIGEST_QUEUE,
  REMINDER_QUEUE,
  WELCOME_QUEUE,
  type Digest,
  type Reminder,
  type Welcome,
} from '../src/jobs';
import type { WorkerMessage } from '../src/worker';

const WORKER_JS = join(__dirname, '..', 'dist', 'worker.js');

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly messages: WorkerMessage[];
  readonly exited: Promise<unknown>;
}

/** Forks the compiled worker and resolves once it reports `ready`. */
function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = fork(WORKER_JS, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const messages: WorkerMessage[] = [];
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`worker exited early (${String(code)})`));
    });
    child.on('message', (message: WorkerMessage) => {
      messages.push(message);
      if (message.type === 'ready') resolve({ child, messages, exited });
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How the test and the worker processes reach Redis: one server, or a Cluster. */
interface Target {
  connect(prefix: string): Promise<RedisStore>;
  env(): Record<string, string>;
}

describe('scheduled-and-unique: three worker processes', () => {
  const redis = useRedis();
  scenario({
    connect: (prefix) => RedisStore.connect({ url: redis.url, prefix }),
    env: () => ({ REDIS_URL: redis.url, REDIS_CLUSTER_NODES: '' }),
  });
});

describe('scheduled-and-unique: three worker processes on a 3-master Redis Cluster', () => {
  const cluster = useRedisCluster();
  scenario({
    connect: (prefix) =>
      RedisStore.connect({ connection: { cluster: { nodes: cluster.startupNodes } }, prefix }),
    env: () => ({ REDIS_CLUSTER_NODES: cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',') }),
  });
});

function scenario(target: Target): void {
  let prefix: string;
  let store: RedisStore;
  const workers: WorkerProcess[] = [];

  beforeAll(() => {
    if (!existsSync(WORKER_JS)) throw new Error(`${WORKER_JS} is missing: run \`npm run build\` first`);
  });
  beforeEach(async () => {
    prefix = uniquePrefix('scheduled-and-unique');
    store = await target.connect(prefix);
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      w.child.kill('SIGKILL');
      await w.exited;
    }
    await deleteKeysWithPrefix(store.client, prefix);
    await store.close();
  });

  it('runs each cron tick once, no reminder early, and collapses duplicate requests into one job', async () => {
    const env = { ...target.env(), SLUICE_PREFIX: prefix };
    workers.push(...(await Promise.all([startWorker(env), startWorker(env), startWorker(env)])));
    const runs = () =>
      workers.flatMap((w, worker) =>
        w.messages.filter((m) => m.type === 'ran').map((m) => ({ ...m, worker })),
      );

    // Every minute in production; every 2 s here.
    const digests = new Queue<Digest>(store, DIGEST_QUEUE);
    await digests.schedule('activity-digest', '*/2 * * * * *', { report: 'activity' });
    const scheduledAt = Date.now();

    const reminders = new Queue<Reminder>(store, REMINDER_QUEUE);
    const due = [1_000, 2_500, 4_000, 6_000].map((d) => scheduledAt + d);
    const added = await Promise.all(
      due.map((runAt, i) => reminders.add({ user: `user-${i}`, text: `reminder ${i}` }, { runAt })),
    );

    const welcome = new Queue<Welcome>(store, WELCOME_QUEUE);
    const unique = { key: 'welcome:grace', ttlMs: 60_000 };
    const requests = await Promise.all(
      Array.from({ length: 20 }, () => welcome.add({ user: 'grace' }, { unique })),
    );
    const other = await welcome.add({ user: 'linus' }, { unique: { key: 'welcome:linus', ttlMs: 60_000 } });

    await sleep(11_000);
    const observedUntil = Date.now();
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));

    // Cron: each tick exactly once, every 2 s without a gap, from within a tick of scheduling to the end.
    const ticks = runs()
      .filter((r) => r.queue === DIGEST_QUEUE)
      .map((r) => r.runAt)
      .sort((a, b) => a - b);
    console.log(
      `scheduled-and-unique: ${ticks.length} ticks, run by workers ${runs()
        .filter((r) => r.queue === DIGEST_QUEUE)
        .map((r) => r.worker + 1)
        .join(',')}`,
    );
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const [i, tick] of ticks.entries()) {
      expect(tick % 2000).toBe(0);
      if (i > 0) expect(tick - ticks[i - 1]!).toBe(2000);
    }
    expect(ticks[0]!).toBeLessThanOrEqual(scheduledAt + 3000);
    expect(ticks.at(-1)!).toBeGreaterThanOrEqual(observedUntil - 3000);
    expect(ticks.length).toBeGreaterThanOrEqual(5);
    for (const r of runs().filter((r) => r.queue === DIGEST_QUEUE)) {
      expect(r.leaseStartedAt).toBeGreaterThanOrEqual(r.runAt);
    }

    // Reminders: each ran once, never before its time (store clock, and this machine's clock).
    const reminderRuns = runs().filter((r) => r.queue === REMINDER_QUEUE);
    expect(reminderRuns.map((r) => r.id).sort()).toEqual(added.map((a) => a.id).sort());
    for (const r of reminderRuns) {
      expect(r.runAt).toBe(due[added.findIndex((a) => a.id === r.id)]);
      expect(r.leaseStartedAt).toBeGreaterThanOrEqual(r.runAt);
      expect(r.at).toBeGreaterThanOrEqual(r.runAt);
    }

    // Unique: 20 requests, one job; the other 19 say duplicate, with the same id. It ran once.
    const [first] = requests;
    expect(requests.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(requests.every((r) => r.id === first!.id)).toBe(true);
    expect(other).toEqual({ id: expect.any(String), duplicate: false });
    expect(other.id).not.toBe(first!.id);
    const welcomeRuns = runs().filter((r) => r.queue === WELCOME_QUEUE);
    expect(welcomeRuns.map((r) => r.id).sort()).toEqual([first!.id, other.id].sort());
  }, 45_000);
}

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { maxInAnyWindow, Queue } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { KEYWORD_QUEUE, type KeywordJob } from '../src/keyword';
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

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const searches = (w: WorkerProcess) => w.messages.filter((m) => m.type === 'search');
const saved = (w: WorkerProcess) => w.messages.filter((m) => m.type === 'saved').map((m) => m.keyword);
const final = (w: WorkerProcess, type: 'draining' | 'closed') => w.messages.find((m) => m.type === type);

describe('keyword-scraper: 30 searches per window, a pool of 5, and a deploy in the middle', () => {
  const redis = useRedis();
  let prefix: string;
  let store: RedisStore;
  const workers: WorkerProcess[] = [];

  beforeAll(() => {
    if (!existsSync(WORKER_JS)) throw new Error(`${WORKER_JS} is missing: run \`npm run build\` first`);
  });
  beforeEach(async () => {
    prefix = uniquePrefix('keyword-scraper');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      w.child.kill('SIGKILL');
      await w.exited;
    }
    await deleteKeysWithPrefix(store.client, prefix);
    await store.close();
  });

  it('finishes in-flight keywords before exiting on SIGTERM; the next process does the rest; one result per keyword', async () => {
    // The quota is 30 searches per minute; here, 30 per 3 s.
    const periodMs = 3000;
    const env = {
      REDIS_URL: redis.url,
      SLUICE_PREFIX: prefix,
      SEARCH_LIMIT: '30',
      SEARCH_PERIOD_MS: String(periodMs),
    };
    const keywords = new Queue<KeywordJob>(store, KEYWORD_QUEUE);
    const all: string[] = [];
    for (const user of ['ada', 'grace', 'linus', 'margaret']) {
      const list = Array.from({ length: 15 }, (_, i) => `${user} keyword ${i + 1}`);
      all.push(...list);
      await keywords.addBulk(list.map((keyword) => ({ data: { user, list: `${user}-list`, keyword } })));
    }

    const old = await startWorker(env);
    workers.push(old);
    await until(() => saved(old).length >= 8, 15_000, 'the first worker to save 8 results');
    old.child.kill('SIGTERM'); // the deploy
    await old.exited;
    const next = await startWorker(env);
    workers.push(next);
    await until(() => saved(old).length + saved(next).length >= all.length, 30_000, 'every keyword');
    next.child.kill('SIGTERM');
    await next.exited;

    const draining = final(old, 'draining');
    const inFlightAtSigterm = draining?.type === 'draining' ? draining.inFlight : [];
    const allSearches = [...searches(old), ...searches(next)];
    const slots = allSearches.map((s) => s.slot);
    const ahead = allSearches.map((s) => (s.slot ?? s.leaseStartedAt) - s.leaseStartedAt);
    const busiestBySlot = maxInAnyWindow(
      slots.filter((slot): slot is number => slot !== undefined),
      periodMs,
    );
    // For information: a reserve leases jobs ahead of their slots (each waits for its own), so a
    // window of lease starts may hold one more than the limit.
    const busiestByLease = maxInAnyWindow(
      allSearches.map((s) => s.leaseStartedAt),
      periodMs,
    );
    const busiestBySearch = maxInAnyWindow(
      allSearches.map((s) => s.at),
      periodMs,
    );
    console.log(
      `keyword-scraper: ${inFlightAtSigterm.length} in flight at SIGTERM; old process ${saved(old).length}, ` +
        `new process ${saved(next).length}; busiest ${periodMs} ms: ${busiestBySlot} slots, ` +
        `${busiestBySearch} searches (${busiestByLease} lease starts; slot after lease start ` +
        `${Math.min(...ahead)} to ${Math.max(...ahead)} ms)`,
    );

    // The in-flight keywords finished in the old process, which drained cleanly; nothing it started was left.
    expect(inFlightAtSigterm.length).toBeGreaterThan(0);
    for (const keyword of inFlightAtSigterm) expect(saved(old)).toContain(keyword);
    expect(new Set(saved(old))).toEqual(new Set(searches(old).map((s) => s.keyword)));
    // Queued keywords waited for the new process; none was searched twice.
    expect(saved(next).length).toBeGreaterThan(0);
    for (const s of searches(next)) expect(saved(old)).not.toContain(s.keyword);
    // Exactly one result per keyword, none lost.
    expect([...saved(old), ...saved(next)].sort()).toEqual([...all].sort());
    const stats = await keywords.stats();
    expect(stats.totals).toMatchObject({ enqueued: all.length, completed: all.length, failed: 0 });
    expect(stats.counts).toMatchObject({ ready: 0, scheduled: 0, running: 0 });

    // Never more than 30 searches in any window: where the limit counted them (Redis clock) and as
    // the searches were made.
    expect(slots.filter((slot) => slot === undefined)).toEqual([]);
    expect(busiestBySlot).toBeLessThanOrEqual(30);
    expect(busiestBySearch).toBeLessThanOrEqual(30);

    // Five jobs at a time: the pool of five connections never ran out.
    for (const w of [old, next]) {
      expect(final(w, 'closed')).toMatchObject({ type: 'closed', drained: true, poolExhausted: 0 });
      const closed = final(w, 'closed');
      expect(closed?.type === 'closed' && closed.poolPeak).toBeLessThanOrEqual(5);
    }
  }, 45_000);
});

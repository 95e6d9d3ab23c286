import { lastValueFrom } from 'rxjs';
import { Queue, silentLogger, Worker } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { SimulatedDatabase } from '../src/database';
import { EVENT_QUEUE, makeEvent, type AppEvent } from '../src/event';
import { startLiveFeed } from '../src/live-feed';
import { dbWriterPipeline } from '../src/pipeline';
import { SimulatedSocket } from '../src/socket';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('db-writer: adaptive batches to the database, a bounded fan-out to slow subscribers', () => {
  const redis = useRedis();
  let prefix: string;
  let store: RedisStore;

  beforeEach(async () => {
    prefix = uniquePrefix('db-writer');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(store.client, prefix);
    await store.close();
  });

  it('stores every event once, in batches that follow the load, while subscribers drop the oldest within their buffers', async () => {
    const trickle = 40;
    const burst = 20_000;
    const total = trickle + burst;
    const bufferSize = 100;
    const db = new SimulatedDatabase(20);
    const sockets = [
      new SimulatedSocket('fast-client', 1),
      new SimulatedSocket('mobile-client', 5),
      new SimulatedSocket('slow-client', 20),
    ];
    const worker = new Worker({ store, pipelines: [dbWriterPipeline(db)], logger: silentLogger });
    const subscribers = startLiveFeed(worker, sockets, bufferSize);
    // Every subscriber's buffer, sampled every millisecond for the whole run.
    let mostBuffered = 0;
    const sampler = setInterval(() => {
      for (const s of subscribers) mostBuffered = Math.max(mostBuffered, s.stats.buffered);
    }, 1);
    worker.start();

    // A slow producer: one event every 50 ms. The database is idle each time: batches of one.
    const events = new Queue<AppEvent>(store, EVENT_QUEUE);
    for (let n = 0; n < trickle; n++) {
      await events.add(makeEvent(n));
      await sleep(50);
    }
    await until(() => db.inserted.size === trickle, 5000, 'the trickle to be stored');
    const trickleWrites = db.writes.map((w) => w.rows);

    // A burst: the database is busy, events gather, batches grow to the maximum.
    await events.addBulk(Array.from({ length: burst }, (_, i) => ({ data: makeEvent(trickle + i) })));
    await until(() => db.inserted.size === total, 30_000, 'the burst to be stored');
    const burstWrites = db.writes.slice(trickleWrites.length).map((w) => w.rows);

    await worker.close({ timeoutMs: 5000 }); // ends the feed; subscribers drain their buffers
    const finals = await Promise.all(subscribers.map((s) => lastValueFrom(s.done$)));
    clearInterval(sampler);

    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `db-writer: trickle ${trickleWrites.length} writes (max ${Math.max(...trickleWrites)} rows); ` +
        `burst ${burstWrites.length} writes (mean ${mean(burstWrites).toFixed(0)}, max ${Math.max(...burstWrites)}); ` +
        finals.map((f, i) => `${sockets[i]!.name} ${f.delivered} delivered/${f.dropped} dropped`).join(', '),
    );

    // The database got every event exactly once.
    expect(db.inserted.size).toBe(total);
    expect([...db.inserted.values()].every((n) => n === 1)).toBe(true);
    expect((await events.stats()).totals).toMatchObject({ enqueued: total, completed: total, failed: 0 });

    // Batch sizes follow the load.
    expect(Math.max(...trickleWrites)).toBeLessThanOrEqual(2);
    expect(mean(trickleWrites)).toBeLessThan(1.2);
    expect(Math.max(...burstWrites)).toBe(500);
    expect(mean(burstWrites)).toBeGreaterThan(250);

    for (const [i, f] of finals.entries()) {
      // Bounded: never more than bufferSize waiting, at any sample or by the subscriber's own count.
      expect(f.maxBuffered).toBeLessThanOrEqual(bufferSize);
      // Every event was either delivered or counted as dropped; the slow phase lost nothing.
      expect(f.failed).toBe(0);
      expect(f.dropped).toBe(total - f.delivered);
      expect(f.dropped).toBeGreaterThan(0);
      expect(f.delivered).toBeGreaterThanOrEqual(trickle + bufferSize);
      expect(sockets[i]!.received).toBe(f.delivered);
    }
    expect(mostBuffered).toBeGreaterThan(0);
    expect(mostBuffered).toBeLessThanOrEqual(bufferSize);
  }, 45_000);
});

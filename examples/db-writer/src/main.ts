/**
 * Events from a queue are written to a database in adaptive batches, and pushed to three websocket
 * clients of different speeds through bounded, drop-oldest buffers. First a trickle (one event every
 * 50 ms), then a burst of 20,000 at once.
 *
 *   npm run build && npm start -w examples/db-writer      (REDIS_URL to use another Redis)
 */
import { lastValueFrom } from 'rxjs';
import { createLogger, Queue, Worker } from '@sluice/core';
import { SimulatedDatabase, type Write } from './database';
import { EVENT_QUEUE, makeEvent, type AppEvent } from './event';
import { startLiveFeed } from './live-feed';
import { dbWriterPipeline } from './pipeline';
import { SimulatedSocket } from './socket';
import { openStore } from './store';

const TRICKLE = 40;
const BURST = 20_000;

async function main(): Promise<void> {
  const opened = await openStore('db-writer');
  const store = opened.store;
  const db = new SimulatedDatabase(20);
  const sockets = [
    new SimulatedSocket('fast-client', 1),
    new SimulatedSocket('mobile-client', 5),
    new SimulatedSocket('slow-client', 20),
  ];
  const worker = new Worker({
    store,
    pipelines: [dbWriterPipeline(db)],
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn' }),
  });
  const subscribers = startLiveFeed(worker, sockets, 100);
  worker.start();
  console.log(
    `Store: ${opened.name}. Database: 20 ms per insert, whatever its size; client buffers: 100 events.`,
  );

  const events = new Queue<AppEvent>(store, EVENT_QUEUE);
  for (let n = 0; n < TRICKLE; n++) {
    await events.add(makeEvent(n));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const trickleWrites = db.writes.length;
  console.log(`trickle: ${TRICKLE} events, one every 50 ms`);
  await events.addBulk(Array.from({ length: BURST }, (_, i) => ({ data: makeEvent(TRICKLE + i) })));
  console.log(`burst:   ${BURST} events at once`);
  while (db.inserted.size < TRICKLE + BURST) await new Promise((resolve) => setTimeout(resolve, 50));

  await worker.close(); // ends the live feed; each client then drains its buffer
  await Promise.all(subscribers.map((s) => lastValueFrom(s.done$)));
  await opened.dispose();

  const describe = (writes: readonly Write[]): string => {
    const rows = writes.map((w) => w.rows);
    const mean = rows.reduce((a, b) => a + b, 0) / rows.length;
    return `${rows.length} inserts of ${Math.min(...rows)} to ${Math.max(...rows)} rows (mean ${mean.toFixed(1)})`;
  };
  const twice = [...db.inserted.values()].filter((n) => n > 1).length;
  console.log(`\ndatabase: ${db.inserted.size} of ${TRICKLE + BURST} events stored, ${twice} more than once`);
  console.log(`  trickle  ${describe(db.writes.slice(0, trickleWrites))}`);
  console.log(`  burst    ${describe(db.writes.slice(trickleWrites))}`);
  console.log('live clients (buffer of 100, drop oldest):');
  for (const s of subscribers) {
    const { delivered, dropped, maxBuffered } = s.stats;
    console.log(
      `  ${s.name.padEnd(14)} delivered ${delivered}, dropped ${dropped}, most buffered ${maxBuffered}`,
    );
  }
}

void main();

/**
 * Orders are shipped by a pipeline composed by hand: a stage of our own looks up the customers of a
 * whole reservation in one directory call, then `processJobs` ships each order. Three acts: a backlog
 * of 100 orders; a drain (`worker.close()`) while shipments run; a worker that dies holding leases,
 * and the next worker recovering its orders.
 *
 *   npm run build && npm start -w examples/compose-pipeline      (REDIS_URL to use another Redis)
 */
import { firstValueFrom } from 'rxjs';
import { createLogger, Queue, Worker, type Outcome } from '@sluice/core';
import { SimulatedCustomerDirectory } from './customer-directory';
import { makeCustomers, makeOrder, ORDER_QUEUE, type Order, type Shipment } from './order';
import { orderPipeline } from './pipeline';
import { SimulatedShipper } from './shipper';
import { openStore } from './store';

const CUSTOMERS = 12;
const LEASE_MS = 2000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

type OrderOutcome = Outcome<Order, Shipment>;

function line(o: OrderOutcome): string {
  const what = o.kind === 'completed' ? `→ ${o.result.to} (${o.result.trackingId})` : '';
  return `  ${o.kind} ${o.job.data.orderId} ${what}, attempt ${o.job.attempt}`;
}

async function main(): Promise<void> {
  const opened = await openStore('compose-pipeline');
  const store = opened.store;
  const directory = new SimulatedCustomerDirectory(makeCustomers(CUSTOMERS), 20);
  const shipper = new SimulatedShipper(50);
  const orders = orderPipeline({ directory, shipper }, { concurrency: 10, leaseMs: LEASE_MS });
  // LOG_LEVEL=warn shows the worker's own report of the recovery in act 3.
  const logger = createLogger({ level: process.env['LOG_LEVEL'] ?? 'error' });
  const queue = new Queue<Order>(store, ORDER_QUEUE);
  const add = (from: number, count: number) =>
    queue.addBulk(Array.from({ length: count }, (_, i) => ({ data: makeOrder(from + i, CUSTOMERS) })));
  const outcomes: OrderOutcome[] = [];
  const seenAt = new Map<OrderOutcome, number>();
  const watch = (worker: Worker) =>
    worker.pipeline<Order, Shipment>(ORDER_QUEUE).outcomes$.subscribe((o) => {
      outcomes.push(o);
      seenAt.set(o, Date.now());
    });
  console.log(
    `Store: ${opened.name}. Directory: 20 ms a call, any number of customers; shipper: 50 ms an order.`,
  );

  // 1. A backlog: every reservation costs one directory call, however many customers it names.
  const first = new Worker({ store, pipelines: [orders], logger });
  watch(first);
  let reservations = 0;
  first.events$.subscribe((e) => {
    if (e.type === 'reserve' && e.reserved > 0) reservations++;
  });
  first.start();
  await add(0, 100);
  await until(() => outcomes.length === 100);
  const perCall = directory.calls.map((ids) => ids.length);
  console.log(`\n1. 100 orders from ${CUSTOMERS} customers, concurrency 10`);
  for (const o of outcomes.slice(0, 3)) console.log(line(o));
  console.log(`  … ${outcomes.filter((o) => o.kind === 'completed').length} completed`);
  console.log(
    `  ${reservations} reservations, ${directory.calls.length} directory calls ` +
      `(${Math.min(...perCall)} to ${Math.max(...perCall)} customers each): not one per order`,
  );

  // 2. A drain: close() while ten shipments run. They finish and settle; nothing new starts.
  shipper.hold();
  await add(100, 20);
  await until(() => shipper.running === 10);
  const startedAtClose = shipper.started.length;
  const closing = first.close({ timeoutMs: 10_000 });
  await sleep(300);
  shipper.release();
  const closed = await closing;
  const counts = (await store.stats(ORDER_QUEUE)).counts;
  console.log('\n2. 20 more orders; close() while 10 of them ship (held 300 ms)');
  console.log(
    `  close() → drained: ${closed.drained}, abandoned: ${closed.abandoned}; ` +
      `started after close(): ${shipper.started.length - startedAtClose}; ` +
      `left for the next worker: ${counts.ready} ready`,
  );

  // 3. Recovery: a worker leases 3 orders and dies without settling them (a reserve made by hand).
  // The next worker ships the rest at once and those 3 once their lease expires.
  await firstValueFrom(store.reserve(ORDER_QUEUE, 3, { leaseMs: 1000 }));
  const second = new Worker({ store, pipelines: [orders], logger });
  watch(second);
  const t0 = Date.now();
  second.start();
  await until(() => outcomes.length === 120);
  await second.close();
  const third = outcomes.slice(110);
  const after = (o: OrderOutcome | undefined) =>
    `${((((o && seenAt.get(o)) ?? t0) - t0) / 1000).toFixed(1)} s`;
  const fresh = third.filter((o) => o.job.attempt === 1);
  console.log('\n3. a worker leases 3 of the 10 and dies; a new worker starts');
  console.log(`  ${fresh.length} ready orders completed, the last ${after(fresh.at(-1))} after the start`);
  for (const o of third.filter((o) => o.job.attempt > 1)) console.log(`${line(o)} (recovered, ${after(o)})`);

  const stats = await store.stats(ORDER_QUEUE);
  const twice = [...shipper.shipped.values()].filter((n) => n > 1).length;
  console.log(
    `\n120 orders: ${shipper.shipped.size} shipped, ${twice} more than once; ` +
      `queue: ${stats.counts.completed} completed, ${stats.counts.ready} ready, ${stats.counts.running} running`,
  );
  await opened.dispose();
}

void main();

import { firstValueFrom } from 'rxjs';
import { Queue, silentLogger, Worker, type Outcome } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { SimulatedCustomerDirectory } from '../src/customer-directory';
import { makeCustomers, makeOrder, ORDER_QUEUE, type Order, type Shipment } from '../src/order';
import { orderPipeline, type OrderPipelineOptions } from '../src/pipeline';
import { SimulatedShipper } from '../src/shipper';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 20 ms; fails after `timeoutMs` (generous: these bounds are not measurements). */
async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const orderId = (o: Outcome) => (o.job.data as Order).orderId;

describe('compose-pipeline: the hand-composed order pipeline on Redis', () => {
  const redis = useRedis();
  const customers = makeCustomers(20);
  let prefix: string;
  let stores: RedisStore[];
  let workers: Worker[];
  let store: RedisStore;
  let queue: Queue<Order>;

  /** Another connection under the same prefix: what a second process would open. */
  const connect = async (): Promise<RedisStore> => {
    const s = await RedisStore.connect({ url: redis.url, prefix });
    stores.push(s);
    return s;
  };

  /** A worker running the example's pipeline, its outcomes collected as they come. */
  const startWorker = (
    services: { directory: SimulatedCustomerDirectory; shipper: SimulatedShipper },
    options: OrderPipelineOptions & { store?: RedisStore } = {},
  ) => {
    const { store: on = store, ...pipelineOptions } = options;
    const worker = new Worker({
      store: on,
      pipelines: [orderPipeline(services, pipelineOptions)],
      logger: silentLogger,
    });
    workers.push(worker);
    const outcomes: Outcome<Order, Shipment>[] = [];
    worker.pipeline<Order, Shipment>(ORDER_QUEUE).outcomes$.subscribe((o) => outcomes.push(o));
    return { worker, outcomes };
  };

  beforeEach(async () => {
    prefix = uniquePrefix('compose-pipeline');
    stores = [];
    workers = [];
    store = await connect();
    queue = new Queue<Order>(store, ORDER_QUEUE);
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close({ timeoutMs: 100 })));
    await deleteKeysWithPrefix(store.client, prefix);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('ships every order exactly once, with one directory call per reservation', async () => {
    const total = 200;
    const directory = new SimulatedCustomerDirectory(customers, 5);
    const shipper = new SimulatedShipper(10);
    const { worker, outcomes } = startWorker({ directory, shipper });
    let reservations = 0;
    worker.events$.subscribe((e) => {
      if (e.type === 'reserve' && e.reserved > 0) reservations++;
    });
    await queue.addBulk(Array.from({ length: total }, (_, i) => ({ data: makeOrder(i, customers.length) })));
    worker.start();
    await until(() => outcomes.length >= total, `${total} outcomes`);
    expect(await worker.close({ timeoutMs: 10_000 })).toEqual({ drained: true, abandoned: 0 });

    // Every order: one completed outcome, on its first attempt, shipped to its own customer.
    expect(outcomes).toHaveLength(total);
    expect(new Set(outcomes.map(orderId)).size).toBe(total);
    for (const o of outcomes) {
      expect(o).toMatchObject({ kind: 'completed', job: { attempt: 1 } });
      const customer = customers.find((c) => c.id === o.job.data.customerId)!;
      if (o.kind === 'completed') expect(o.result.to).toBe(`${customer.name}, ${customer.city}`);
    }
    expect(shipper.shipped.size).toBe(total);
    expect([...shipper.shipped.values()].every((n) => n === 1)).toBe(true);
    expect(shipper.started).toHaveLength(total);
    const stats = await queue.stats();
    expect(stats.totals).toMatchObject({ enqueued: total, completed: total, failed: 0 });
    expect(stats.counts).toMatchObject({ completed: total, ready: 0, running: 0 });

    // The enrichment stage: exactly one lookup per reservation, each customer asked once per call.
    expect(directory.calls).toHaveLength(reservations);
    expect(directory.calls.length).toBeLessThan(total);
    for (const ids of directory.calls) expect(new Set(ids).size).toBe(ids.length);
  });

  it('heartbeats keep the lease of a shipment that outlasts it: attempt 1, run once, with a second worker watching', async () => {
    const leaseMs = 800;
    const directory = new SimulatedCustomerDirectory(customers, 5);
    // Both shipments wait until released: the test decides how long the handler runs.
    const shipperA = new SimulatedShipper(0);
    const shipperB = new SimulatedShipper(0);
    shipperA.hold();
    shipperB.hold();
    // Two workers on the queue, each with its own connection, each recovering expired leases every 400 ms.
    const a = startWorker({ directory, shipper: shipperA }, { leaseMs });
    const b = startWorker({ directory, shipper: shipperB }, { leaseMs, store: await connect() });
    a.worker.start();
    b.worker.start();
    const order = makeOrder(0, customers.length);
    const { id } = await queue.add(order);
    await until(() => shipperA.started.length + shipperB.started.length === 1, 'the shipment to start');

    // Hold it until heartbeats have pushed its lease past three lease lengths from its start: it has
    // run more than two leases long by then.
    await until(async () => {
      const lease = (await store.getJob(ORDER_QUEUE, id))?.lease;
      return lease !== undefined && lease.expiresAt - lease.startedAt >= 3 * leaseMs;
    }, 'heartbeats to extend the lease');
    shipperA.release();
    shipperB.release();
    await until(() => a.outcomes.length + b.outcomes.length === 1, 'the outcome');
    await sleep(2 * leaseMs); // room for a wrong recovery to show up
    await Promise.all([a.worker.close({ timeoutMs: 5000 }), b.worker.close({ timeoutMs: 5000 })]);

    const outcomes = [...a.outcomes, ...b.outcomes];
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ kind: 'completed', job: { id, attempt: 1 } });
    expect(outcomes[0]!.durationMs).toBeGreaterThan(leaseMs);
    expect([...shipperA.started, ...shipperB.started]).toEqual([order.orderId]);
    expect([...shipperA.aborted, ...shipperB.aborted]).toEqual([]);
    expect(await store.getJob(ORDER_QUEUE, id)).toMatchObject({ state: 'completed', attempt: 1, errors: [] });
  });

  it('close() lets running shipments finish and settle, starts nothing new, and leaves the rest queued', async () => {
    const directory = new SimulatedCustomerDirectory(customers, 5);
    const shipper = new SimulatedShipper(0);
    shipper.hold();
    const first = startWorker({ directory, shipper }, { concurrency: 2 });
    const added = await queue.addBulk(
      Array.from({ length: 6 }, (_, i) => ({ data: makeOrder(i, customers.length) })),
    );
    first.worker.start();
    await until(() => shipper.started.length === 2, 'two shipments to start');

    const closing = first.worker.close({ timeoutMs: 20_000 });
    const startedAtClose = [...shipper.started];
    await sleep(200);
    shipper.release(); // the running shipments end now, while the worker drains
    expect(await closing).toEqual({ drained: true, abandoned: 0 });

    expect(shipper.started).toEqual(startedAtClose); // nothing started after close()
    expect(first.outcomes.map(orderId).sort()).toEqual([...startedAtClose].sort());
    expect(first.outcomes.every((o) => o.kind === 'completed')).toBe(true);
    for (const o of first.outcomes) {
      expect(await store.getJob(ORDER_QUEUE, o.job.id)).toMatchObject({ state: 'completed' });
    }
    expect((await queue.stats()).counts).toMatchObject({ completed: 2, ready: 4, running: 0, scheduled: 0 });

    // The next worker finds the other four, none of them touched.
    const shipper2 = new SimulatedShipper(0);
    const next = startWorker({ directory, shipper: shipper2 });
    next.worker.start();
    await until(() => next.outcomes.length === 4, 'the next worker to ship the rest');
    expect(next.outcomes.every((o) => o.kind === 'completed' && o.job.attempt === 1)).toBe(true);
    const all = [...first.outcomes, ...next.outcomes];
    expect(all.map((o) => o.job.id).sort()).toEqual(added.map((r) => r.id).sort());
    expect([...shipper.shipped.values(), ...shipper2.shipped.values()]).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('recovers a job abandoned by a worker whose drain timed out, and completes it', async () => {
    const leaseMs = 1000;
    const directory = new SimulatedCustomerDirectory(customers, 5);
    const shipperA = new SimulatedShipper(0);
    shipperA.hold(); // never ends: this worker will give up on it
    const a = startWorker({ directory, shipper: shipperA }, { leaseMs });
    a.worker.start();
    const order = makeOrder(0, customers.length);
    const { id } = await queue.add(order);
    await until(() => shipperA.started.length === 1, 'the first worker to start the shipment');

    expect(await a.worker.close({ timeoutMs: 50 })).toEqual({ drained: false, abandoned: 1 });
    expect(shipperA.aborted).toEqual([order.orderId]);
    expect(await store.getJob(ORDER_QUEUE, id)).toMatchObject({ state: 'running', attempt: 1 });

    const shipperB = new SimulatedShipper(0);
    const b = startWorker({ directory, shipper: shipperB }, { leaseMs });
    b.worker.start();
    await until(() => b.outcomes.length === 1, 'the recovered job to complete');
    expect(b.outcomes[0]).toMatchObject({ kind: 'completed', job: { id, attempt: 2 } });
    expect(shipperA.shipped.size).toBe(0);
    expect([...shipperB.shipped]).toEqual([[order.orderId, 1]]);
    expect(await store.getJob(ORDER_QUEUE, id)).toMatchObject({ state: 'completed', attempt: 2 });
  });

  it('recovers a job leased by hand and never settled, and completes it', async () => {
    const order = makeOrder(0, customers.length);
    const { id } = await queue.add(order);
    const leased = await firstValueFrom(store.reserve(ORDER_QUEUE, 1, { leaseMs: 500 }));
    expect(leased.jobs.map((job) => job.id)).toEqual([id]);

    const shipper = new SimulatedShipper(0);
    const { worker, outcomes } = startWorker(
      { directory: new SimulatedCustomerDirectory(customers, 5), shipper },
      { leaseMs: 1000 },
    );
    worker.start();
    await until(() => outcomes.length === 1, 'the recovered job to complete');
    expect(outcomes[0]).toMatchObject({ kind: 'completed', job: { id, attempt: 2 } });
    expect([...shipper.shipped]).toEqual([[order.orderId, 1]]);
    expect(await store.getJob(ORDER_QUEUE, id)).toMatchObject({ state: 'completed', attempt: 2 });
  });
});

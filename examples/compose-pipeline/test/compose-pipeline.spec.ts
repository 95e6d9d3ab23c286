import { map } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { fixed, type Outcome } from '@sluice/core';
import { pipelineHarness, type PipelineHarness } from '@sluice/testing';
import { SimulatedCustomerDirectory } from '../src/customer-directory';
import { makeCustomers, ORDER_QUEUE, type Order, type Shipment } from '../src/order';
import { orderPipeline } from '../src/pipeline';
import { SimulatedShipper } from '../src/shipper';

/** The example's own pipeline over a MemoryStore, in virtual time: 20 ms a directory call, 50 ms a shipment. */

function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

const order = (orderId: string, customerId: string): { data: Order } => ({
  data: { orderId, customerId, sku: 'sku-1' },
});

/** `kind:orderId[:to]`, the shipment's recipient for completed orders. */
function brief(o: Outcome): string {
  const id = (o.job.data as Order).orderId;
  return o.kind === 'completed' ? `completed:${id}:${(o.result as Shipment).to}` : `${o.kind}:${id}`;
}

describe('compose-pipeline: the order pipeline in virtual time', () => {
  const customers = makeCustomers(3); // c-01 Ada #1 (Lyon), c-02 Grace #2 (Leeds), c-03 Alan #3 (Turin)

  it('looks up the customers of a reservation in one call, then ships each order', () => {
    const directory = new SimulatedCustomerDirectory(customers, 20);
    const shipper = new SimulatedShipper(50);
    let harness: PipelineHarness | undefined;
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({ pipelines: [orderPipeline({ directory, shipper })] });
      // Three orders at 0 (two customers) are one reservation; two orders at 100 another.
      h.enqueueAt(0, ORDER_QUEUE, [order('o-1', 'c-01'), order('o-2', 'c-02'), order('o-3', 'c-01')]);
      h.enqueueAt(100, ORDER_QUEUE, [order('o-4', 'c-03'), order('o-5', 'c-03')]);
      const outcomes$ = h.run({ until: 300 }).pipe(map(brief));
      // Lookup 0 → 20, shipments 20 → 70 (concurrency 10: all at once); lookup 100 → 120, ship → 170.
      expectObservable(outcomes$).toBe('70ms (abc) 95ms (de) 126ms |', {
        a: 'completed:o-1:Ada #1, Lyon',
        b: 'completed:o-2:Grace #2, Leeds',
        c: 'completed:o-3:Ada #1, Lyon',
        d: 'completed:o-4:Alan #3, Turin',
        e: 'completed:o-5:Alan #3, Turin',
      });
      harness = h;
    });
    expect(harness?.closeResult).toEqual({ drained: true, abandoned: 0 });
    // One call per reservation, each customer asked once per call.
    expect(directory.calls).toEqual([['c-01', 'c-02'], ['c-03']]);
    expect(shipper.started).toEqual(['o-1', 'o-2', 'o-3', 'o-4', 'o-5']);
    expect([...shipper.shipped.values()]).toEqual([1, 1, 1, 1, 1]);
  });

  it('a failed lookup fails its jobs (retried with backoff), an unknown customer is dead-lettered', () => {
    const directory = new SimulatedCustomerDirectory(customers, 20);
    const shipper = new SimulatedShipper(50);
    directory.failNext();
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({
        pipelines: [orderPipeline({ directory, shipper }, { backoff: fixed(100) })],
      });
      h.enqueueAt(0, ORDER_QUEUE, [order('o-1', 'c-01'), order('o-9', 'c-99')]);
      const outcomes$ = h.run({ until: 300 }).pipe(map(brief));
      // The lookup fails at 20: both jobs fail, due again at 120. Lookup 120 → 140: o-9's customer
      // does not exist (dead at once), o-1 ships 140 → 190.
      expectObservable(outcomes$).toBe('20ms (ab) 116ms c 49ms d 109ms |', {
        a: 'retrying:o-1',
        b: 'retrying:o-9',
        c: 'dead:o-9',
        d: 'completed:o-1:Ada #1, Lyon',
      });
    });
    expect(directory.calls).toEqual([
      ['c-01', 'c-99'],
      ['c-01', 'c-99'],
    ]);
    expect(shipper.started).toEqual(['o-1']);
  });

  it('a drain lets running shipments finish, and hands back orders still in the lookup', async () => {
    const directory = new SimulatedCustomerDirectory(customers, 20);
    const shipper = new SimulatedShipper(50);
    let harness: PipelineHarness | undefined;
    newTestScheduler().run(({ expectObservable }) => {
      const h = pipelineHarness({ pipelines: [orderPipeline({ directory, shipper }, { concurrency: 1 })] });
      harness = h;
      h.enqueueAt(0, ORDER_QUEUE, [order('o-1', 'c-01')]);
      h.enqueueAt(30, ORDER_QUEUE, [order('o-2', 'c-02')]);
      h.enqueueAt(30, ORDER_QUEUE, [order('o-3', 'c-03')]);
      // o-1 ships 20 → 70; o-2 is reserved at 70 and looked up 70 → 90; the drain starts at 80.
      const outcomes$ = h.run({ until: 80, drainTimeoutMs: 1000 }).pipe(map(brief));
      expectObservable(outcomes$).toBe('70ms a 19ms (b|)', {
        a: 'completed:o-1:Ada #1, Lyon',
        b: 'snoozed:o-2',
      });
    });
    expect(harness?.closeResult).toEqual({ drained: true, abandoned: 0 });
    expect(shipper.started).toEqual(['o-1']);
    // o-2 (handed back, no attempt spent) and o-3 (never reserved) wait for the next worker.
    const store = harness!.store;
    expect((await store.stats(ORDER_QUEUE)).counts).toMatchObject({ completed: 1, running: 0, ready: 2 });
    const ready = await store.listJobs(ORDER_QUEUE, 'ready');
    expect(ready.map((job) => [(job.data as Order).orderId, job.attempt]).sort()).toEqual([
      ['o-2', 0],
      ['o-3', 0],
    ]);
  });
});

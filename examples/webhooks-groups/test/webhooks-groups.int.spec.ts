import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { NOISY, runScenario } from '../src/scenario';
import { PER_CUSTOMER_PER_SECOND } from '../src/webhook';

describe('webhooks-groups: per-customer order, and a noisy import that does not hold others back (Redis)', () => {
  const redis = useRedis();
  let prefix: string;
  let store: RedisStore;

  beforeEach(async () => {
    prefix = uniquePrefix('webhooks-groups');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(store.client, prefix);
    await store.close();
  });

  it("delivers each customer's webhooks one at a time and in order; small customers wait rounds, not the import", async () => {
    const customers = 100;
    const perCustomer = 5;
    const report = await runScenario(store, {
      importSize: 5000,
      customers,
      perCustomer,
      concurrency: 10,
      latencyMs: 5,
      // Generous: a bound on a loaded machine, not a measurement.
      timeoutMs: 60_000,
    });
    // Every customer's endpoint (the noisy one included) saw one webhook at a time, in order, and
    // never more than its quota in any second (the import is held to it: it would go faster).
    expect(report.endpoints.overlaps).toBe(0);
    expect(report.endpoints.outOfOrder).toBe(0);
    const busiest = report.endpoints.busiestWindow(1000);
    expect(busiest.deliveries).toBeLessThanOrEqual(PER_CUSTOMER_PER_SECOND);
    const byCustomer = new Map<string, number[]>();
    for (const d of report.endpoints.deliveries) {
      byCustomer.set(d.customer, [...(byCustomer.get(d.customer) ?? []), d.seq]);
    }
    expect(byCustomer.size).toBe(customers + 1);
    for (const [customer, seqs] of byCustomer) {
      if (customer === NOISY) {
        expect(seqs).toEqual(seqs.map((_, i) => i));
      } else {
        expect(seqs).toEqual([0, 1, 2, 3, 4]);
      }
    }
    for (const d of report.endpoints.deliveries) {
      if (d.customer !== NOISY) expect(d.end).toBeGreaterThan(d.start);
    }
    expect(report.small).toHaveLength(customers * perCustomer);
    // Customers take turns: the import (one delivery at a time) gets at most one turn ahead of a
    // customer's webhook in each pass of the round, and a customer needs a pass per webhook of its
    // own (its webhooks go one at a time too); a pass may also overlap an import delivery that
    // started before the customer's turn came back, or one more reserve while its settle was on the
    // way: 3 per pass, plus the turn the import had out when the customer added. Counted in
    // deliveries, not timed. In one queue without groups, the first would wait for the whole backlog.
    for (const s of report.small) {
      expect(s.noisyBefore).toBeLessThanOrEqual(3 * (s.seq + 1) + 3);
    }
    expect(report.noisyBacklogAtAdd).toBeGreaterThan(4000);
  }, 90_000);
});

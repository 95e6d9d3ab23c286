import { performance } from 'node:perf_hooks';
import { Queue, silentLogger, Worker, type Store } from '@sluice/core';
import { CustomerEndpoints } from './endpoints';
import { groupOf, webhookPipeline, WEBHOOK_QUEUE, type Webhook } from './webhook';

export const NOISY = 'bigcorp';

export interface ScenarioOptions {
  /** Webhooks of the noisy customer's import, added first. */
  readonly importSize: number;
  /** Small customers, each adding `perCustomer` webhooks once the import is under way. */
  readonly customers: number;
  readonly perCustomer: number;
  /** Deliveries at once over all customers. */
  readonly concurrency: number;
  /** How long an endpoint takes to answer. */
  readonly latencyMs: number;
  /** Gives up waiting for the small customers' webhooks after this long. */
  readonly timeoutMs: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** What happened to the small customers' webhooks. */
export interface SmallHook {
  readonly customer: string;
  readonly seq: number;
  /** From its customer's add call to the endpoint seeing it, ms. */
  readonly waitMs: number;
  /** Deliveries to the noisy customer that started between its customer's add and its own start. */
  readonly noisyBefore: number;
}

export interface ScenarioReport {
  readonly endpoints: CustomerEndpoints;
  readonly small: readonly SmallHook[];
  /** The noisy customer's webhooks still waiting when the small customers added theirs. */
  readonly noisyBacklogAtAdd: number;
  /** Deliveries to the noisy customer from the small customers' first add to their last delivery. */
  readonly noisyMeanwhile: number;
  /** From the first small add to the last small delivery, ms. */
  readonly smallSpanMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The noisy customer imports `importSize` records, each a webhook; while its webhooks are being
 * delivered, `customers` small customers add `perCustomer` webhooks each. One worker delivers them
 * all; the report says how long the small customers waited and how many of the noisy customer's
 * webhooks went before theirs. The worker is closed at the end; the rest of the import stays queued.
 */
export async function runScenario(store: Store, options: ScenarioOptions): Promise<ScenarioReport> {
  const log = options.log ?? (() => undefined);
  const endpoints = new CustomerEndpoints(options.latencyMs);
  const queue = new Queue<Webhook>(store, WEBHOOK_QUEUE);
  for (let i = 0; i < options.importSize; i += 1000) {
    const n = Math.min(1000, options.importSize - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, j) => ({
        data: { customer: NOISY, seq: i + j, event: `contact.imported` },
        options: { group: groupOf(NOISY) },
      })),
    );
  }
  log(`${NOISY} imported ${options.importSize.toLocaleString('en')} contacts: one webhook each, queued`);
  const worker = new Worker({
    store,
    pipelines: [webhookPipeline(endpoints, { concurrency: options.concurrency })],
    logger: silentLogger,
  });
  worker.start();
  try {
    while (endpoints.startsOf(NOISY) < 20) await sleep(5);
    log(`${NOISY}'s webhooks are being delivered (one at a time, in order)`);

    // Every small customer adds its webhooks (an order placed, paid, shipped, …).
    const addedAt = new Map<string, { at: number; noisyStarts: number }>();
    const firstAdd = performance.now();
    const noisyAtFirstAdd = endpoints.startsOf(NOISY);
    for (let c = 0; c < options.customers; c++) {
      const customer = `shop-${String(c).padStart(3, '0')}`;
      addedAt.set(customer, { at: performance.now(), noisyStarts: endpoints.startsOf(NOISY) });
      await queue.addBulk(
        Array.from({ length: options.perCustomer }, (_, seq) => ({
          data: { customer, seq, event: `order.step-${seq}` },
          options: { group: groupOf(customer) },
        })),
      );
    }
    const smallTotal = options.customers * options.perCustomer;
    log(`${options.customers} other customers added ${smallTotal.toLocaleString('en')} webhooks`);
    const deadline = Date.now() + options.timeoutMs;
    const smallDelivered = () => endpoints.deliveries.filter((d) => d.customer !== NOISY).length;
    while (smallDelivered() < smallTotal) {
      if (Date.now() > deadline) {
        throw new Error(`only ${smallDelivered()} of ${smallTotal} small customers' webhooks were delivered`);
      }
      await sleep(5);
    }

    // Replay the deliveries in start order, counting the noisy customer's starts.
    let noisyStarts = 0;
    const small: SmallHook[] = [];
    let lastSmall = firstAdd;
    for (const d of endpoints.deliveries) {
      if (d.customer === NOISY) {
        noisyStarts++;
        continue;
      }
      const added = addedAt.get(d.customer);
      if (!added) throw new Error(`a delivery to ${d.customer}, who added nothing`);
      small.push({
        customer: d.customer,
        seq: d.seq,
        waitMs: d.start - added.at,
        noisyBefore: noisyStarts - added.noisyStarts,
      });
      lastSmall = Math.max(lastSmall, d.start);
    }
    const noisyMeanwhile = endpoints.deliveries.filter(
      (d) => d.customer === NOISY && d.start >= firstAdd && d.start <= lastSmall,
    ).length;
    return {
      endpoints,
      small,
      noisyBacklogAtAdd: options.importSize - noisyAtFirstAdd,
      noisyMeanwhile,
      smallSpanMs: lastSmall - firstAdd,
    };
  } finally {
    await worker.close({ timeoutMs: 5000 });
  }
}

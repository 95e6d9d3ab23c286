/**
 * Per-customer webhooks: one customer imports 20,000 contacts (a webhook each) while 200 other
 * customers place orders (5 webhooks each). Each customer is a group with `concurrency: 1` and a
 * rate limit of its own, so its endpoint gets its webhooks one at a time, in order and within its
 * quota, and customers take turns, so the import does not hold the others back.
 *
 *   npm run build && npm start -w examples/webhooks-groups      (REDIS_URL to use another Redis)
 */
import { NOISY, runScenario } from './scenario';
import { PER_CUSTOMER_PER_SECOND } from './webhook';
import { openStore } from './store';

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;

async function main(): Promise<void> {
  const opened = await openStore('webhooks-groups');
  const started = Date.now();
  const log = (line: string): void => {
    console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
  };
  log(
    `store: ${opened.name}; endpoints answer in 10 ms; 20 deliveries at once, ` +
      `1 and at most ${PER_CUSTOMER_PER_SECOND} a second per customer`,
  );
  try {
    const report = await runScenario(opened.store, {
      importSize: 20_000,
      customers: 200,
      perCustomer: 5,
      concurrency: 20,
      latencyMs: 10,
      timeoutMs: 60_000,
      log,
    });
    const waits = report.small.map((s) => s.waitMs).sort((a, b) => a - b);
    const rounds = report.small.map((s) => s.noisyBefore - s.seq);
    const busiest = report.endpoints.busiestWindow(1000);
    log(`every small customer's webhooks delivered`);
    console.log(`
${report.small.length.toLocaleString('en')} webhooks of 200 small customers, added while ${report.noisyBacklogAtAdd.toLocaleString('en')} of ${NOISY}'s waited:
  from add to delivery: p50 ${percentile(waits, 50).toFixed(0)} ms, p99 ${percentile(waits, 99).toFixed(0)} ms, max ${percentile(waits, 100).toFixed(0)} ms
  ${NOISY}'s webhooks delivered meanwhile: ${report.noisyMeanwhile} (in one queue without groups, the first
  small webhook would have waited for all ${report.noisyBacklogAtAdd.toLocaleString('en')})
  most of ${NOISY}'s deliveries ahead of a small customer's webhook, beyond one per webhook of its own: ${Math.max(...rounds)}
every customer's endpoint: ${report.endpoints.overlaps} overlapping deliveries, ${report.endpoints.outOfOrder} out of order, at most ${busiest.deliveries} in any second (${busiest.customer}; its quota ${PER_CUSTOMER_PER_SECOND})
${NOISY}: ${report.endpoints.startsOf(NOISY).toLocaleString('en')} of 20,000 delivered so far (one at a time, in order, within its quota); the rest stays queued`);
  } finally {
    await opened.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

import { Queue, silentLogger, Worker } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { SimulatedInspectionApi } from '../src/inspection-api';
import { ALERT_QUEUE, MESSAGE_QUEUE, type Finding, type Message } from '../src/message';
import { SimulatedPager } from '../src/pager';
import { inspectionPipelines } from '../src/pipelines';
import { produceMessages } from '../src/producer';
import { maxCallsInAnyWindow, sustainedRate } from '../src/throughput';

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('content-inspection: single messages, inspected 100 per call at 10 calls/s', () => {
  const redis = useRedis();
  let prefix: string;
  let store: RedisStore;

  beforeEach(async () => {
    prefix = uniquePrefix('content-inspection');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(store.client, prefix);
    await store.close();
  });

  it('sustains full calls near 1,000 messages/s, never makes 11 calls in 1,000 ms (the API refuses none), inspects every message once and pages every finding once', async () => {
    const api = new SimulatedInspectionApi();
    const pager = new SimulatedPager();
    const messages = new Queue<Message>(store, MESSAGE_QUEUE);
    const alerts = new Queue<Finding>(store, ALERT_QUEUE);
    const worker = new Worker({
      store,
      pipelines: inspectionPipelines({ api, pager, alerts }),
      logger: silentLogger,
    });
    worker.start();

    // 8 s of messages at 1,300/s, each added on its own: 10,400 messages, a backlog growing by 300/s.
    const started = Date.now();
    const ids = await produceMessages(messages, { perSecond: 1300, durationMs: 8000 });
    const producedPerSecond = (ids.length * 1000) / (Date.now() - started);
    const expectedFindings = ids.filter((_, n) => n % 100 === 13);
    const inspected = () => api.calls.flatMap((c) => c.messageIds);
    await until(
      () => inspected().length >= ids.length && pager.delivered.length >= expectedFindings.length,
      20_000,
      'every message to be inspected and every finding paged',
    );
    await worker.close({ timeoutMs: 5000 });

    // Throughput, measured while the backlog lasts, after 2 s of warm-up. The median window is the
    // pace the pipeline sustains; the average over the interval also pays for any stall of this
    // (shared, two-core) machine, hence its lower floor.
    const rate = sustainedRate(api.calls, 10, started + 2000);
    const busiest = maxCallsInAnyWindow(api.calls, 1000);
    console.log(
      `content-inspection: produced ${producedPerSecond.toFixed(0)}/s; sustained ${rate.perSecond.toFixed(1)} messages/s ` +
        `(median window ${rate.medianPerSecond.toFixed(1)}/s) over ${rate.calls} calls (${rate.spanMs} ms); ` +
        `busiest 1,000 ms: ${busiest} calls as the API saw them; ` +
        `refused by the API: ${api.rejected}; ${api.calls.length} calls in all`,
    );
    expect(producedPerSecond).toBeGreaterThanOrEqual(1200);
    expect(rate.calls).toBeGreaterThanOrEqual(50);
    // The pace depends on how loaded the machine is (997–999/s quiet, 983/s in a parallel run, 914
    // median / 831 average beside a busy loop): the bounds only need full batches (unbatched, the
    // limit would allow 10 messages/s) and a pace no stall of a loaded machine explains away.
    expect(rate.medianPerSecond).toBeGreaterThanOrEqual(500);
    expect(rate.perSecond).toBeGreaterThanOrEqual(500);
    const measuredCalls = api.calls.filter((c) => c.at >= started + 2000);
    const itemsPerCall = measuredCalls.reduce((n, c) => n + c.messageIds.length, 0) / measuredCalls.length;
    expect(itemsPerCall).toBeGreaterThanOrEqual(99);
    // Each handler starts within the margin after its slot and calls the API in the same turn, so
    // the API refuses none — unless this process stalls between the start gate's last clock check
    // and the API's own clock reading for longer than the 2 ms the gate keeps (a GC pause, or the
    // OS descheduling it: seen once in a CI run beside a busy loop and other test files). Then the
    // API sees an 11th call, refuses it, and the batch is snoozed (nothing lost, checked below);
    // more than one such stall in a run is not expected.
    expect(busiest).toBeLessThanOrEqual(10);
    expect(api.rejected).toBeLessThanOrEqual(1);
    expect(Math.max(...api.calls.map((c) => c.messageIds.length))).toBe(100);

    // Nothing lost, nothing inspected twice.
    expect(inspected()).toHaveLength(ids.length);
    expect(new Set(inspected())).toEqual(new Set(ids));
    expect((await messages.stats()).totals).toMatchObject({ enqueued: ids.length, completed: ids.length });

    // One page per finding.
    expect(pager.delivered.map((f) => f.messageId).sort()).toEqual(expectedFindings.sort());
    expect((await alerts.stats()).totals).toMatchObject({
      enqueued: expectedFindings.length,
      completed: expectedFindings.length,
    });
  }, 45_000);
});

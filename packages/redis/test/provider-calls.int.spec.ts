import { firstValueFrom } from 'rxjs';
import { uniquePrefix } from '@sluice/testing';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { maxInAnyWindow } from '@sluice/core';
import { sleep, useRedisWithAdmin } from './helpers';
import { killAllWorkers, ProviderProcess, WorkerProcess } from './worker-process';

/**
 * Rounds and their length: one round of 10 s in `npm test`; the full check is three rounds of 30 s:
 * `SLUICE_PROVIDER_ROUNDS=3 SLUICE_PROVIDER_ROUND_MS=30000 npx jest packages/redis/test/provider-calls`.
 */
const ROUNDS = Number(process.env.SLUICE_PROVIDER_ROUNDS ?? 1);
const ROUND_MS = Number(process.env.SLUICE_PROVIDER_ROUND_MS ?? 10_000);

/**
 * The inspection-API case as the provider sees it: a provider process that accepts 10 calls in any
 * 1,000 ms and refuses (429) the 11th, a worker process making one call per batch of up to 100 jobs
 * under a limit of 10 calls per 1,000 ms, and a backlog that keeps every call full.
 *
 * What is asserted is what the worker controls: never 11 calls started in any 1,000 ms (handler
 * starts, the machine's clock), and a refused call loses nothing (its jobs go back, none fails or
 * dies). What the provider counted (its arrivals, and refusals) is reported: it adds the time the
 * request takes to reach the provider process and be stamped there, which the scheduling of a
 * loaded machine stretches (one CI run beside a busy loop counted 11 in a window, once, with every
 * request leaving within 15 ms of its slot).
 */
describe('10 calls per second of 100 items against a provider that refuses the 11th call in any second', () => {
  const redis = useRedisWithAdmin();
  let prefix: string;
  let store: RedisStore;

  beforeEach(async () => {
    prefix = uniquePrefix('calls');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await killAllWorkers();
    await store.close();
    await deleteKeysWithPrefix(redis.admin, prefix);
  });

  it.each(Array.from({ length: ROUNDS }, (_, i) => i + 1))(
    `round %i (${ROUND_MS / 1000} s): never 11 calls started in any 1,000 ms; a refused call loses nothing`,
    async () => {
      const provider = await ProviderProcess.start({ allowed: 10, periodMs: 1000, retryAfterMs: 1000 });
      try {
        const jobs = (ROUND_MS / 1000 + 2) * 1000; // more than 10 full calls a second can take
        await firstValueFrom(
          store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'inspect', data: { n } }))),
        );
        const worker = await WorkerProcess.start('w', {
          url: redis.url,
          prefix,
          queue: 'inspect',
          concurrency: 4,
          leaseMs: 30_000,
          workMs: 20,
          rateLimit: { allowed: 10, periodMs: 1000, per: 'call' },
          batch: { size: 100, timeMs: 50 },
          providerUrl: provider.url,
        });
        await sleep(ROUND_MS);
        await worker.close();
        const arrivals = await provider.arrivals();
        const refused = arrivals.filter((a) => a.status === 429).length;
        const times = arrivals.map((a) => a.at);
        const span = Math.max(...times) - Math.min(...times);
        const items = worker.starts.length / Math.max(1, arrivals.length);
        // Each call's handler start: a call names the first job of its batch, whose start reports
        // (one per attempt: a refused call's jobs start again) pair with its calls in order.
        const startsOf = new Map<string, number[]>();
        for (const st of worker.starts) startsOf.set(st.id, [...(startsOf.get(st.id) ?? []), st.at]);
        const callStarts = arrivals.flatMap((a) => {
          const at = startsOf.get(a.id)?.shift();
          return at === undefined ? [] : [at];
        });
        console.log(
          `10 calls/s of 100: ${arrivals.length} calls in ${span.toFixed(0)} ms ` +
            `(${((arrivals.length - 1) / (span / 1000)).toFixed(2)} calls/s, ${items.toFixed(1)} jobs per call), ` +
            `${refused} refused, at most ${maxInAnyWindow(times, 1000)} in any 1,000 ms at the provider ` +
            `(${maxInAnyWindow(callStarts, 1000)} by handler start); ` +
            `latest request ${worker.timing?.maxSendLateMs.toFixed(1)} ms after its slot, margin up to ${worker.timing?.maxMarginMs} ms`,
        );
        expect(arrivals.length).toBeGreaterThanOrEqual(ROUND_MS / 200); // at least half the rate
        expect(callStarts).toHaveLength(arrivals.length);
        expect(maxInAnyWindow(callStarts, 1000)).toBeLessThanOrEqual(10);
        // A refused call's jobs went back without spending an attempt: none failed or died. Snoozed
        // outcomes also come from the start gate, which hands back a start still late after its
        // unit was moved (a loaded machine's event loop): those jobs never started, and run again.
        expect(worker.outcomes.filter((o) => o.kind !== 'completed' && o.kind !== 'snoozed')).toEqual([]);
        if (refused > 0)
          expect(worker.outcomes.filter((o) => o.kind === 'snoozed').length).toBeGreaterThan(0);
      } finally {
        provider.stop();
      }
    },
    ROUND_MS + 60_000,
  );
});

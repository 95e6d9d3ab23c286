import { defer, finalize, type Observable, tap } from 'rxjs';
import {
  definePipeline,
  Queue,
  silentLogger,
  Worker,
  type Outcome,
  type ReserveOptions,
  type ReserveResult,
  type Store,
} from '@sluice/core';
import { sleep, storeFixture, useRedisWithAdmin } from './helpers';

/**
 * `RedisStore.settlesInOrder`: a settle is sent when subscribed and Redis runs a queue's calls in
 * the order sent, so the settle stage gives the demand of settled jobs back as soon as the settle is
 * sent, and the next reserve travels right behind it. Audited here in the order the calls leave the
 * process (the order Redis applies them): when each reserve is sent, the jobs it may lease plus the
 * jobs leased and not yet covered by a settle already sent stay within the pipeline's budget.
 */

interface Audit {
  reserves: number;
  /** Reserves sent while a settle was sent and not answered: the overlap the early demand buys. */
  behindSettle: number;
  maxHeld: number;
  violations: string[];
}

/** The store with its reserves and settles audited in the order they are sent; no parking. */
function audited(store: Store, budget: () => number, audit: Audit): Store {
  let leased = 0; // jobs leased by answered reserves
  let asked = 0; // what reserves in flight may still lease
  let settledSent = 0;
  let settlesOpen = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'openHandoffs') return undefined; // every job comes from a reserve
      if (prop === 'reserve') {
        const reserve = <T>(
          queue: string,
          n: number,
          options: ReserveOptions,
        ): Observable<ReserveResult<T>> =>
          defer(() => {
            const held = leased + asked - settledSent;
            audit.reserves++;
            if (settlesOpen > 0) audit.behindSettle++;
            audit.maxHeld = Math.max(audit.maxHeld, held + n);
            if (held + n > budget()) {
              audit.violations.push(`reserve ${audit.reserves}: ${held} held + ${n} asked > ${budget()}`);
            }
            asked += n;
            let got = 0;
            return target.reserve<T>(queue, n, options).pipe(
              tap((r) => (got = r.jobs.length)),
              finalize(() => {
                asked -= n;
                leased += got;
              }),
            );
          });
        return reserve;
      }
      if (prop === 'settle') {
        const settle: Store['settle'] = (settlements) =>
          defer(() => {
            settledSent += settlements.length;
            settlesOpen++;
            // Answered when its results arrive, before the stage downstream handles them.
            let open = true;
            const answered = (): void => {
              if (open) settlesOpen--;
              open = false;
            };
            return target
              .settle(settlements)
              .pipe(tap({ next: answered, error: answered }), finalize(answered));
          });
        return settle;
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('settles sent in order on Redis', () => {
  const redis = useRedisWithAdmin();

  /** Runs `total` no-op jobs through one pipeline over the audited store; answers the audit. */
  async function run(
    total: number,
    concurrency: number,
    prefetch: number,
  ): Promise<{ audit: Audit; budget: number; maxInFlight: number }> {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'settle-order');
    const audit: Audit = { reserves: 0, behindSettle: 0, maxHeld: 0, violations: [] };
    let worker: Worker | undefined;
    try {
      expect(fx.store.settlesInOrder).toBe(true);
      const pipeline = definePipeline<number>({
        queue: 'ordered',
        concurrency,
        prefetch,
        handler: async () => {
          await Promise.resolve();
        },
      });
      const store = audited(fx.store, () => worker?.pipeline('ordered').status().budget ?? 0, audit);
      await new Queue<number>(fx.store, 'ordered').addBulk(
        Array.from({ length: total }, (_, i) => ({ data: i })),
      );
      worker = new Worker({ store, pipelines: [pipeline], logger: silentLogger });
      const completed = new Array<number>(total).fill(0);
      const other: string[] = [];
      worker.outcomes$.subscribe((o: Outcome) => {
        if (o.kind === 'completed') completed[o.job.data as number]! += 1;
        else other.push(`${String(o.job.data)}: ${o.kind}`);
      });
      worker.start();
      const deadline = Date.now() + 30_000;
      while (completed.some((n) => n === 0) && other.length === 0 && Date.now() < deadline) await sleep(20);
      expect(other).toEqual([]);
      expect(completed.every((n) => n === 1)).toBe(true);
      const status = worker.pipeline('ordered').status();
      console.log(
        `${total} jobs, budget ${status.budget}: ${audit.reserves} reserves, ${audit.behindSettle} sent while a settle was unanswered; ` +
          `at most ${audit.maxHeld} held or asked when a reserve was sent; max in flight ${status.maxInFlight}`,
      );
      return { audit, budget: status.budget, maxInFlight: status.maxInFlight };
    } finally {
      await worker?.close({ timeoutMs: 5000 });
      await fx.cleanup?.();
    }
  }

  it('never holds more than the budget in Redis when a reserve is sent (3,000 jobs, budget 40)', async () => {
    const { audit, budget, maxInFlight } = await run(3000, 20, 20);
    expect(budget).toBe(40);
    expect(audit.violations).toEqual([]);
    expect(audit.maxHeld).toBeLessThanOrEqual(40);
    expect(maxInFlight).toBeLessThanOrEqual(40);
  }, 60_000);

  it('sends the next reserve right behind each settle, before its answer (budget 1)', async () => {
    // One job at a time: the only demand there is comes back from the settle of the last job, so a
    // reserve sent before that settle's answer is one the early demand sent.
    const total = 200;
    const { audit, budget } = await run(total, 1, 0);
    expect(budget).toBe(1);
    expect(audit.violations).toEqual([]);
    // Every job but the last is followed by a reserve sent while its settle travels.
    expect(audit.behindSettle).toBeGreaterThanOrEqual(total - 1);
  }, 60_000);
});

import { Harness } from '../support/harness';
import { Ledgers } from '../support/ledger';
import { describeExit, type ProgramProcess } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';

export interface LoadParams {
  readonly jobs: number;
  readonly workers: number;
  readonly concurrency: number;
  /** The RSS no worker may pass, in MiB. */
  readonly rssBoundMiB: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

const MiB = 1024 * 1024;

/**
 * A large backlog drained by several worker processes: every job completes once, and each worker's
 * memory (RSS, sampled every 500 ms inside the worker) stays bounded: demand caps what a worker holds
 * at its in-flight budget whatever the backlog, so its RSS must not grow with the number of jobs.
 */
export function loadScenario(p: LoadParams): void {
  it(
    `${p.jobs.toLocaleString('en-US')} jobs drained by ${String(p.workers)} processes: all complete, worker RSS stays under ${String(p.rssBoundMiB)} MiB`,
    async () => {
      const h = await Harness.start({ label: 'load' });
      try {
        const queue = 'load';
        await h.keepAllRecords(queue);
        const options = { concurrency: p.concurrency, leaseMs: 30_000, ledgerMode: 'buffered' as const };
        const workers: ProgramProcess[] = [];
        for (let i = 0; i < p.workers; i++)
          workers.push(await h.startWorker(`w${String(i)}`, queue, options));
        const started = Date.now();
        const ids = await h.enqueue(queue, p.jobs);
        const enqueuedMs = Date.now() - started;
        const stats = await h.waitForQuiet(queue, p.jobs, p.timeoutMs * 0.7);
        const drainedMs = Date.now() - started;
        const memory = await h.admin.info('memory');
        const redisPeak = Number(/used_memory_peak:(\d+)/.exec(memory)?.[1] ?? 0);
        const exits = await Promise.all(workers.map((w) => w.terminate(30_000)));
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);

        const peaks = workers.map((w) => w.peakRss);
        // RSS over the run: the largest sample of the first and of the last quarter of it, per worker.
        const quarter = (w: (typeof workers)[number], first: boolean): number => {
          const cut = first ? started + drainedMs / 4 : started + (drainedMs * 3) / 4;
          const samples = w.samples.filter(
            (s) => (first ? s.at <= cut : s.at >= cut) && s.at <= started + drainedMs,
          );
          return samples.reduce((max, s) => Math.max(max, s.rss), 0);
        };
        const mib = (bytes: number): string => (bytes / MiB).toFixed(0);
        const perProcess = ledgers.processes.map((l) => l.entries.filter((e) => e.tag === 'A').length);
        report(
          resultOf('load', r, [
            `${String(p.workers)} workers × concurrency ${String(p.concurrency)}; added in ${(enqueuedMs / 1000).toFixed(1)} s (${String(Math.round(p.jobs / (enqueuedMs / 1000)))}/s) while draining; all done in ${(drainedMs / 1000).toFixed(1)} s (${String(Math.round(p.jobs / (drainedMs / 1000)))} jobs/s); completions per worker ${perProcess.join(', ')}`,
            `peak worker RSS ${peaks.map((b) => `${mib(b)} MiB`).join(', ')} (bound ${String(p.rssBoundMiB)} MiB); first-quarter vs last-quarter peak ${workers.map((w) => `${mib(quarter(w, true))}→${mib(quarter(w, false))}`).join(', ')} MiB; Redis used_memory_peak ${mib(redisPeak)} MiB with every record kept`,
          ]),
          { record: p.record },
        );

        expect(exits.map(describeExit)).toEqual(workers.map(() => 'code 0'));
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(r.dead).toBe(0);
        expect(r.duplicated).toBe(0);
        expect(r.completedWithoutExecution).toEqual([]);
        expect(stats.totals.completed).toBe(p.jobs);
        for (const peak of peaks) {
          expect(peak).toBeGreaterThan(0);
          expect(peak).toBeLessThan(p.rssBoundMiB * MiB);
        }
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

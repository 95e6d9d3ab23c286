import type { ResourceSample } from '../../src/protocol';
import { Harness, sleep, waitFor } from '../support/harness';
import { Ledgers } from '../support/ledger';
import { describeExit, type ProgramProcess } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';

export interface StalledRedisParams {
  readonly jobs: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly workMs: number;
  readonly leaseMs: number;
  /** How long Redis is stopped (SIGSTOP); longer than the lease. */
  readonly stallMs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

/**
 * Redis stopped with SIGSTOP for longer than the lease: its sockets stay open and nothing answers.
 * The workers must neither crash nor spin: each one's CPU time during the stall stays small and the
 * commands it sends stay bounded (every loop of a worker waits for its previous call; only the settings
 * polls tick on a timer, so a few commands a second pile up on the stopped server). After SIGCONT the leases have expired on Redis' clock, jobs are recovered and
 * the ledger still holds: every job completes, and the jobs run twice are at most those in flight.
 *
 * Commands are counted by each worker on its store's main connection; CPU time is the worker's own
 * `process.cpuUsage()`; both are read over IPC, which does not depend on Redis.
 */
export function stalledRedisScenario(p: StalledRedisParams): void {
  it(
    `Redis stopped for ${String(p.stallMs)} ms (lease ${String(p.leaseMs)} ms): workers neither crash nor spin, every job completes after SIGCONT`,
    async () => {
      const h = await Harness.start({ label: 'stall' });
      try {
        const queue = 'stall';
        await h.keepAllRecords(queue);
        const ids = await h.enqueue(queue, p.jobs);
        const options = { concurrency: p.concurrency, leaseMs: p.leaseMs, workMs: p.workMs };
        const workers: ProgramProcess[] = [];
        for (let i = 0; i < p.workers; i++)
          workers.push(await h.startWorker(`w${String(i)}`, queue, options));
        await waitFor(async () => (await h.store.stats(queue)).totals.completed >= p.jobs / 5, 30_000, 20);

        const before = await Promise.all(workers.map((w) => w.probe()));
        h.redis.pause();
        const pausedAt = Date.now();
        let during: ResourceSample[];
        try {
          await sleep(p.stallMs);
          during = await Promise.all(workers.map((w) => w.probe()));
        } finally {
          h.redis.resume();
        }
        const stalledMs = Date.now() - pausedAt;
        const stats = await h.waitForQuiet(queue, p.jobs, p.timeoutMs / 2);
        const recoveredMs = Date.now() - pausedAt - stalledMs;
        const alive = workers.map((w) => w.alive);
        const exits = await Promise.all(workers.map((w) => w.terminate(10_000)));
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);

        const cpuMs = during.map((s, i) => Math.round(s.cpuMs - before[i]!.cpuMs));
        const commands = during.map((s, i) => s.commands - before[i]!.commands);
        const byName = new Map<string, number>();
        during.forEach((s, i) => {
          for (const [name, n] of Object.entries(s.commandsByName)) {
            byName.set(name, (byName.get(name) ?? 0) + n - (before[i]!.commandsByName[name] ?? 0));
          }
        });
        const commandMix = [...byName]
          .filter(([, n]) => n > 0)
          .map(([name, n]) => `${name} ${String(n)}`)
          .join(', ');
        const stallSeconds = Math.ceil(stalledMs / 1000);
        // A spin sends thousands; the loops of a worker each wait for their previous call, except the
        // settings polls (one a second per subscription of `store.settings`), so the count grows slowly.
        const commandBound = 10 + 5 * stallSeconds;
        const cpuBound = Math.max(150, 0.05 * stalledMs);
        const inFlight = p.workers * p.concurrency;
        report(
          resultOf('stalled-redis', r, [
            `Redis stopped ${String(stalledMs)} ms with ${String(p.workers)} workers × concurrency ${String(p.concurrency)}, lease ${String(p.leaseMs)} ms`,
            `worker CPU during the stall: ${cpuMs.map((c) => `${String(c)} ms`).join(', ')} (bound ${String(Math.round(cpuBound))} ms); commands sent during the stall: ${commands.join(', ')} (bound ${String(commandBound)}; all workers: ${commandMix})`,
            `queue finished ${(recoveredMs / 1000).toFixed(1)} s after SIGCONT; lease-expired attempts ${String(stats.totals.failed)}; jobs run twice ${String(r.executedTwice)} (≤ ${String(inFlight)} in flight)`,
          ]),
          { record: p.record },
        );

        expect(alive).toEqual(workers.map(() => true));
        expect(exits.map(describeExit)).toEqual(workers.map(() => 'code 0'));
        for (const c of cpuMs) expect(c).toBeLessThanOrEqual(cpuBound);
        for (const n of commands) expect(n).toBeLessThanOrEqual(commandBound);
        expect(r.lostJobs).toEqual([]);
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(r.completedWithoutExecution).toEqual([]);
        expect(r.acknowledgedButNotCompleted).toEqual([]);
        expect(r.duplicated).toBeLessThanOrEqual(inFlight);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

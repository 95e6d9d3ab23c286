import { Harness, sleep } from '../support/harness';
import { Ledgers, unacknowledgedStarts } from '../support/ledger';
import type { ProgramProcess } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';

export interface WorkerCrashParams {
  readonly jobs: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly kills: number;
  /** Handler time per job: sets how long the run lasts, so every kill lands mid-run. */
  readonly workMs: number;
  readonly leaseMs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
  /** On a 3-master Redis Cluster of its own instead of one server. */
  readonly cluster?: boolean;
}

/**
 * Worker processes killed with SIGKILL one after another (and restarted at once) while they drain a
 * queue: every job ends completed, and the jobs run twice are bounded by what the killed processes held.
 *
 * A worker holds at most its in-flight budget (concurrency × batch size + prefetch; here
 * `concurrency`) of jobs reserved and not settled in Redis, so each kill leaves at most `concurrency`
 * leases to expire and jobs to run again: the bound is `concurrency × kills`, checked on the leases
 * Redis recovered (each counts a failed attempt; no handler here fails). The ledgers also give the
 * exact number the victims had started and not seen acknowledged, which must bound the duplicates
 * too; it can exceed the budget by the jobs of one settle sent and not yet answered at the kill
 * (`Store.settlesInOrder`: the demand comes back when a settle is sent, and Redis applies it before
 * the reserve behind it), so it is bounded by twice the budget per kill.
 */
export function workerCrashScenario(p: WorkerCrashParams): void {
  it(
    `${p.cluster ? 'on a 3-master Redis Cluster: ' : ''}${String(p.jobs)} jobs, ${String(p.workers)} workers, one SIGKILLed at each ${String(Math.round(100 / (p.kills + 1)))}% of the drain and restarted, ${String(p.kills)} times: nothing lost, duplicates ≤ concurrency × kills`,
    async () => {
      const h = await Harness.start(
        p.cluster ? { label: 'crash-cluster', cluster: true } : { label: 'crash' },
      );
      try {
        const queue = 'crashes';
        await h.keepAllRecords(queue);
        const options = { concurrency: p.concurrency, leaseMs: p.leaseMs, workMs: p.workMs };
        // Each slot's worker, or its replacement while that one starts.
        const slots: Promise<ProgramProcess>[] = [];
        for (let i = 0; i < p.workers; i++) {
          slots.push(Promise.resolve(await h.startWorker(`w${String(i)}`, queue, options)));
        }
        const ids = await h.enqueue(queue, p.jobs);
        const started = Date.now();

        const victims: ProgramProcess[] = [];
        const remainingAtKill: number[] = [];
        for (let k = 0; k < p.kills; k++) {
          // Kill k of n once (k + 1) / (n + 1) of the jobs are done: every kill lands while work
          // remains, however fast or slow the machine drains the queue (a fixed interval did not,
          // beside a busy loop).
          const target = Math.floor((p.jobs * (p.kills - k)) / (p.kills + 1));
          for (;;) {
            const s = await h.store.stats(queue);
            if (s.counts.ready + s.counts.running + s.counts.scheduled <= target) break;
            await sleep(20);
          }
          const slot = k % p.workers;
          const victim = await slots[slot]!;
          const stats = await h.store.stats(queue);
          remainingAtKill.push(stats.counts.ready + stats.counts.running + stats.counts.scheduled);
          await victim.kill();
          victims.push(victim);
          // The replacement starts while the next kill waits for its point of the drain: awaited
          // here, a start beside a busy loop once took longer than the rest of the drain (the other
          // workers finished it), and the next kill found nothing left to interrupt.
          const replacement = h.startWorker(`w${String(slot)}`, queue, options);
          replacement.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled meanwhile
          slots[slot] = replacement;
        }
        const lastKill = Date.now();
        await Promise.all(slots);

        const stats = await h.waitForQuiet(queue, p.jobs, p.timeoutMs / 2);
        const drainedAt = Date.now();
        await h.stopPrograms();
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);

        const inFlightAtKills = victims.map((v) => unacknowledgedStarts(ledgers.of(v.pid)!).length);
        const heldByVictims = inFlightAtKills.reduce((a, b) => a + b, 0);
        const bound = p.concurrency * p.kills;
        const recovered = stats.totals.failed; // leases that expired: jobs the victims held unsettled
        report(
          resultOf(p.cluster ? 'worker-crashes-cluster' : 'worker-crashes', r, [
            `${String(p.kills)} SIGKILLs, at each ${String(Math.round(100 / (p.kills + 1)))}% of the drain, over ${String(p.workers)} workers of concurrency ${String(p.concurrency)}, lease ${String(p.leaseMs)} ms`,
            `started and not acknowledged in the victims at the kills: ${inFlightAtKills.join('+')} = ${String(heldByVictims)}; leases Redis recovered ${String(recovered)} ≤ bound concurrency × kills = ${String(bound)}; duplicated ${String(r.duplicated)} ≤ ${String(Math.min(recovered, heldByVictims))}`,
            `jobs still queued at each kill: ${remainingAtKill.join(', ')}`,
            `run ${((drainedAt - started) / 1000).toFixed(1)} s, queue drained ${((drainedAt - lastKill) / 1000).toFixed(1)} s after the last kill`,
          ]),
          { record: p.record },
        );

        // Every kill landed while work remained, or the scenario proved nothing.
        expect(remainingAtKill.every((n) => n > 0)).toBe(true);
        expect(r.lostJobs).toEqual([]);
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(r.dead).toBe(0);
        expect(r.completedWithoutExecution).toEqual([]);
        expect(r.acknowledgedButNotCompleted).toEqual([]);
        expect(r.duplicated).toBeLessThanOrEqual(heldByVictims);
        expect(r.duplicated).toBeLessThanOrEqual(recovered);
        expect(recovered).toBeLessThanOrEqual(bound);
        expect(heldByVictims).toBeLessThanOrEqual(2 * bound);
        // No live worker lost a lease: every re-run job was held by a victim.
        const victimStarted = new Set(victims.flatMap((v) => unacknowledgedStarts(ledgers.of(v.pid)!)));
        const rerun = [...r.executions].filter(([, n]) => n > 1).map(([id]) => id);
        expect(rerun.filter((id) => !victimStarted.has(id))).toEqual([]);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

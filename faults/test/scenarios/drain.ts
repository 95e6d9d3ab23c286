import { Harness, sleep } from '../support/harness';
import { Ledgers } from '../support/ledger';
import { describeExit } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';

export interface GracefulDrainParams {
  /** Worker processes started and SIGTERMed one after another while a steady worker keeps going. */
  readonly rounds: number;
  readonly jobs: number;
  readonly concurrency: number;
  readonly closeTimeoutMs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

interface RoundReport {
  readonly startsBefore: number;
  readonly startsAfter: readonly string[];
  readonly unsettled: readonly string[];
  readonly finishedAfterSignal: number;
  readonly exitMs: number;
  readonly exit: string;
  readonly closed: { readonly drained: boolean; readonly abandoned: number } | undefined;
}

/**
 * SIGTERM while a worker is busy: the jobs its handlers are running finish and settle, the process
 * exits within the drain budget, and no job runs twice. Jobs that start after the signal are counted
 * and reported (see {@link drainReserveInFlightScenario} for the deterministic check). Jobs take 1 ms
 * (every 200th 300 ms), so each signal finds handlers in the middle of their work and the source
 * busy reserving.
 */
export function gracefulDrainScenario(p: GracefulDrainParams): void {
  it(
    `SIGTERM ${String(p.rounds)} busy workers in turn: in-flight jobs finish and settle, each exits within ${String(p.closeTimeoutMs)} ms, nothing runs twice`,
    async () => {
      const h = await Harness.start({ label: 'drain' });
      try {
        const queue = 'drain';
        await h.keepAllRecords(queue);
        const ids = await h.enqueue(queue, p.jobs, (n) => ({ n, ms: n % 200 === 0 ? 300 : 1 }));
        const options = { concurrency: p.concurrency, leaseMs: 5000, closeTimeoutMs: p.closeTimeoutMs };
        const rounds: RoundReport[] = [];
        for (let i = 0; i < p.rounds; i++) {
          const victim = await h.startWorker(`victim${String(i)}`, queue, options);
          await sleep(300 + 50 * (i % 4));
          const signalledAt = victim.signal('SIGTERM');
          const exit = await victim.exited;
          const ledger = Ledgers.read(h.ledgerDir).of(victim.pid);
          if (!ledger) throw new Error(`no ledger for ${victim.name}`);
          const term = ledger.entries.find((e) => e.tag === 'T');
          const t = term?.at ?? signalledAt;
          const starts = ledger.entries.flatMap((e) => (e.tag === 'S' ? [e] : []));
          const acked = new Set(ledger.entries.flatMap((e) => (e.tag === 'A' ? [e.id] : [])));
          rounds.push({
            startsBefore: starts.filter((s) => s.at <= t).length,
            startsAfter: starts.filter((s) => s.at > t).map((s) => s.id),
            unsettled: starts.filter((s) => s.at <= t && !acked.has(s.id)).map((s) => s.id),
            finishedAfterSignal: ledger.entries.filter((e) => e.tag === 'E' && e.at > t).length,
            exitMs: exit.at - signalledAt,
            exit: describeExit(exit),
            closed: victim.closed,
          });
        }
        await h.startWorker('finisher', queue, { ...options, concurrency: 50 });
        await h.waitForQuiet(queue, p.jobs, p.timeoutMs / 2);
        await h.stopPrograms();
        const r = await reconcile(h.store, queue, ids, Ledgers.read(h.ledgerDir));
        const late = rounds.reduce((n, x) => n + x.startsAfter.length, 0);
        report(
          resultOf('graceful-drain', r, [
            `${String(p.rounds)} SIGTERMs (drain budget ${String(p.closeTimeoutMs)} ms): exits after ${rounds.map((x) => `${String(x.exitMs)} ms`).join(', ')}`,
            `handlers finishing after the signal: ${rounds.map((x) => x.finishedAfterSignal).join(', ')}; jobs started after the signal: ${rounds.map((x) => x.startsAfter.length).join(', ')} (total ${String(late)})`,
          ]),
          { record: p.record },
        );

        for (const round of rounds) {
          expect(round.exit).toBe('code 0');
          expect(round.closed).toEqual({ drained: true, abandoned: 0 });
          expect(round.exitMs).toBeLessThan(p.closeTimeoutMs);
          expect(round.unsettled).toEqual([]);
        }
        // The signals found work in progress, which then finished and settled.
        expect(rounds.some((x) => x.finishedAfterSignal > 0)).toBe(true);
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(r.acknowledgedButNotCompleted).toEqual([]);
        expect(r.duplicated).toBe(0);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

export interface DrainTimeoutParams {
  readonly slowJobs: number;
  readonly otherJobs: number;
  readonly closeTimeoutMs: number;
  readonly leaseMs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

/**
 * SIGTERM while the handlers need longer than the drain budget: at the budget their `AbortSignal`
 * fires (cause `shutdown`), the process exits, and another worker recovers the jobs when their
 * leases expire and completes them on a later attempt.
 */
export function drainTimeoutScenario(p: DrainTimeoutParams): void {
  it(
    `SIGTERM with handlers slower than the ${String(p.closeTimeoutMs)} ms drain budget: handlers aborted, process exits, jobs recovered by another worker`,
    async () => {
      const h = await Harness.start({ label: 'drain-timeout' });
      try {
        const queue = 'slow';
        await h.keepAllRecords(queue);
        const slowIds = await h.enqueue(queue, p.slowJobs);
        const slow = await h.startWorker('slow', queue, {
          concurrency: p.slowJobs,
          leaseMs: p.leaseMs,
          workMs: 60_000,
          closeTimeoutMs: p.closeTimeoutMs,
        });
        const starts = (): number =>
          (Ledgers.read(h.ledgerDir).of(slow.pid)?.entries ?? []).filter((e) => e.tag === 'S').length;
        await slow.until(() => starts() >= p.slowJobs, 10_000, `${String(p.slowJobs)} handler starts`);
        const otherIds = await h.enqueue(queue, p.otherJobs, (n) => ({ n: 1000 + n }));
        const fast = await h.startWorker('fast', queue, { concurrency: 4, leaseMs: p.leaseMs, workMs: 10 });

        const signalledAt = slow.signal('SIGTERM');
        const exit = await slow.exited;
        const ids = [...slowIds, ...otherIds];
        await h.waitForQuiet(queue, ids.length, p.timeoutMs / 2);
        await h.stopPrograms();
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);

        const slowLedger = ledgers.of(slow.pid)!.entries;
        const aborts = slowLedger.flatMap((e) => (e.tag === 'X' ? [e] : []));
        const reruns = ledgers
          .of(fast.pid)!
          .entries.flatMap((e) => (e.tag === 'S' && slowIds.includes(e.id) ? [e] : []));
        const exitMs = exit.at - signalledAt;
        const firstAbortMs = Math.min(...aborts.map((a) => a.at)) - signalledAt;
        report(
          resultOf('drain-timeout', r, [
            `drain budget ${String(p.closeTimeoutMs)} ms, lease ${String(p.leaseMs)} ms: handlers aborted ${String(firstAbortMs)} ms after SIGTERM (${aborts.map((a) => a.reason).join(', ')}), process exited after ${String(exitMs)} ms, close() reported ${JSON.stringify(slow.closed)}`,
            `the ${String(p.slowJobs)} aborted jobs re-ran on another worker at attempt ${reruns.map((s) => s.attempt).join(', ')} and completed; duplicated = the aborted executions`,
          ]),
          { record: p.record },
        );

        expect(describeExit(exit)).toBe('code 0');
        expect(slow.closed).toEqual({ drained: false, abandoned: p.slowJobs });
        expect(aborts.map((a) => a.reason)).toEqual(slowIds.map(() => 'shutdown'));
        expect(firstAbortMs).toBeGreaterThanOrEqual(p.closeTimeoutMs - 50);
        expect(exitMs).toBeLessThan(p.closeTimeoutMs + 1500);
        expect(new Set(reruns.map((s) => s.id))).toEqual(new Set(slowIds));
        expect(reruns.every((s) => s.attempt >= 2)).toBe(true);
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(ids.length);
        expect(r.duplicated).toBe(p.slowJobs);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

export interface DrainReserveInFlightParams {
  readonly jobs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

/**
 * The deterministic form of "no job starts after the signal": SIGTERM arrives while the worker's
 * reserve call is in flight. Redis is stopped (SIGSTOP) right after delayed jobs are added, so the
 * idle worker's next poll hangs; the worker is signalled; Redis resumes, the jobs are due by then and
 * the hung reserve leases them. A draining worker must not start them: it should hand them back
 * (another worker then runs them), not begin new work after it was told to stop.
 */
export function drainReserveInFlightScenario(p: DrainReserveInFlightParams): void {
  it(
    'SIGTERM while a reserve call is in flight: the jobs it brings back do not start after the signal',
    async () => {
      const h = await Harness.start({ label: 'drain-reserve' });
      try {
        const queue = 'late';
        await h.keepAllRecords(queue);
        const victim = await h.startWorker('victim', queue, {
          concurrency: p.jobs,
          leaseMs: 10_000,
          workMs: 1,
        });
        await sleep(2500); // idle: the source now polls at its slowest, once a second
        const delayMs = 1500;
        const ids = await h.enqueue(queue, p.jobs, (n) => ({ n }), { delayMs });
        h.redis.pause();
        let signalledAt;
        try {
          await sleep(delayMs + 300); // a poll (at most 1 s apart) has hung by now, and the jobs are due
          signalledAt = victim.signal('SIGTERM');
          await sleep(300);
        } finally {
          h.redis.resume();
        }
        const exit = await victim.exited;
        await h.startWorker('finisher', queue, { concurrency: p.jobs, leaseMs: 2000, workMs: 1 });
        await h.waitForQuiet(queue, ids.length, p.timeoutMs / 2);
        await h.stopPrograms();
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);
        const ledger = ledgers.of(victim.pid)!.entries;
        const t = ledger.find((e) => e.tag === 'T')?.at ?? signalledAt;
        const late = ledger.flatMap((e) => (e.tag === 'S' && e.at > t ? [e.id] : []));
        report(
          resultOf('graceful-drain', r, [
            `reserve in flight at SIGTERM: ${String(late.length)} of its ${String(p.jobs)} jobs started after the signal; victim ${describeExit(exit)}, close() ${JSON.stringify(victim.closed)}`,
          ]),
          { record: false, label: 'Drain with a reserve in flight' },
        );
        expect(r.lost).toBe(0);
        expect(r.completed).toBe(p.jobs);
        expect(describeExit(exit)).toBe('code 0');
        // No new job starts after the signal.
        expect(late).toEqual([]);
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

import { Harness, sleep, waitFor } from '../support/harness';
import { Ledgers } from '../support/ledger';
import { describeExit, type ProgramProcess } from '../support/programs';
import { reconcile } from '../support/reconcile';
import { report, resultOf } from '../support/results';

export interface RedisRestartParams {
  readonly appendfsync: 'always' | 'everysec';
  /** Jobs the test adds before the workers start. */
  readonly jobs: number;
  /** Jobs a producer process adds while Redis is killed and restarted (caller-chosen ids, retried until acknowledged). */
  readonly produced: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly workMs: number;
  readonly leaseMs: number;
  /** How long Redis stays down. */
  readonly downMs: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

/**
 * Redis killed with SIGKILL mid-run and restarted from its append-only file: the workers and the
 * producer reconnect and finish, every job ends completed (or dead), and — with `appendfsync always` —
 * every acknowledged write survives: each job whose completion a worker saw acknowledged is still
 * completed, each acknowledged add still exists.
 *
 * With `everysec` the same run measures what a crash of the Redis process loses (Redis writes the AOF
 * before it replies, so a process crash loses nothing acknowledged), and how many acknowledged writes
 * fell in the last second before the kill: the writes a crash of the machine (or power loss) could
 * lose under `everysec`, which fsyncs once a second.
 */
export function redisRestartScenario(p: RedisRestartParams): void {
  it(
    `appendfsync ${p.appendfsync}: Redis SIGKILLed mid-run and restarted ${String(p.downMs)} ms later — workers reconnect and finish, nothing acknowledged is lost`,
    async () => {
      const h = await Harness.start({
        label: `restart-${p.appendfsync}`,
        appendonly: true,
        appendfsync: p.appendfsync,
      });
      try {
        const queue = 'restart';
        await h.keepAllRecords(queue);
        const initial = await h.enqueue(queue, p.jobs);
        const options = { concurrency: p.concurrency, leaseMs: p.leaseMs, workMs: p.workMs };
        const workers: ProgramProcess[] = [];
        for (let i = 0; i < p.workers; i++)
          workers.push(await h.startWorker(`w${String(i)}`, queue, options));
        const producer = await h.startProducer('producer', queue, {
          idPrefix: 'p',
          total: p.produced,
          batch: 20,
          everyMs: 10,
        });
        const startedAt = Date.now();
        // Kill once the workers and the producer are both well under way.
        await waitFor(
          async () =>
            (await h.store.stats(queue)).totals.completed >= p.jobs / 4 &&
            Ledgers.read(h.ledgerDir).all('Q').length >= p.produced / 5,
          30_000,
          20,
        );
        const killedAt = Date.now();
        await h.redis.kill('SIGKILL');
        await sleep(p.downMs);
        await h.redis.restart();
        const restartedAt = Date.now();

        await producer.until(() => producer.done, p.timeoutMs / 3, 'the producer to finish');
        const ledgersBefore = Ledgers.read(h.ledgerDir);
        const added = ledgersBefore.all('Q');
        const ids = [...initial, ...added.map((q) => q.id)];
        await h.waitForQuiet(queue, ids.length, p.timeoutMs / 3);
        const alive = workers.map((w) => w.alive);
        const exits = await Promise.all(workers.map((w) => w.terminate(10_000)));
        const ledgers = Ledgers.read(h.ledgerDir);
        const r = await reconcile(h.store, queue, ids, ledgers);

        // Writes acknowledged before the kill, and those in its last second.
        const acks = ledgers.all('A').filter((a) => a.outcome === 'completed');
        const ackedBefore = acks.filter((a) => a.at < killedAt);
        const addsBefore = added.filter((q) => q.at < killedAt);
        const lastSecond =
          ackedBefore.filter((a) => a.at >= killedAt - 1000).length +
          addsBefore.filter((q) => q.at >= killedAt - 1000).length;
        const completedLater = new Map<string, number>();
        for (const s of ledgers.all('S')) if (s.at > killedAt) completedLater.set(s.id, s.at);
        // A completion acknowledged before the kill that Redis forgot shows up as a later re-run.
        const rolledBackCompletions = ackedBefore.filter((a) => completedLater.has(a.id));
        const lostAdds = addsBefore.filter((q) => !r.states.completed.has(q.id) && !r.states.dead.has(q.id));
        const beforeKillMs = killedAt - startedAt;
        const firstAck = Math.min(...ackedBefore.map((x) => x.at));
        const rate = Math.round((ackedBefore.length / Math.max(1, killedAt - firstAck)) * 1000);
        const warnings = [...ledgers.logCounts()]
          .sort((x, y) => y[1] - x[1])
          .map(([m, n]) => `${m} ×${String(n)}`)
          .join('; ');
        report(
          resultOf(p.appendfsync === 'always' ? 'redis-restart-always' : 'redis-restart-everysec', r, [
            `${String(p.jobs)} jobs added before and ${String(added.length)} by a producer during the run; Redis down ${String(restartedAt - killedAt)} ms (SIGKILL at ${String(beforeKillMs)} ms, ${String(ackedBefore.length)} completions acknowledged by then, ~${String(rate)}/s)`,
            `acknowledged before the kill: ${String(ackedBefore.length)} completions and ${String(addsBefore.length)} adds, of which lost after the restart: ${String(rolledBackCompletions.length)} and ${String(lostAdds.length)}; acknowledged in the last second before the kill: ${String(lastSecond)} writes`,
            `workers alive throughout: ${String(alive.every(Boolean))}; jobs run twice: ${String(r.executedTwice)} (${String(p.workers)} workers × concurrency ${String(p.concurrency)} = ${String(p.workers * p.concurrency)} in flight at most)`,
            `what the workers logged meanwhile: ${warnings || 'nothing'}`,
          ]),
          { record: p.record },
        );

        expect(added).toHaveLength(p.produced);
        expect(alive).toEqual(workers.map(() => true));
        expect(exits.map(describeExit)).toEqual(workers.map(() => 'code 0'));
        expect(r.completedWithoutExecution).toEqual([]);
        if (p.appendfsync === 'always') {
          expect(r.lostJobs).toEqual([]);
          expect(r.lost).toBe(0);
          expect(r.completed).toBe(ids.length);
          // Nothing acknowledged is lost: every acknowledged completion is still a completion.
          expect(r.acknowledgedButNotCompleted).toEqual([]);
          expect(rolledBackCompletions).toEqual([]);
          expect(lostAdds).toEqual([]);
          expect(r.duplicated).toBeLessThanOrEqual(p.workers * p.concurrency);
        } else {
          // Whatever everysec lost was acknowledged within the fsync window before the crash.
          expect(r.lostJobs.map((j) => j.id).sort()).toEqual(lostAdds.map((q) => q.id).sort());
          for (const a of rolledBackCompletions) expect(killedAt - a.at).toBeLessThanOrEqual(2000);
          for (const q of lostAdds) expect(killedAt - q.at).toBeLessThanOrEqual(2000);
        }
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

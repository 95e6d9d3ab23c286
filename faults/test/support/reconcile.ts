import type { RedisStore } from '@sluice/redis';
import type { Ledgers } from './ledger';

/** Where every job of a run ended, read back from the store. */
export interface FinalStates {
  readonly completed: ReadonlySet<string>;
  /** Dead-lettered jobs with their reason (reasons are read for at most 5,000 jobs). */
  readonly dead: ReadonlyMap<string, string | undefined>;
  /** Every other job: its state (`ready`, `running`, …) or `missing` when the store has no record. */
  readonly other: ReadonlyMap<string, string>;
}

async function readList(store: RedisStore, key: string): Promise<string[]> {
  const out: string[] = [];
  const length = await store.client.llen(key);
  for (let start = 0; start < length; start += 100_000) {
    out.push(...(await store.client.lrange(key, start, Math.min(length, start + 100_000) - 1)));
  }
  return out;
}

/**
 * Reads the final state of every job in `ids`: the queue's finished list (`c<id>` entries, which the
 * test keeps whole with `keepAllRecords`) and dead-letter list, the two structures the README's key
 * layout documents; `getJob` for the rest and for the reasons of dead jobs.
 */
export async function finalStates(
  store: RedisStore,
  queue: string,
  ids: Iterable<string>,
): Promise<FinalStates> {
  const keys = store.keys.queue(queue);
  const completedInStore = new Set<string>();
  for (const entry of await readList(store, keys.finished)) {
    if (entry.startsWith('c')) completedInStore.add(entry.slice(1));
  }
  const deadInStore = new Set(await readList(store, keys.dead));
  const completed = new Set<string>();
  const dead = new Map<string, string | undefined>();
  const other = new Map<string, string>();
  const unknown: string[] = [];
  for (const id of ids) {
    if (completedInStore.has(id)) completed.add(id);
    else if (deadInStore.has(id)) dead.set(id, undefined);
    else unknown.push(id);
  }
  const withReasons = dead.size <= 5000 ? [...dead.keys()] : [];
  for (const id of [...unknown, ...withReasons]) {
    const record = await store.getJob(queue, id);
    if (dead.has(id)) dead.set(id, record?.reason);
    else if (record?.state === 'completed') completed.add(id);
    else if (record?.state === 'dead') dead.set(id, record.reason);
    else other.set(id, record?.state ?? 'missing');
  }
  return { completed, dead, other };
}

/** The figures every scenario reports, and the checks behind "nothing is lost". */
export interface Reconciliation {
  readonly enqueued: number;
  readonly completed: number;
  readonly dead: number;
  /** Enqueued jobs that are neither completed nor dead-lettered. */
  readonly lost: number;
  /** Extra handler executions of completed jobs: Σ (executions − 1). */
  readonly duplicated: number;
  /** Jobs executed more than once, whatever their end. */
  readonly executedTwice: number;
  readonly lostJobs: readonly { readonly id: string; readonly state: string }[];
  /** Completed in the store though no handler ever ran them: a record written without the work. */
  readonly completedWithoutExecution: readonly string[];
  /** Acknowledged as completed to a worker, but not completed in the store now. */
  readonly acknowledgedButNotCompleted: readonly string[];
  readonly executions: ReadonlyMap<string, number>;
  readonly states: FinalStates;
}

/**
 * Reconciles what the store says with what the processes recorded. `expectExecution` lists the jobs
 * that must have reached a handler to complete (all by default; malformed records never do).
 */
export async function reconcile(
  store: RedisStore,
  queue: string,
  ids: readonly string[],
  ledgers: Ledgers,
): Promise<Reconciliation> {
  const states = await finalStates(store, queue, ids);
  const executions = ledgers.executions();
  let duplicated = 0;
  let executedTwice = 0;
  const completedWithoutExecution: string[] = [];
  for (const id of ids) {
    const n = executions.get(id) ?? 0;
    if (n > 1) executedTwice++;
    if (states.completed.has(id)) {
      if (n === 0) completedWithoutExecution.push(id);
      duplicated += Math.max(0, n - 1);
    }
  }
  const acknowledgedButNotCompleted: string[] = [];
  for (const [id, ack] of ledgers.acknowledged()) {
    if (ack.outcome === 'completed' && !states.completed.has(id)) acknowledgedButNotCompleted.push(id);
  }
  const lostJobs = [...states.other].map(([id, state]) => ({ id, state }));
  return {
    enqueued: ids.length,
    completed: states.completed.size,
    dead: states.dead.size,
    lost: lostJobs.length,
    duplicated,
    executedTwice,
    lostJobs,
    completedWithoutExecution,
    acknowledgedButNotCompleted,
    executions,
    states,
  };
}

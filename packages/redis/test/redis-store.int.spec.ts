import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import {
  definePipeline,
  ErrorCode,
  JobFailedError,
  JobState,
  perJob,
  Queue,
  silentLogger,
  Worker,
  type Handoff,
  type ReservedJob,
  type Settlement,
  type SettleResult,
} from '@sluice/core';
import { RedisScriptError, RedisStore, ScriptErrorCode } from '@sluice/redis';
import { Reply, SCRIPT_DEFAULTS } from '../src/codec';
import { execScript, scriptKeys, queueKeyResolver, scripts } from '../src/scripts';
import { sleep, storeFixture, useRedisWithAdmin } from './helpers';

const base = (job: ReservedJob) => ({ queue: job.queue, id: job.id, token: job.lease.token });
const completed = (job: ReservedJob, result: unknown): Settlement => ({
  ...base(job),
  kind: 'completed',
  result,
  durationMs: 1,
});

/** Each settlement's result in order: `applied` or why not. */
const codesOf = (results: readonly SettleResult[]): string =>
  results.map((r) => (r.applied ? 'applied' : r.reason)).join(' ');

/** Calls the settle script of queue `q` with `count` settlements given as its raw entries. */
const settleScript = (store: RedisStore, count: number, ...entries: (string | number)[]) => {
  const keys = store.keys.queue('q');
  const script = scripts().settle;
  return execScript(
    store.client,
    script,
    scriptKeys(script, queueKeyResolver(keys)),
    [
      ...[keys.jobPrefix, keys.readyPrefix, keys.historyPrefix, 10, 60_000],
      ...[SCRIPT_DEFAULTS.defaultRetention, SCRIPT_DEFAULTS.maxErrors, SCRIPT_DEFAULTS.defaultDeadRetention],
      ...[keys.groupPrefix, keys.wakeChannel, count, ...entries],
    ],
    { queue: 'q' },
  );
};

describe('RedisStore (one node): beyond the contract', () => {
  const redis = useRedisWithAdmin();
  let fx: Awaited<ReturnType<typeof storeFixture>>;
  let store: RedisStore;
  const others: RedisStore[] = [];
  /** Another process's view of the same keys. */
  const peer = async (): Promise<RedisStore> => {
    const s = await RedisStore.connect({ url: redis.url, prefix: fx.prefix });
    others.push(s);
    return s;
  };
  beforeEach(async () => {
    fx = await storeFixture(redis.admin, { url: redis.url }, 'store');
    store = fx.store;
  });
  afterEach(async () => {
    await Promise.all(others.splice(0).map((s) => s.close()));
    await fx.cleanup!();
  });

  it('refuses the late settle of a worker whose lease was taken over, and accepts the new holder', async () => {
    const workerA = store;
    const workerB = await peer();
    await firstValueFrom(workerA.enqueue([{ queue: 'q', data: 'x' }]));
    const [held] = (await firstValueFrom(workerA.reserve('q', 1, { leaseMs: 150 }))).jobs;
    await sleep(200);
    // Another node recovers the expired lease and leases the job again.
    expect((await firstValueFrom(workerB.recoverExpired('q'))).recovered).toEqual([held!.id]);
    const [taken] = (await firstValueFrom(workerB.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    expect(taken).toMatchObject({ id: held!.id, attempt: 2 });

    const heartbeat = await firstValueFrom(workerA.extendLeases('q', [base(held!)], 10_000));
    expect(heartbeat).toEqual({ extended: [], lost: [held!.id] });
    const [late] = await firstValueFrom(workerA.settle([completed(held!, 'from A')]));
    expect(late).toEqual({ id: held!.id, applied: false, reason: 'lease-lost' });
    const [fresh] = await firstValueFrom(workerB.settle([completed(taken!, 'from B')]));
    expect(fresh).toMatchObject({ id: held!.id, applied: true });
    // A second settle by the same holder is refused too: the lease ended with the first.
    const [again] = await firstValueFrom(workerB.settle([completed(taken!, 'twice')]));
    expect(again).toMatchObject({ applied: false, reason: 'lease-lost' });

    const record = await workerA.getJob('q', held!.id);
    expect(record).toMatchObject({ state: JobState.Completed, result: 'from B', attempt: 2 });
    expect(record?.errors).toEqual([expect.objectContaining({ name: 'LeaseExpiredError', attempt: 1 })]);
    expect((await workerA.stats('q')).totals).toMatchObject({ completed: 1, failed: 1 });
  });

  it('settles from what its reserve read of each record, the same as a peer that reads the records', async () => {
    // Two rounds: settled by the store that reserved (which kept each record's attempts, priority,
    // retention and group) and by a peer that did not (its settle reads the records).
    const round = async (settler: RedisStore, queue: string) => {
      await firstValueFrom(
        store.enqueue([
          { queue, data: 'kept', priority: 3, maxAttempts: 5 },
          { queue, data: 'gone', group: 'g|1', retention: { keep: 'none' } },
          { queue, data: 'next', group: 'g|1' },
        ]),
      );
      const first = await firstValueFrom(
        store.reserve(queue, 3, { leaseMs: 10_000, groups: { concurrency: 1 } }),
      );
      expect(first.jobs.map((j) => j.data)).toEqual(['gone', 'kept']);
      const [gone, kept] = first.jobs;
      const error = { name: 'E', message: 'again' };
      const results = await firstValueFrom(
        settler.settle([{ ...base(kept!), kind: 'retrying', delayMs: 0, error }, completed(gone!, 'done')]),
      );
      expect(results.map((r) => r.applied)).toEqual([true, true]);
      // Retention none deleted the grouped job and its group slot is free: its next job comes.
      expect(await store.getJob(queue, gone!.id)).toBeUndefined();
      const second = await firstValueFrom(
        store.reserve(queue, 3, { leaseMs: 10_000, groups: { concurrency: 1 } }),
      );
      expect(second.jobs.map((j) => [j.data, j.attempt, j.priority])).toEqual([
        ['next', 1, 0],
        ['kept', 2, 3],
      ]);
      await firstValueFrom(store.settle(second.jobs.map((j) => completed(j, j.data))));
      const record = await store.getJob(queue, kept!.id);
      expect(record).toMatchObject({ state: JobState.Completed, attempt: 2, priority: 3 });
      expect(record?.errors).toEqual([expect.objectContaining({ message: 'again', attempt: 1 })]);
      return (await store.stats(queue)).totals;
    };
    const hints = (s: RedisStore) => (s as unknown as { settleHints: { size: number } }).settleHints.size;
    const own = await round(store, 'q');
    // Nothing is left behind once the jobs are settled.
    expect(hints(store)).toBe(0);
    const peers = await round(await peer(), 'p');
    expect(own).toEqual(peers);
    expect(own).toMatchObject({ completed: 3, failed: 1 });
    // Jobs another process settled stay until the bound forgets them; a lease lost at a heartbeat
    // is forgotten at once.
    expect(hints(store)).toBe(2);
    await firstValueFrom(store.enqueue([{ queue: 'q', data: 'lost' }]));
    const [lost] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 50 }))).jobs;
    expect(hints(store)).toBe(3);
    await sleep(100);
    await firstValueFrom((await peer()).recoverExpired('q'));
    expect((await firstValueFrom(store.extendLeases('q', [base(lost!)], 10_000))).lost).toEqual([lost!.id]);
    expect(hints(store)).toBe(2);
  });

  it('wakes sleeping workers when a settle makes a job ready, and not for completions alone', async () => {
    await firstValueFrom(store.enqueue([{ queue: 'q', data: 'x' }]));
    const [job] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    const wakes: unknown[] = [];
    const woken = (await peer()).wakeups('q').subscribe((w) => wakes.push(w));
    await sleep(50); // the subscription is made over the network
    const error = { name: 'E', message: 'again' };
    await firstValueFrom(store.settle([{ ...base(job!), kind: 'retrying', delayMs: 0, error }]));
    for (let i = 0; i < 250 && wakes.length === 0; i++) await sleep(20);
    expect(wakes).toHaveLength(1);
    const [again] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(again!, 'done')]));
    // A settle of completions makes nothing ready: no wake-up.
    await sleep(200);
    woken.unsubscribe();
    expect(wakes).toHaveLength(1);
    expect(await store.getJob('q', job!.id)).toMatchObject({ state: JobState.Completed, attempt: 2 });
  });

  it('dead-letters malformed records at reserve, reports them, and still delivers the good jobs', async () => {
    const [good1] = await firstValueFrom(store.enqueue([{ queue: 'q', data: { ok: 1 } }]));
    const keys = store.keys.queue('q');
    const now = Date.now();
    // Written around the store: unparseable JSON, a record without data, and an id without a record.
    await redis.admin.hset(keys.jobPrefix + 'bad-json', 'd', '{"to": oops', 'c', now);
    await redis.admin.hset(keys.jobPrefix + 'no-data', 'c', now);
    await redis.admin.rpush(keys.readyPrefix + '0', 'bad-json', 'no-data', 'ghost');
    const [good2] = await firstValueFrom(store.enqueue([{ queue: 'q', data: { ok: 2 } }]));

    const first = await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }));
    expect(first.jobs.map((j) => j.id)).toEqual([good1!.id]);
    expect(first.rejected).toEqual([
      { id: 'bad-json', reason: expect.stringMatching(/not JSON/) as string },
      { id: 'no-data', reason: expect.stringMatching(/no data/) as string },
    ]);
    const second = await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }));
    expect(second.jobs.map((j) => j.id)).toEqual([good2!.id]);
    expect(second.rejected).toEqual([
      { id: 'ghost', reason: expect.stringMatching(/record missing/) as string },
    ]);
    const dead = await store.listJobs('q', JobState.Dead);
    expect(dead.map((j) => j.id).sort()).toEqual(['bad-json', 'no-data']);
    expect(await store.getJob('q', 'bad-json')).toMatchObject({ state: 'dead', data: '{"to": oops' });
    const stats = await store.stats('q');
    expect(stats.counts).toMatchObject({ ready: 0, running: 2, dead: 2 });
    expect(stats.totals.dead).toBe(2);
  });

  it("gives a malformed job's group slot back when it is dead-lettered at reserve", async () => {
    const [bad, good] = await firstValueFrom(
      store.enqueue([
        { queue: 'q', data: 'first', group: 'g' },
        { queue: 'q', data: 'second', group: 'g' },
      ]),
    );
    // Its payload broken around the store: the reserve leases it, the worker cannot decode it.
    await redis.admin.hset(store.keys.job('q', bad!.id), 'd', '{"to": oops');
    const one = { leaseMs: 10_000, groups: { concurrency: 1 } };
    const first = await firstValueFrom(store.reserve('q', 5, one));
    expect(first.rejected.map((r) => r.id)).toEqual([bad!.id]);
    expect(first.jobs).toEqual([]);
    const second = await firstValueFrom(store.reserve('q', 5, one));
    expect(second.jobs.map((j) => j.id)).toEqual([good!.id]);
    expect(await store.listGroups('q')).toEqual([{ group: 'g', ready: 0, active: 1, paused: false }]);
  });

  it('publishes outcomes to other processes: events and Queue.waitForResult', async () => {
    const producer = await peer();
    const queue = new Queue<{ n: number }>(producer, 'q');
    const seen = firstValueFrom(producer.events('q').pipe(take(2), toArray(), timeout(3000)));
    const { id } = await queue.add({ n: 7 });
    const waiting = queue.waitForResult<number>(id, { timeoutMs: 3000 });
    const [job] = (await firstValueFrom(store.reserve<{ n: number }>('q', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(
      store.settle([
        { ...base(job!), kind: 'retrying', delayMs: 0, error: { name: 'E', message: 'first try' } },
      ]),
    );
    const [again] = (await firstValueFrom(store.reserve<{ n: number }>('q', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(again!, again!.data.n * 6)]));
    await expect(waiting).resolves.toBe(42);
    const events = await seen;
    expect(events.map((e) => e.kind)).toEqual(['retrying', 'completed']);
    expect(events[0]).toMatchObject({ id, error: { message: 'first try' } });
    expect(events[1]).toMatchObject({ id, result: 42 });
    expect(events[1]!.at).toBeGreaterThanOrEqual(events[0]!.at);
  });

  it('rejects Queue.waitForResult of a job that dies with a JobFailedError (ERR_SLUICE_JOB_FAILED)', async () => {
    const queue = new Queue<number>(await peer(), 'q');
    const { id } = await queue.add(1);
    const waiting = queue.waitForResult(id, { timeoutMs: 3000 }).catch((e: unknown) => e);
    await sleep(20);
    const [job] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(
      store.settle([
        { ...base(job!), kind: 'dead', reason: 'permanent failure: no', error: { name: 'E', message: 'no' } },
      ]),
    );
    const error = await waiting;
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error).toMatchObject({
      code: ErrorCode.JobFailed,
      event: { id, kind: 'dead', reason: 'permanent failure: no' },
    });
  });

  it('refuses an add whose option letter is not one of the letters, and takes one that is', async () => {
    const keys = store.keys.queue('q');
    const script = scripts().enqueue;
    const add = (letter: string, value: string) =>
      execScript(
        store.client,
        script,
        scriptKeys(script, queueKeyResolver(keys)),
        [
          ...[keys.jobPrefix, keys.readyPrefix, keys.uniquePrefix, keys.wakeChannel],
          ...[keys.groupPrefix, keys.handoffPrefix, 1, 1, '"x"', letter, value],
        ],
        { queue: 'q' },
      );
    const refused = { code: 'ERR_SLUICE_SCRIPT', scriptCode: -2 };
    await expect(add('x', '1')).rejects.toMatchObject(refused); // no such option
    await expect(add('in', '1')).rejects.toMatchObject(refused); // two letters of the list
    await expect(add('', '1')).rejects.toMatchObject(refused);
    expect(await store.stats('q')).toMatchObject({ totals: { enqueued: 0 } });
    const reply = (await add('p', '3')) as unknown[];
    expect(reply.slice(1)).toEqual(['1', 0]);
    expect(await store.getJob('q', '1')).toMatchObject({ priority: 3, data: 'x' });
  });

  it('turns a script refusing its arguments into a RedisScriptError (ERR_SLUICE_SCRIPT)', async () => {
    const keys = store.keys.queue('q');
    const script = scripts().settle;
    // One value short of a settlement: the script answers -2 (malformed arguments).
    const args = [
      keys.jobPrefix,
      keys.readyPrefix,
      keys.historyPrefix,
      10,
      60_000,
      SCRIPT_DEFAULTS.defaultRetention,
      SCRIPT_DEFAULTS.maxErrors,
      1,
      'id',
      't',
      'completed',
      '',
    ];
    const error: unknown = await execScript(
      store.client,
      script,
      scriptKeys(script, queueKeyResolver(keys)),
      args,
      {
        queue: 'q',
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisScriptError);
    expect(error).toMatchObject({
      code: ErrorCode.Script,
      script: script.versionedName,
      queue: 'q',
      scriptCode: ScriptErrorCode.BadArguments,
    });
    // A settlement kind that is not an outcome's name is refused the same way.
    const letter = [...args.slice(0, 10), 'c', '', ''];
    await expect(
      execScript(store.client, script, scriptKeys(script, queueKeyResolver(keys)), letter, { queue: 'q' }),
    ).rejects.toMatchObject({ code: 'ERR_SLUICE_SCRIPT', scriptCode: -2 });
    // Too few keys never reaches Redis.
    await expect(execScript(store.client, script, [], args, { queue: 'q' })).rejects.toMatchObject({
      code: ErrorCode.Script,
    });
    // A token sent as '' is the one of the settlement before it: the first has none before it.
    const settle = (count: number, ...entries: (string | number)[]) => settleScript(store, count, ...entries);
    const refused = { code: 'ERR_SLUICE_SCRIPT', scriptCode: -2 };
    await expect(settle(1, 'S', 'nosuchjob', '', 'completed', '', '', '')).rejects.toMatchObject(refused);
    await expect(settle(1, 'S', 'nosuchjob', 't', 'completed', '', '', '')).resolves.toEqual([
      expect.any(Number),
      '0',
    ]);
    // The same for a run of completed jobs (`C, token, k, ids`, the ids joined by NUL), and a run
    // must hold what it counts: no fewer ids, no more, and its ids' value present.
    await expect(settle(1, 'C', '', 1, 'nosuchjob')).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', 't', 2, 'a\0b')).resolves.toEqual([expect.any(Number), '00']);
    await expect(settle(3, 'C', 't', 3, 'a\0\0b')).resolves.toEqual([expect.any(Number), '000']);
    await expect(settle(2, 'C', 't', 2, 'a')).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', 't', 2, 'a', 'b')).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', 't', 2, 'a\0b\0c')).rejects.toMatchObject(refused);
    await expect(settle(1, 'C', 't', 1)).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', 't', 0, 'S', 'a', '', 'completed', '', '', '')).rejects.toMatchObject(
      refused,
    );
    await expect(settle(3, 'C', 't', 2, 'a\0b')).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', 't', 1, 'a', 'S', 'b', '', 'completed', '', '', '')).resolves.toEqual([
      expect.any(Number),
      '00',
    ]);
    // An entry that is neither form, or one value short.
    await expect(settle(1, 'X', 'a', 't', 'completed', '', '', '')).rejects.toMatchObject(refused);
    await expect(settle(1, 'S', 'a', 't', 'completed', '', '')).rejects.toMatchObject(refused);
  });

  it('refuses a run whose ids do not make its count, against live leases too, before writing anything', async () => {
    await firstValueFrom(store.enqueue([1, 2, 3, 4].map((data) => ({ queue: 'q', data }))));
    const reserve = async () => (await firstValueFrom(store.reserve('q', 2, { leaseMs: 60_000 }))).jobs;
    const [a, b] = await reserve();
    const [c, d] = await reserve();
    const first = { token: a!.lease.token, ids: `${a!.id}\0${b!.id}` };
    const second = { token: c!.lease.token, ids: `${c!.id}\0${d!.id}` };
    const refused = { code: 'ERR_SLUICE_SCRIPT', scriptCode: -2 };
    const settle = (count: number, ...entries: (string | number)[]) => settleScript(store, count, ...entries);
    // The lease's own ids with a count that is not its size; a third id joined on; one id short.
    await expect(settle(3, 'C', first.token, 3, first.ids)).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', first.token, 2, `${first.ids}\0${c!.id}`)).rejects.toMatchObject(refused);
    await expect(settle(2, 'C', first.token, 2, a!.id)).rejects.toMatchObject(refused);
    // A whole lease given back as it was, then a malformed run: the first is not applied either.
    await expect(
      settle(4, 'C', first.token, 2, first.ids, 'C', second.token, 2, `${c!.id}\0${d!.id}\0x`),
    ).rejects.toMatchObject(refused);
    expect((await store.stats('q')).counts).toMatchObject({ running: 4, completed: 0 });
    // Both leases still hold their jobs: given back whole, each is applied.
    await expect(
      settle(4, 'C', first.token, 2, first.ids, 'C', second.token, 2, second.ids),
    ).resolves.toEqual([expect.any(Number), '1111']);
    expect((await store.stats('q')).counts).toMatchObject({ running: 0, completed: 4 });
  });

  it('leases records holding a NUL byte as they are, next to records without one', async () => {
    await firstValueFrom(
      store.enqueue([
        { queue: 'q', data: { text: 'a\u0000b' }, name: 'plain' },
        { queue: 'q', data: 2, name: 'n\0ul', group: 'g\0' },
        { queue: 'q', data: 3, priority: 0, maxAttempts: 2 },
      ]),
    );
    const { jobs, rejected } = await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }));
    expect(rejected).toEqual([]);
    expect(jobs.map((j) => [j.data, j.name, j.group, j.maxAttempts])).toEqual([
      [{ text: 'a\u0000b' }, 'plain', undefined, 5],
      [2, 'n\0ul', 'g\0', 5],
      [3, 'q', undefined, 2],
    ]);
    const results = await firstValueFrom(store.settle(jobs.map((j) => completed(j, j.data))));
    expect(results.every((r) => r.applied)).toBe(true);
  });

  it('leases jobs whose ids hold a NUL byte, alone and next to others, and settles them', async () => {
    await firstValueFrom(
      store.enqueue([
        { queue: 'q', data: 1, id: 'one\0' },
        { queue: 'q', data: 2, id: 'a\0b' },
        { queue: 'q', data: 3, id: 'plain' },
      ]),
    );
    // A reserve of one job (its lease keeps the id in a field) and one of two (in a list): the
    // answers cannot carry these ids joined by NUL, so the ids come from the leases just opened.
    const alone = await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }));
    const two = await firstValueFrom(store.reserve('q', 2, { leaseMs: 10_000 }));
    expect([...alone.rejected, ...two.rejected]).toEqual([]);
    expect(alone.jobs.map((j) => [j.id, j.data])).toEqual([['one\0', 1]]);
    // The lease of two keeps their ids in a list: joined by NUL, they could not be told apart.
    const twoKey = `${store.keys.queue('q').active}:t:${two.jobs[0]!.lease.token}`;
    expect(await redis.admin.hget(twoKey, 'j')).toBe('');
    expect(await redis.admin.lrange(`${twoKey}:i`, 0, -1)).toEqual(['a\0b', 'plain']);
    expect(two.jobs.map((j) => [j.id, j.data])).toEqual([
      ['a\0b', 2],
      ['plain', 3],
    ]);
    const jobs = [...alone.jobs, ...two.jobs];
    const results = await firstValueFrom(store.settle(jobs.map((j) => completed(j, j.data))));
    expect(results.every((r) => r.applied)).toBe(true);
    for (const job of jobs) {
      expect(await store.getJob('q', job.id)).toMatchObject({ state: JobState.Completed, result: job.data });
    }
  });

  it('settles the jobs of several leases in one call, each under its own token', async () => {
    await firstValueFrom(store.enqueue([1, 2, 3, 4, 5].map((n) => ({ queue: 'q', data: n }))));
    const a = (await firstValueFrom(store.reserve('q', 2, { leaseMs: 10_000 }))).jobs;
    const b = (await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }))).jobs;
    expect(a[0]!.lease.token).not.toBe(b[0]!.lease.token);
    // Runs of one lease (its token sent once per run), leases taking turns, and one settlement
    // under a token that does not hold its job (refused, and the run after it still applied).
    const order = [a[0]!, a[1]!, b[0]!, b[1]!, a[1]!, b[2]!];
    const results = await firstValueFrom(store.settle(order.map((j) => completed(j, j.data))));
    expect(codesOf(results)).toBe('applied applied applied applied lease-lost applied');
    const wrong = { ...completed(b[2]!, 'x'), token: a[0]!.lease.token };
    await firstValueFrom(store.enqueue([{ queue: 'q', data: 6 }]));
    const [c] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    const more = await firstValueFrom(store.settle([wrong, completed(c!, 6)]));
    expect(more.map((r) => r.applied)).toEqual([false, true]);
    for (const job of [...a, ...b, c!]) {
      expect(await store.getJob('q', job.id)).toMatchObject({ state: JobState.Completed, result: job.data });
    }
    expect((await store.stats('q')).totals).toMatchObject({ completed: 6 });
  });

  it('settles runs of completed jobs with no result next to whole settlements, in order', async () => {
    await firstValueFrom(store.enqueue([1, 2, 3, 4, 5, 6, 7].map((n) => ({ queue: 'q', data: n }))));
    const a = (await firstValueFrom(store.reserve('q', 4, { leaseMs: 10_000 }))).jobs;
    const b = (await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }))).jobs;
    const seen = firstValueFrom(store.events('q').pipe(take(7), toArray(), timeout(5000)));
    const plain = (j: ReservedJob) => completed(j, undefined);
    // a0 a1 run; a2 with a result; a3 retried; b0 run; a1 again in the middle of a run of b (its
    // lease is gone by then: refused); b1 b2 run.
    const order: Settlement[] = [
      plain(a[0]!),
      plain(a[1]!),
      completed(a[2]!, { r: 3 }),
      { ...base(a[3]!), kind: 'retrying', delayMs: 60_000, error: { name: 'E', message: 'again' } },
      plain(b[0]!),
      { ...plain(a[1]!), token: b[0]!.lease.token },
      plain(b[1]!),
      plain(b[2]!),
    ];
    const results = await firstValueFrom(store.settle(order));
    expect(codesOf(results)).toBe('applied applied applied applied applied lease-lost applied applied');
    for (const job of [a[0]!, a[1]!, b[0]!, b[1]!, b[2]!]) {
      const record = await store.getJob('q', job.id);
      expect(record).toMatchObject({ state: JobState.Completed, attempt: 1 });
      expect(record?.result).toBeUndefined();
    }
    expect(await store.getJob('q', a[2]!.id)).toMatchObject({ state: JobState.Completed, result: { r: 3 } });
    expect(await store.getJob('q', a[3]!.id)).toMatchObject({ state: JobState.Scheduled, attempt: 1 });
    expect((await store.stats('q')).totals).toMatchObject({ completed: 6, failed: 1 });
    const events = await seen;
    expect(events.map((e) => `${e.id}:${e.kind}`)).toEqual(
      [a[0]!, a[1]!, a[2]!]
        .map((j) => `${j.id}:completed`)
        .concat(`${a[3]!.id}:retrying`, ...[b[0]!, b[1]!, b[2]!].map((j) => `${j.id}:completed`)),
    );
  });

  it('starts an events subscription with the events after it, not before', async () => {
    await firstValueFrom(store.enqueue([1, 2].map((n) => ({ queue: 'q', data: n }))));
    const [a, b] = (await firstValueFrom(store.reserve('q', 2, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(a!, 'before')]));
    const next = firstValueFrom(store.events('q').pipe(take(1), timeout(3000)));
    await firstValueFrom(store.settle([completed(b!, 'after')]));
    await expect(next).resolves.toMatchObject({ id: b!.id, result: 'after' });
  });

  it('adds large bulks in chunks, keeping order, ids and FIFO', async () => {
    const small = await RedisStore.connect({ url: redis.url, prefix: fx.prefix, enqueueChunkSize: 100 });
    others.push(small);
    const results = await firstValueFrom(
      small.enqueue(Array.from({ length: 250 }, (_, i) => ({ queue: i % 2 ? 'odd' : 'even', data: i }))),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(125);
    // The three calls of a queue are sent back to back, and still run in order.
    const ids = Array.from({ length: 125 }, (_, i) => String(i + 1));
    expect(results.filter((_, i) => i % 2 === 0).map((r) => r.id)).toEqual(ids);
    expect(results.filter((_, i) => i % 2 === 1).map((r) => r.id)).toEqual(ids);
    const even = (await firstValueFrom(small.reserve('even', 200, { leaseMs: 1000 }))).jobs.map(
      (j) => j.data,
    );
    expect(even).toEqual(Array.from({ length: 125 }, (_, i) => i * 2));
    expect(await small.queues()).toEqual(['even', 'odd']);
  });

  it('splits a bulk add of large payloads into several calls, keeping its order', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const results = await firstValueFrom(
      store.enqueue([1, 2, 3].map((n) => ({ queue: 'q', data: { n, big } }))),
    );
    expect(results.map((r) => r.id)).toEqual(['1', '2', '3']);
    const { jobs } = await firstValueFrom(
      store.reserve<{ n: number; big: string }>('q', 5, { leaseMs: 1000 }),
    );
    expect(jobs.map((j) => j.data.n)).toEqual([1, 2, 3]);
    expect(jobs[2]!.data.big).toHaveLength(big.length);
  });

  it('never gives an automatic id that a caller already chose', async () => {
    await firstValueFrom(
      store.enqueue([
        { queue: 'q', id: '1', data: 'mine' },
        { queue: 'q', id: '2', data: 'mine too' },
      ]),
    );
    const [auto] = await firstValueFrom(store.enqueue([{ queue: 'q', data: 'auto' }]));
    expect(auto).toEqual({ id: '3', duplicate: false });
    expect((await store.getJob('q', '1'))?.data).toBe('mine');
  });

  it('numbers automatic ids across tens, hundreds and calls', async () => {
    const add = (n: number) =>
      firstValueFrom(store.enqueue(Array.from({ length: n }, (_, i) => ({ queue: 'q', data: i }))));
    const ids = [...(await add(105)), ...(await add(1)), ...(await add(3))].map((r) => r.id);
    expect(ids).toEqual(Array.from({ length: 109 }, (_, i) => String(i + 1)));
    // A sequence far along (as a long-lived queue's): still its decimal digits, never a float's.
    await redis.admin.hset(store.keys.queue('far').counters, 'e', '0', 'id', '99999999998');
    const far = await firstValueFrom(store.enqueue([1, 2, 3].map((data) => ({ queue: 'far', data }))));
    expect(far.map((r) => r.id)).toEqual(['99999999999', '100000000000', '100000000001']);
    expect((await store.getJob('far', '100000000000'))?.data).toBe(2);
    // An add of one job with every default (the script's own path for it): the same digits.
    const [one] = await firstValueFrom(store.enqueue([{ queue: 'far', data: 4 }]));
    expect(one?.id).toBe('100000000002');
    expect((await store.getJob('far', '100000000002'))?.data).toBe(4);
  });

  it('skips chosen ids ahead of the sequence, also on a queue whose counters predate that record', async () => {
    const add = (items: { id?: string; data: string }[]) =>
      firstValueFrom(store.enqueue(items.map((item) => ({ queue: 'q', ...item }))));
    await add([{ data: 'a1' }, { id: '4', data: 'mine' }, { id: '007', data: 'padded' }, { data: 'a2' }]);
    const autos = await add(Array.from({ length: 5 }, (_, i) => ({ data: `b${i}` })));
    expect(autos.map((r) => r.id)).toEqual(['3', '5', '6', '7', '8']);
    expect((await store.getJob('q', '4'))?.data).toBe('mine');
    expect((await store.getJob('q', '7'))?.data).toBe('b3');
    // Counters written before the highest chosen id was kept: every automatic id is checked.
    const counters = store.keys.queue('older').counters;
    await redis.admin.hset(counters, 'e', '2', 'id', '1');
    await redis.admin.hset(store.keys.queue('older').jobPrefix + '2', 'd', '"chosen earlier"', 'c', '1');
    const [older] = await firstValueFrom(store.enqueue([{ queue: 'older', data: 'new' }]));
    expect(older?.id).toBe('3');
    expect((await store.getJob('older', '2'))?.data).toBe('chosen earlier');
  });

  it('keeps finished jobs by age and per-job retention, and expires history buckets', async () => {
    await store.setQueueConfig('q', { retention: { keep: 'age', ageMs: 150 } });
    await firstValueFrom(
      store.enqueue([
        { queue: 'q', data: 1 },
        { queue: 'q', data: 2, retention: { keep: 'none' } },
      ]),
    );
    const jobs = (await firstValueFrom(store.reserve('q', 2, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle(jobs.map((j) => completed(j, j.data))));
    expect((await store.listJobs('q', JobState.Completed)).map((j) => j.data)).toEqual([1]);
    expect(await store.getJob('q', jobs[1]!.id)).toBeUndefined();
    await sleep(200);
    expect((await store.stats('q')).counts.completed).toBe(0);
    expect(await store.getJob('q', jobs[0]!.id)).toBeUndefined();
    const minute = Math.floor(Number((await redis.admin.time())[0]) / 60) * 60_000;
    const ttl = await redis.admin.pttl(store.keys.queue('q').historyPrefix + String(minute));
    expect(ttl).toBeGreaterThan(0);
  });

  it('finishes a job completed with no result in the finished index, not its record, and drops the entry with the record', async () => {
    const q = store.keys.queue('fast');
    const index = `${q.active}:f`;
    // Ids that are not consecutive numbers: their run is not ranged, so each is indexed.
    await firstValueFrom(
      store.enqueue([1, 2, 3, 4, 5].map((n) => ({ queue: 'fast', data: n, id: `f${n}` }))),
    );
    const { jobs } = await firstValueFrom(store.reserve('fast', 5, { leaseMs: 10_000 }));
    const [first] = jobs;
    expect(codesOf(await firstValueFrom(store.settle(jobs.map((j) => completed(j, undefined)))))).toBe(
      'applied applied applied applied applied',
    );
    // No record was written as its job finished; the index holds each finish.
    for (const j of jobs) expect(await redis.admin.hexists(q.jobPrefix + j.id, 's')).toBe(0);
    expect(await redis.admin.hlen(index)).toBe(5 + 1); // and the placeholder (field '')
    const record = await store.getJob('fast', first!.id);
    expect(record).toMatchObject({
      state: JobState.Completed,
      data: 1,
      attempt: 1,
      startedAt: first!.lease.startedAt,
    });
    expect(record?.finishedAt).toBeGreaterThanOrEqual(first!.lease.startedAt);
    expect(record?.result).toBeUndefined();
    expect(await store.cancel('fast', first!.id)).toBe('finished');
    const listed = await store.listJobs('fast', JobState.Completed);
    expect(listed.map((j) => j.data)).toEqual([5, 4, 3, 2, 1]);
    expect(listed.every((j) => j.finishedAt === record?.finishedAt && j.attempt === 1)).toBe(true);
    // Filtered by finish time, the walk reads the finish from the index too.
    expect(await store.listJobs('fast', JobState.Completed, { from: record!.finishedAt! })).toHaveLength(5);
    expect(await store.listJobs('fast', JobState.Completed, { to: record!.finishedAt! - 1 })).toHaveLength(0);

    expect(await store.removeJob('fast', first!.id)).toBe(true);
    expect(await store.getJob('fast', first!.id)).toBeUndefined();
    expect(await redis.admin.hexists(index, first!.id)).toBe(0);
    // Retention trims records and their entries together.
    await store.setQueueConfig('fast', { retention: { keep: 'count', count: 2 } });
    expect((await store.stats('fast')).counts.completed).toBe(2);
    expect((await redis.admin.hkeys(index)).sort()).toEqual(['', jobs[3]!.id, jobs[4]!.id].sort());
    expect(await store.purge('fast', 'completed')).toBe(2);
    expect(await redis.admin.hkeys(index)).toEqual(['']); // its placeholder alone
  });

  it("keeps a lease's completions of one settle as one finished-list entry, split and walked by job", async () => {
    const small = await RedisStore.connect({
      url: redis.url,
      prefix: fx.prefix,
      maxDrainPerCall: 3,
      listScanPerCall: 2,
    });
    others.push(small);
    const q = small.keys.queue('runs');
    const runsHeld = async () => Number((await redis.admin.hget(q.counters, 'fr')) ?? 0);
    const completeTogether = async (data: number[]) => {
      await firstValueFrom(small.enqueue(data.map((n) => ({ queue: 'runs', data: n }))));
      const { jobs } = await firstValueFrom(small.reserve('runs', data.length, { leaseMs: 10_000 }));
      await firstValueFrom(small.settle(jobs.map((j) => completed(j, undefined))));
      return jobs;
    };
    const listed = async (options?: Parameters<RedisStore['listJobs']>[2]) =>
      (await small.listJobs('runs', JobState.Completed, options)).map((j) => j.data);

    const ranges = `${q.active}:r`;
    const index = `${q.active}:f`;
    const first = await completeTogether([1, 2, 3, 4, 5]);
    expect(await redis.admin.llen(q.finished)).toBe(1);
    expect(await runsHeld()).toBe(4);
    // Consecutive ids: one range for the run, no index entry per job.
    expect(await redis.admin.zrange(ranges, 0, -1)).toEqual([
      expect.stringMatching(new RegExp(`^${first[0]!.id}\\|5\\|`)),
    ]);
    expect(await redis.admin.exists(index)).toBe(0);
    // A single job completed after it is an entry of its own; a filtered walk (two jobs a call
    // here) counts positions by job, across the run.
    const [six] = await completeTogether([6]);
    expect(await redis.admin.llen(q.finished)).toBe(2);
    const at = (await small.getJob('runs', first[0]!.id))!.finishedAt!;
    expect(await listed({ from: at })).toEqual([6, 5, 4, 3, 2, 1]);
    expect(await listed({ from: at, offset: 3, limit: 2 })).toEqual([3, 2]);

    // A count bound cutting into the run keeps its newer jobs in one entry.
    await small.setQueueConfig('runs', { retention: { keep: 'count', count: 4 } });
    expect((await small.stats('runs')).counts.completed).toBe(4);
    expect(await listed()).toEqual([6, 5, 4, 3]);
    expect(await redis.admin.llen(q.finished)).toBe(2);
    expect(await runsHeld()).toBe(2);
    // The range moved with the cut: it starts at the first job kept.
    expect(await redis.admin.zrange(ranges, 0, -1)).toEqual([
      expect.stringMatching(new RegExp(`^${first[2]!.id}\\|3\\|`)),
    ]);
    expect(await small.getJob('runs', first[1]!.id)).toBeUndefined();
    expect(await small.getJob('runs', first[2]!.id)).toMatchObject({
      state: JobState.Completed,
      finishedAt: at,
    });
    // Removing from the middle of a ranged run: the rest are indexed one by one, the range goes.
    expect(await small.removeJob('runs', first[3]!.id)).toBe(true);
    expect(await redis.admin.zcard(ranges)).toBe(0);
    expect((await redis.admin.hkeys(index)).sort()).toEqual(['', six!.id, first[2]!.id, first[4]!.id].sort());
    expect(await redis.admin.lrange(q.finished, 0, -1)).toEqual([
      `c${six!.id}`,
      expect.stringMatching(/^C2\|/),
    ]);
    expect(await small.getJob('runs', first[4]!.id)).toMatchObject({
      state: JobState.Completed,
      finishedAt: at,
    });
    // Removing from a run of two leaves a single job's entry.
    expect(await small.removeJob('runs', first[2]!.id)).toBe(true);
    expect(await listed()).toEqual([6, 5]);
    expect(await runsHeld()).toBe(0);
    expect(await redis.admin.lrange(q.finished, 0, -1)).toEqual([`c${six!.id}`, `c${first[4]!.id}`]);

    // Obliterated three jobs a call: the two single jobs go in the first call, and the run, larger
    // than what that call has left, in the next one, whole.
    await small.setQueueConfig('runs', { retention: { keep: 'count', count: 100 } });
    await completeTogether([7, 8, 9, 10, 11]);
    expect(await runsHeld()).toBe(4);
    expect(await listed()).toEqual([11, 10, 9, 8, 7, 6, 5]);
    const obliterate = scripts().obliterate;
    const base = q.jobPrefix.slice(0, -'j:'.length);
    const firstCall = Reply.of(
      await execScript(
        small.client,
        obliterate,
        scriptKeys(obliterate, queueKeyResolver(q)),
        [
          q.jobPrefix,
          q.readyPrefix,
          q.uniquePrefix,
          q.cancelChannel,
          q.settingsChannel,
          `${base}*`,
          0,
          3,
          '',
        ],
        { queue: 'runs' },
      ),
      'obliterate',
    );
    expect([firstCall.int(), firstCall.int()]).toEqual([1, 2]); // more to do; two records deleted
    expect(await redis.admin.lrange(q.finished, 0, -1)).toEqual([expect.stringMatching(/^R5\|/)]);
    expect(await small.obliterate('runs')).toEqual({ jobs: 5, running: 0 });
    expect(await redis.admin.exists(q.finished, q.counters)).toBe(0);
    expect(await small.listJobs('runs', JobState.Completed)).toEqual([]);
  });

  it('ranges a run only when its ids count up by one as decimals, and finds no other id in a range', async () => {
    const q = store.keys.queue('rng');
    const ranges = `${q.active}:r`;
    const index = `${q.active}:f`;
    const together = async (ids: (string | undefined)[]) => {
      await firstValueFrom(
        store.enqueue(ids.map((id, n) => ({ queue: 'rng', data: n, ...(id === undefined ? {} : { id }) }))),
      );
      const { jobs } = await firstValueFrom(store.reserve('rng', ids.length, { leaseMs: 10_000 }));
      expect(codesOf(await firstValueFrom(store.settle(jobs.map((j) => completed(j, undefined)))))).toBe(
        jobs.map(() => 'applied').join(' '),
      );
      return jobs;
    };
    const head = async () => (await redis.admin.lindex(q.finished, 0))!.slice(0, 1);
    // Automatic ids: consecutive, one range.
    const auto = await together([undefined, undefined, undefined]);
    expect(await head()).toBe('R');
    expect(await redis.admin.zcard(ranges)).toBe(1);
    expect(await redis.admin.exists(index)).toBe(0);
    for (const j of auto) {
      expect(await store.getJob('rng', j.id)).toMatchObject({
        state: JobState.Completed,
        attempt: 1,
        startedAt: j.lease.startedAt,
      });
    }
    // Ranged across a hundred; not ranged, each indexed: a leading zero, a gap, a sign, an exponent,
    // a count down, one out of place across a hundred.
    let ranged = 1;
    for (const [kind, ids] of [
      ['R', ['900098', '900099', '900100', '900101']],
      ['C', ['0900001', '0900002']],
      ['C', ['900010', '900012']],
      ['C', ['+900020', '900021']],
      ['C', ['9e5', '900001']],
      ['C', ['900040', '0900041']],
      ['C', ['900031', '900030']],
      ['C', ['900199', '900201', '900200']],
      // Its last id off by one; a first hundred right and the next wrong at its start.
      ['C', ['900300', '900301', '900303']],
      ['C', ['900398', '900399', '900401', '900402']],
      ['R', ['900598', '900599', '900600']],
    ] as const) {
      const jobs = await together([...ids]);
      expect(await head()).toBe(kind);
      if (kind === 'R') ranged++;
      expect(await redis.admin.zcard(ranges)).toBe(ranged);
      for (const j of jobs) {
        expect(await redis.admin.hexists(index, j.id)).toBe(kind === 'R' ? 0 : 1);
        expect(await store.getJob('rng', j.id)).toMatchObject({ state: JobState.Completed });
      }
    }
    // An id whose number falls in the range but is written otherwise is not of the run.
    const inside = Number(auto[1]!.id);
    await firstValueFrom(
      store.enqueue([
        { queue: 'rng', data: 'a', id: `0${inside}` },
        { queue: 'rng', data: 'b', id: `${inside}.0` },
      ]),
    );
    expect(await store.getJob('rng', `0${inside}`)).toMatchObject({ state: JobState.Ready });
    expect(await store.getJob('rng', `${inside}.0`)).toMatchObject({ state: JobState.Ready });
    expect(await store.getJob('rng', String(inside + 2))).toBeUndefined();
    // Purged: the range goes with its jobs.
    expect(await store.purge('rng', 'completed')).toBe(32);
    expect(await redis.admin.exists(ranges)).toBe(0);
    expect(await store.getJob('rng', auto[0]!.id)).toBeUndefined();
  });

  it('trims jobs finished in the finished index by age, reading their finish times there', async () => {
    const q = store.keys.queue('aged');
    await store.setQueueConfig('aged', { retention: { keep: 'age', ageMs: 150 } });
    await firstValueFrom(store.enqueue([{ queue: 'aged', data: 1 }]));
    const [old] = (await firstValueFrom(store.reserve('aged', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(old!, undefined)]));
    await sleep(200);
    await firstValueFrom(store.enqueue([{ queue: 'aged', data: 2 }]));
    const [recent] = (await firstValueFrom(store.reserve('aged', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(recent!, undefined)]));
    // The settle's trim popped the old job (its finish older than 150 ms) and kept the new one.
    expect(await store.getJob('aged', old!.id)).toBeUndefined();
    expect(await store.getJob('aged', recent!.id)).toMatchObject({ state: JobState.Completed });
    expect((await redis.admin.hkeys(`${q.active}:f`)).sort()).toEqual(['', recent!.id].sort());
    expect((await store.stats('aged')).counts.completed).toBe(1);
  });

  it('loses no schedule when two producers (two processes) change the configuration at once', async () => {
    const other = await peer();
    const mine = new Queue(store, 'reports');
    const theirs = new Queue(other, 'reports');
    const names = Array.from({ length: 10 }, (_, i) => i);
    await Promise.all([
      ...names.map((i) => mine.schedule(`mine-${i}`, '0 * * * *', { i })),
      ...names.map((i) => theirs.schedule(`theirs-${i}`, '0 3 * * *', { i })),
      theirs.setRetention({ dead: { keep: 'count', count: 7 } }),
    ]);
    const config = await store.getQueueConfig('reports');
    expect(Object.keys(config.schedules ?? {}).sort()).toEqual(
      [...names.map((i) => `mine-${i}`), ...names.map((i) => `theirs-${i}`)].sort(),
    );
    expect(config.deadRetention).toEqual({ keep: 'count', count: 7 });
    expect(await redis.admin.hget(store.keys.queue('reports').settings, 'rd')).toBe('c7');
    expect(await Promise.all([mine.unschedule('mine-0'), theirs.unschedule('mine-0')])).toEqual(
      expect.arrayContaining([true, false]),
    );
  });

  it('caps the event stream', async () => {
    const capped = await RedisStore.connect({ url: redis.url, prefix: fx.prefix, eventsMaxLen: 10 });
    others.push(capped);
    await firstValueFrom(capped.enqueue(Array.from({ length: 500 }, (_, n) => ({ queue: 'q', data: n }))));
    const { jobs } = await firstValueFrom(capped.reserve('q', 500, { leaseMs: 10_000 }));
    await firstValueFrom(capped.settle(jobs.map((j) => completed(j, null))));
    expect(await redis.admin.xlen(capped.keys.queue('q').events)).toBeLessThan(200);
  });

  it('settles jobs of several queues in one call and recovers more leases than one script call takes', async () => {
    const small = await RedisStore.connect({ url: redis.url, prefix: fx.prefix, maxRecoverPerCall: 2 });
    others.push(small);
    await firstValueFrom(
      small.enqueue([...[1, 2, 3, 4, 5].map((n) => ({ queue: 'a', data: n })), { queue: 'b', data: 0 }]),
    );
    const a = (await firstValueFrom(small.reserve('a', 5, { leaseMs: 50 }))).jobs;
    const [b] = (await firstValueFrom(small.reserve('b', 1, { leaseMs: 10_000 }))).jobs;
    await sleep(100);
    expect((await firstValueFrom(small.recoverExpired('a'))).recovered).toHaveLength(5);
    const again = (await firstValueFrom(small.reserve('a', 5, { leaseMs: 10_000 }))).jobs;
    const results = await firstValueFrom(
      small.settle([completed(b!, 'b'), ...again.map((j) => completed(j, 'a'))]),
    );
    expect(results.map((r) => r.applied)).toEqual([true, true, true, true, true, true]);
    expect(a.map((j) => j.id).sort()).toEqual(again.map((j) => j.id).sort());
  });

  it('keeps the finished index out of the listpack encoding, however few jobs it holds', async () => {
    const keys = store.keys.queue('q');
    await firstValueFrom(store.enqueue([{ queue: 'q', data: 1 }]));
    const [job] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    await firstValueFrom(store.settle([completed(job!, undefined)]));
    // The job's entry and the placeholder, which no listing, lookup or trim takes for a job.
    expect(await redis.admin.hlen(`${keys.active}:f`)).toBe(2);
    expect(await redis.admin.object('ENCODING', `${keys.active}:f`)).toBe('hashtable');
    expect(await store.getJob('q', job!.id)).toMatchObject({ state: JobState.Completed, attempt: 1 });
    expect((await store.listJobs('q', JobState.Completed)).map((j) => j.id)).toEqual([job!.id]);
    expect((await store.stats('q')).counts.completed).toBe(1);
  });

  it('holds the jobs of one reserve call under one lease, without writing their records', async () => {
    const keys = store.keys.queue('q');
    await firstValueFrom(store.enqueue([1, 2, 3, 4].map((n) => ({ queue: 'q', data: n }))));
    const before = await redis.admin.hgetall(keys.jobPrefix + '1');
    const { jobs } = await firstValueFrom(
      store.reserve<number>('q', 4, { leaseMs: 10_000, workerId: 'w-1' }),
    );
    expect(new Set(jobs.map((j) => j.lease.token)).size).toBe(1);
    expect(await redis.admin.hgetall(keys.jobPrefix + '1')).toEqual(before);
    expect(await redis.admin.zcard(keys.active)).toBe(1);
    // The lease holds its ids joined, in the order leased, and nothing is written per job.
    const leaseKey = `${keys.active}:t:${jobs[0]!.lease.token}`;
    expect(await redis.admin.hgetall(leaseKey)).toEqual({ j: jobs.map((j) => j.id).join('\0'), w: 'w-1' });
    expect(await redis.admin.get(`${keys.active}:n`)).toBe('4');
    expect(await redis.admin.exists(`${keys.active}:j`)).toBe(0);
    const running = await store.getJob('q', jobs[1]!.id);
    expect(running).toMatchObject({ state: JobState.Running, attempt: 1 });
    expect(running?.lease).toMatchObject({ token: jobs[0]!.lease.token, workerId: 'w-1' });
    // A settle releases its own job; the lease stays while it holds others.
    await firstValueFrom(store.settle([completed(jobs[0]!, 'done'), completed(jobs[0]!, 'twice')]));
    expect((await store.stats('q')).counts.running).toBe(3);
    expect(await redis.admin.zcard(keys.active)).toBe(1);
    expect(await redis.admin.hmget(leaseKey, 'r', `-${jobs[0]!.id}`, `-${jobs[1]!.id}`)).toEqual([
      '-1',
      '1',
      null,
    ]);
    // Extending it for one job extends it for the call's other jobs still held.
    await firstValueFrom(store.extendLeases('q', [{ id: jobs[1]!.id, token: jobs[1]!.lease.token }], 20_000));
    const deadlines = await Promise.all(
      jobs.slice(1).map(async (j) => (await store.getJob('q', j.id))?.lease),
    );
    expect(new Set(deadlines.map((l) => l?.expiresAt)).size).toBe(1);
    expect(deadlines[2]!.expiresAt).toBeGreaterThan(jobs[0]!.lease.expiresAt + 5_000);
    // The record keeps the attempt that ended and when its lease started.
    const finished = await store.getJob('q', jobs[0]!.id);
    expect(finished).toMatchObject({ state: JobState.Completed, attempt: 1, result: 'done' });
    expect(finished?.startedAt).toBe(jobs[0]!.lease.startedAt);
    await firstValueFrom(store.settle(jobs.slice(1).map((j) => completed(j, null))));
    expect(await redis.admin.zcard(keys.active)).toBe(0);
    expect(await redis.admin.get(`${keys.active}:n`)).toBe('0');
    expect((await store.stats('q')).counts.running).toBe(0);
    expect(await redis.admin.keys(`${keys.active}:t:*`)).toEqual([]);
  });

  it('releases a lease whole when a settle gives its ids back as leased, and looks them up otherwise', async () => {
    const keys = store.keys.queue('q');
    const settle = async (count: number, ...entries: (string | number)[]): Promise<string> =>
      ((await settleScript(store, count, ...entries)) as [number, string])[1];
    const running = async () => Number(await redis.admin.get(`${keys.active}:n`));
    const lease = async (n: number) => {
      const { jobs } = await firstValueFrom(store.reserve('q', n, { leaseMs: 10_000 }));
      expect(jobs).toHaveLength(n);
      return {
        token: jobs[0]!.lease.token,
        ids: jobs.map((j) => j.id),
        key: `${keys.active}:t:${jobs[0]!.lease.token}`,
      };
    };
    await firstValueFrom(store.enqueue(Array.from({ length: 12 }, (_, n) => ({ queue: 'q', data: n }))));
    const a = await lease(3);
    const b = await lease(3);
    const c = await lease(3);
    const d = await lease(2);
    const e = await lease(1);
    expect(await running()).toBe(12);
    // As leased: the whole lease goes.
    expect(await settle(3, 'C', a.token, 3, a.ids.join('\0'))).toBe('111');
    expect(await redis.admin.exists(a.key)).toBe(0);
    expect(await running()).toBe(9);
    // The same ids in another order: each looked up, all held, the lease goes with the last.
    expect(await settle(3, 'C', b.token, 3, [...b.ids].reverse().join('\0'))).toBe('111');
    expect(await redis.admin.exists(b.key)).toBe(0);
    expect(await running()).toBe(6);
    // A lease one of whose jobs went before: its ids as leased are looked up, that one lost.
    expect(await settle(1, 'C', c.token, 1, c.ids[0]!)).toBe('1');
    expect(await running()).toBe(5);
    expect(await settle(3, 'C', c.token, 3, c.ids.join('\0'))).toBe('211');
    expect(await redis.admin.exists(c.key)).toBe(0);
    expect(await running()).toBe(3);
    // A lease given back whole twice in one call, another lease's job between: lost the second time.
    const joined = d.ids.join('\0');
    expect(
      await settle(5, 'C', d.token, 2, joined, 'C', e.token, 1, e.ids[0]!, 'C', d.token, 2, joined),
    ).toBe('11122');
    expect(await running()).toBe(0);
    expect(await redis.admin.zcard(keys.active)).toBe(0);
    expect(await redis.admin.keys(`${keys.active}:t:*`)).toEqual([]);
    for (const id of [...a.ids, ...b.ids, ...c.ids, ...d.ids, ...e.ids]) {
      expect((await store.getJob('q', id))?.state).toBe(JobState.Completed);
    }
    expect((await store.stats('q')).counts).toMatchObject({ running: 0, completed: 12 });
  });

  it('leaves a job released from a lease to its next lease: extended, found and recovered there only', async () => {
    await firstValueFrom(store.enqueue([1, 2].map((n) => ({ queue: 'q', data: n }))));
    const first = (await firstValueFrom(store.reserve('q', 2, { leaseMs: 100 }))).jobs;
    const [again, other] = first as [ReservedJob, ReservedJob];
    const error = { name: 'E', message: 'try again' };
    await firstValueFrom(store.settle([{ ...base(again), kind: 'retrying', delayMs: 0, error }]));
    // Leased again under a lease of its own while the first still holds the other job.
    const [second] = (await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }))).jobs;
    expect(second).toMatchObject({ id: again.id, attempt: 2 });
    expect(second!.lease.token).not.toBe(again.lease.token);
    expect((await store.getJob('q', again.id))?.lease?.token).toBe(second!.lease.token);
    expect((await store.stats('q')).counts.running).toBe(2);
    // The first lease no longer holds it: its heartbeat and settle for it are refused.
    expect(await firstValueFrom(store.extendLeases('q', [base(again)], 10_000))).toEqual({
      extended: [],
      lost: [again.id],
    });
    expect(codesOf(await firstValueFrom(store.settle([completed(again, 'late')])))).toBe('lease-lost');
    // The first lease expires: only the job it still holds comes back.
    await sleep(150);
    expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toEqual([other.id]);
    expect(await store.getJob('q', again.id)).toMatchObject({ state: JobState.Running, attempt: 2 });
    expect((await store.stats('q')).counts.running).toBe(1);
    expect(codesOf(await firstValueFrom(store.settle([completed(second!, 'done')])))).toBe('applied');
    expect((await store.stats('q')).counts.running).toBe(0);
  });

  it('reads and recovers leases of the layout before leases held their ids', async () => {
    const keys = store.keys.queue('q');
    const added = await firstValueFrom(store.enqueue([1, 2, 3].map((n) => ({ queue: 'q', data: n }))));
    const [one, two, three] = added.map((j) => j.id) as [string, string, string];
    // As that version left them: off the ready list; a lease of two jobs (a third released) with its
    // ids in a list, a lease of one with its id in field i, and each running job's token in `:j`.
    await redis.admin.del(`${keys.readyPrefix}0`);
    await redis.admin.zrem(keys.priorities, '0');
    const many = '5.1000.3';
    const single = '6.1000.1';
    await redis.admin.rpush(`${keys.active}:t:${many}:i`, one, 'released', two);
    await redis.admin.hset(`${keys.active}:t:${many}`, 'r', '-1', 'w', 'w-old');
    await redis.admin.hset(`${keys.active}:t:${single}`, 'i', three);
    await redis.admin.hset(`${keys.active}:j`, '', 'placeholder', one, many, two, many, three, single);
    await redis.admin.zadd(keys.active, '1001', many, '1001', single);
    expect(await store.getJob('q', two)).toMatchObject({
      state: JobState.Running,
      lease: { token: many, workerId: 'w-old' },
    });
    expect(await store.getJob('q', three)).toMatchObject({
      state: JobState.Running,
      lease: { token: single },
    });
    const { recovered } = await firstValueFrom(store.recoverExpired('q'));
    expect([...recovered].sort()).toEqual([one, two, three].sort());
    expect(await redis.admin.zcard(keys.active)).toBe(0);
    expect(await redis.admin.keys(`${keys.active}:t:*`)).toEqual([]);
    expect(await redis.admin.hkeys(`${keys.active}:j`)).toEqual(['']);
    const { jobs } = await firstValueFrom(store.reserve('q', 3, { leaseMs: 10_000 }));
    expect(jobs.map((j) => j.attempt)).toEqual([2, 2, 2]);
    expect(await redis.admin.get(`${keys.active}:n`)).toBe('3');
  });

  describe('parks: an add hands its jobs to a waiting worker', () => {
    const park = (seq: number, cancelSeq?: number) => ({
      leaseMs: 10_000,
      workerId: 'w-1',
      park: { id: 'p1', seq, ttlMs: 5_000, ...(cancelSeq === undefined ? {} : { cancelSeq }) },
    });
    const open = async () => {
      const channel = store.openHandoffs('q', 'p1');
      await channel.ready;
      const received: Handoff[] = [];
      channel.handoffs.subscribe((h) => received.push(h));
      return { channel, received };
    };
    const until = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !check(); i++) await sleep(10);
      expect(check()).toBe(true);
    };
    const closers: (() => void)[] = [];
    afterEach(() => {
      for (const close of closers.splice(0)) close();
    });

    it('parks what a short reserve leaves; the next add leases its jobs to the park and sends them', async () => {
      const keys = store.keys.queue('q');
      const { channel, received } = await open();
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'ready' }]));
      const first = await firstValueFrom(store.reserve('q', 3, park(1)));
      expect(first.jobs.map((j) => j.data)).toEqual(['ready']);
      expect(first.park).toEqual({ reclaimed: 0, parked: 2 });
      // Three added at once: two go to the park, one stays ready; a wake-up is sent for it.
      const wakes: unknown[] = [];
      const woken = store.wakeups('q').subscribe((w) => wakes.push(w));
      const listener = redis.admin.duplicate();
      closers.push(() => {
        listener.disconnect();
      });
      const messages: string[] = [];
      listener.on('message', (_channel: string, message: string) => messages.push(message));
      await listener.subscribe(keys.handoffPrefix + 'p1');
      await sleep(50);
      const added = await firstValueFrom(
        store.enqueue([
          { queue: 'q', data: 'a' },
          { queue: 'q', data: 'b', priority: 1 },
          // A NUL byte in a record: a handoff carries each string of a record as it is.
          { queue: 'q', data: 'c', timeoutMs: 500, name: 'n\0ul' },
        ]),
      );
      await until(() => received.length === 1);
      const [handoff] = received;
      expect(handoff).toMatchObject({ seq: 1, parked: 2, rejected: [] });
      // Lowest priority first: a and c (priority 0), b stays ready.
      expect(handoff!.jobs.map((j) => [j.id, j.data, j.attempt])).toEqual([
        [added[0]!.id, 'a', 1],
        [added[2]!.id, 'c', 1],
      ]);
      expect(handoff!.jobs[1]!.timeoutMs).toBe(500);
      expect(handoff!.jobs.map((j) => j.name)).toEqual(['q', 'n\0ul']);
      expect(handoff!.jobs[0]!.lease).toMatchObject({ workerId: 'w-1' });
      expect(new Set(handoff!.jobs.map((j) => j.lease.token)).size).toBe(1);
      // The message as it travels: workers of earlier versions read this layout too (a rolling
      // deploy runs adds of one version beside workers of another), so it changes only together
      // with a reader of both layouts.
      await until(() => messages.length === 1);
      const at = expect.stringMatching(/^\d+$/) as unknown;
      expect(JSON.parse(messages[0]!)).toEqual([
        ...['1', '2', at, handoff!.jobs[0]!.lease.token, '10000', 'w-1', '2'],
        ...[added[0]!.id, '4', 'd', '"a"', 'c', at],
        ...[added[2]!.id, '8', 'd', '"c"', 'c', at, 'n', 'n\0ul', 't', '500'],
      ]);
      await until(() => wakes.length === 1);
      woken.unsubscribe();
      expect(await redis.admin.exists(`${keys.active}:p`)).toBe(0);
      expect((await store.stats('q')).counts).toMatchObject({ running: 3, ready: 1 });
      const running = await store.getJob('q', added[0]!.id);
      expect(running?.lease).toMatchObject({ token: handoff!.jobs[0]!.lease.token, workerId: 'w-1' });
      // The handed-over lease settles like a reserved one.
      const settled = await firstValueFrom(store.settle(handoff!.jobs.map((j) => completed(j, j.data))));
      expect(settled.map((r) => r.applied)).toEqual([true, true]);
      expect(await store.getJob('q', added[2]!.id)).toMatchObject({ state: JobState.Completed, result: 'c' });
      // A park used up is gone: the next add waits in the ready list.
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'd' }]));
      await sleep(50);
      expect(received).toHaveLength(1);
      expect((await store.stats('q')).counts.ready).toBe(2);
      channel.close();
    });

    it('hands over the jobs of an add of several priorities lowest first, by number', async () => {
      const { channel, received } = await open();
      expect((await firstValueFrom(store.reserve('q', 2, park(1)))).park).toEqual({
        reclaimed: 0,
        parked: 2,
      });
      // Added in the reverse of their order, and 10 before 9 as strings: 0, then 9, go to the park.
      const added = await firstValueFrom(
        store.enqueue([
          { queue: 'q', data: 'a', priority: 10 },
          { queue: 'q', data: 'b', priority: 9 },
          { queue: 'q', data: 'c' },
        ]),
      );
      await until(() => received.length === 1);
      expect(received[0]!.jobs.map((j) => [j.id, j.data])).toEqual([
        [added[2]!.id, 'c'],
        [added[1]!.id, 'b'],
      ]);
      expect((await store.stats('q')).counts).toMatchObject({ running: 2, ready: 1 });
      const next = await firstValueFrom(store.reserve('q', 5, { leaseMs: 10_000 }));
      expect(next.jobs.map((j) => j.data)).toEqual(['a']);
      channel.close();
    });

    it('hands nothing over while jobs are ready, the queue is paused, or for delayed and grouped jobs', async () => {
      const { channel, received } = await open();
      expect((await firstValueFrom(store.reserve('q', 5, park(1)))).park).toEqual({
        reclaimed: 0,
        parked: 5,
      });
      await store.pause('q');
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'while paused' }]));
      await store.resume('q');
      // Ready jobs go first: a later add may not jump them.
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'later' }]));
      await firstValueFrom(store.reserve('q', 2, { leaseMs: 10_000 }));
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'delayed', delayMs: 60_000 }]));
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'grouped', group: 'g' }]));
      await sleep(100);
      expect(received).toEqual([]);
      // The park is still there: the next reserve takes it back, asking for its jobs too.
      const again = await firstValueFrom(store.reserve('q', 1, park(2, 1)));
      expect(again.jobs.map((j) => j.data)).toEqual(['grouped']);
      expect(again.park).toEqual({ reclaimed: 5, parked: 5 });
      // A reserve of nothing new renews the park.
      const renewed = await firstValueFrom(store.reserve('q', 0, park(3, 2)));
      expect(renewed).toMatchObject({ jobs: [], park: { reclaimed: 5, parked: 5 } });
      await expect(firstValueFrom(store.reserve('q', 0, park(4)))).rejects.toThrow('n ≥ 1');
      expect(await channel.unpark(2)).toBe(0);
      expect(await channel.unpark(3)).toBe(5);
      expect(await channel.unpark(3)).toBe(0);
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'no park' }]));
      await sleep(50);
      expect(received).toEqual([]);
      channel.close();
    });

    it('keeps what a handoff leaves of a park for the next adds, and gives the rest back to its owner', async () => {
      const keys = store.keys.queue('q');
      const { channel, received } = await open();
      await firstValueFrom(store.reserve('q', 5, park(1)));
      await firstValueFrom(
        store.enqueue([
          { queue: 'q', data: 'a' },
          { queue: 'q', data: 'b' },
        ]),
      );
      await until(() => received.length === 1);
      expect(Object.values(await redis.admin.hgetall(`${keys.active}:p`))[0]).toMatch(/^1\|3\|/);
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'c' }]));
      await until(() => received.length === 2);
      expect(received.map((h) => [h.seq, h.parked, h.jobs.map((j) => j.data)])).toEqual([
        [1, 5, ['a', 'b']],
        [1, 3, ['c']],
      ]);
      // Two handoffs, two leases.
      expect(received[0]!.jobs[0]!.lease.token).not.toBe(received[1]!.jobs[0]!.lease.token);
      // The owner's next reserve takes back the two left, and parks them again with its own.
      const again = await firstValueFrom(store.reserve('q', 1, park(2, 1)));
      expect(again.park).toEqual({ reclaimed: 2, parked: 3 });
      expect(await channel.unpark(2)).toBe(3);
      channel.close();
    });

    it('gives a park past its time nothing, and keeps what a handoff leaves of one until its owner takes it back', async () => {
      const { channel, received } = await open();
      await firstValueFrom(store.reserve('q', 1, { ...park(1), park: { id: 'p1', seq: 1, ttlMs: 1 } }));
      await sleep(20);
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'x' }]));
      await sleep(50);
      expect(received).toEqual([]);
      const taken = await firstValueFrom(store.reserve('q', 1, park(2, 1)));
      expect(taken.jobs.map((j) => j.data)).toEqual(['x']);
      expect(taken.park).toEqual({ reclaimed: 1, parked: 1 });
      const short = await firstValueFrom(store.reserve('q', 1, park(3, 2)));
      expect(short.park).toEqual({ reclaimed: 1, parked: 2 });
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'y' }]));
      await until(() => received.length === 1);
      expect(await channel.unpark(3)).toBe(1);
      expect((await firstValueFrom(store.reserve('q', 1, park(4, 3)))).park).toEqual({
        reclaimed: 0,
        parked: 1,
      });
      channel.close();
    });

    it('recovers the jobs of a handoff nobody received, counting the attempt', async () => {
      const { channel, received } = await open();
      await firstValueFrom(store.reserve('q', 2, { ...park(1), leaseMs: 100 }));
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'received' }]));
      await until(() => received.length === 1);
      // Nobody listens to the next park (its worker is gone): its jobs come back with lease recovery.
      channel.close();
      await firstValueFrom(store.reserve('q', 1, { ...park(2), leaseMs: 100 }));
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'lost' }]));
      await sleep(200);
      const { recovered } = await firstValueFrom(store.recoverExpired('q'));
      expect(recovered).toHaveLength(2);
      const again = await firstValueFrom(store.reserve('q', 5, { leaseMs: 10_000 }));
      expect(again.jobs.map((j) => [j.data, j.attempt]).sort()).toEqual([
        ['lost', 2],
        ['received', 2],
      ]);
    });
  });

  it('recovers a lease an earlier version left on the job record, counting its attempt once', async () => {
    const keys = store.keys.queue('q');
    const [added] = await firstValueFrom(store.enqueue([{ queue: 'q', data: 'old' }]));
    const id = added!.id;
    // As a version with a lease per job left it: off the ready list, the lease and the attempt on
    // the record, the job id in the active zset at its deadline (passed).
    await redis.admin.lpop(`${keys.readyPrefix}0`);
    await redis.admin.zrem(keys.priorities, '0');
    await redis.admin.hset(keys.jobPrefix + id, 'k', '7.1000', 'g', '1000', 'a', '1');
    await redis.admin.zadd(keys.active, '1001', id);
    const { recovered } = await firstValueFrom(store.recoverExpired('q'));
    expect(recovered).toEqual([id]);
    expect(await redis.admin.zcard(keys.active)).toBe(0);
    const { jobs } = await firstValueFrom(store.reserve('q', 1, { leaseMs: 10_000 }));
    expect(jobs.map((j) => [j.id, j.attempt])).toEqual([[id, 2]]);
    expect((await store.getJob('q', id))?.errors.map((e) => e.attempt)).toEqual([1]);
  });

  it('counts per-call limits as ceil(jobs / jobsPerCall) calls and spends nothing on an empty queue', async () => {
    const limit = { allowed: 3, periodMs: 60_000, per: 'call' as const, jobsPerCall: 4 };
    expect((await firstValueFrom(store.reserve('q', 10, { leaseMs: 1000, limit }))).jobs).toHaveLength(0);
    await firstValueFrom(store.enqueue(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n }))));
    expect((await firstValueFrom(store.reserve('q', 5, { leaseMs: 1000, limit }))).jobs).toHaveLength(5); // 2 calls
    const last = await firstValueFrom(store.reserve('q', 20, { leaseMs: 1000, limit }));
    expect(last.jobs).toHaveLength(4); // 1 call left
    expect(last.retryAfterMs).toBeGreaterThan(59_000);
  });

  it('reports live workers and rate-limit usage for dashboards', async () => {
    const other = await peer();
    const info = { id: 'w-1', host: 'h', pid: 1, startedAt: 5, pipelines: [] };
    await store.reportWorker(info, 200);
    await other.reportWorker({ ...info, id: 'w-2' }, 10_000);
    const live = await other.workers();
    expect(live.map((w) => w.id)).toEqual(['w-1', 'w-2']);
    expect(live[0]).toMatchObject({ ...info, lastSeenAt: expect.any(Number) as number });
    await sleep(250);
    expect((await store.workers()).map((w) => w.id)).toEqual(['w-2']);

    await firstValueFrom(store.enqueue(Array.from({ length: 7 }, (_, n) => ({ queue: 'q', data: n }))));
    const limit = { key: 'api', allowed: 5, periodMs: 1000 };
    await firstValueFrom(store.reserve('q', 3, { leaseMs: 1000, limit }));
    await firstValueFrom(store.reserve('q', 3, { leaseMs: 1000, limit }));
    expect(await other.rateLimitUsage('q', 'api', 1000)).toBe(5);
    expect(await other.rateLimitUsage('q', 'unused', 1000)).toBe(0);
  });

  it('runs a batching, rate-limited pipeline of a Worker to the end', async () => {
    const jobs = 300;
    await firstValueFrom(
      store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'batches', data: n }))),
    );
    const calls: number[] = [];
    const worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [
        definePipeline<number, number>({
          queue: 'batches',
          concurrency: 3,
          batch: { size: 25, timeMs: 20 },
          rateLimit: { allowed: 100, periodMs: 1000, per: 'call' },
          handler: (batch) => {
            calls.push(batch.length);
            return perJob(batch.map((j) => j.data * 2));
          },
        }),
      ],
    });
    let done = 0;
    const finished = new Promise<void>((resolve) => {
      worker.outcomes$.subscribe((o) => {
        if (o.kind === 'completed' && ++done === jobs) resolve();
      });
    });
    worker.start();
    await finished;
    await worker.close({ timeoutMs: 2000 });
    expect(calls.reduce((a, b) => a + b, 0)).toBe(jobs);
    expect(Math.max(...calls)).toBeLessThanOrEqual(25);
    const stats = await store.stats('batches');
    expect(stats.totals.completed).toBe(jobs);
    expect((await store.listJobs('batches', JobState.Completed, { limit: 1 }))[0]?.result).toEqual(
      expect.any(Number),
    );
  });

  it('a cancel from another process fires the running handler’s AbortSignal and records the job as cancelled', async () => {
    const queue = new Queue<{ n: number }>(store, 'long');
    const { id } = await queue.add({ n: 1 });
    let signal: AbortSignal | undefined;
    let handlerStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      handlerStarted = resolve;
    });
    const worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [
        definePipeline({
          queue: 'long',
          handler: (_job, ctx) =>
            new Promise((resolve) => {
              signal = ctx.signal;
              handlerStarted();
              ctx.signal.addEventListener('abort', () => {
                resolve('stopped');
              });
            }),
        }),
      ],
    });
    const outcome = firstValueFrom(worker.outcomes$.pipe(take(1), timeout(10_000)));
    worker.start();
    await started;
    const other = await peer(); // another process's connection
    expect(await other.cancel('long', id)).toBe('signalled');
    expect(await outcome).toMatchObject({ kind: 'cancelled', job: { id } });
    expect(signal?.aborted).toBe(true);
    expect(String((signal?.reason as Error | undefined)?.message)).toMatch(/cancelled/);
    expect((await store.getJob('long', id))?.state).toBe('cancelled');
    await worker.close({ timeoutMs: 1000 });
  });

  it('drains and obliterates in bounded script calls, leaving no key of the queue behind', async () => {
    const small = await RedisStore.connect({ url: redis.url, prefix: fx.prefix, maxDrainPerCall: 3 });
    others.push(small);
    const keys = small.keys.queue('big');
    const queueBase = keys.settings.slice(0, -'st'.length);
    const scriptCalls = (name: 'drain' | 'obliterate'): (() => number) => {
      const sha = scripts()[name].sha;
      const spy = jest.spyOn(small.client, 'evalsha');
      return () => spy.mock.calls.filter((call) => call[0] === sha).length;
    };
    const add = (jobs: Parameters<RedisStore['enqueue']>[0]) => firstValueFrom(small.enqueue(jobs));
    await add(
      Array.from({ length: 20 }, (_, i) => ({
        queue: 'big',
        data: i,
        priority: i % 4,
        ...(i % 5 === 0 ? { delayMs: 60_000 } : {}),
        ...(i % 7 === 0 ? { unique: { key: `u${i}`, ttlMs: 60_000 } } : {}),
      })),
    );
    const drains = scriptCalls('drain');
    expect(await small.drain('big')).toBe(20);
    expect(drains()).toBeGreaterThanOrEqual(7);
    expect(await redis.admin.keys(`${queueBase}u:*`)).toEqual([]);
    jest.restoreAllMocks();

    // Jobs in every state, locks, history, events, settings and configuration; then one running job.
    await small.setQueueConfig('big', { retention: { keep: 'count', count: 100 } });
    await add(
      Array.from({ length: 12 }, (_, i) => ({
        queue: 'big',
        data: i,
        unique: { key: `k${i}`, ttlMs: 60_000 },
      })),
    );
    const { jobs } = await firstValueFrom(small.reserve('big', 8, { leaseMs: 10_000 }));
    await firstValueFrom(
      small.settle([
        ...jobs.slice(0, 2).map((j) => completed(j, j.data)),
        // Completed with no result: in the finished index (includes/leases.lua), which goes too.
        ...jobs.slice(2, 4).map((j) => completed(j, undefined)),
        ...jobs.slice(4, 7).map((j): Settlement => ({ ...base(j), kind: 'dead', reason: 'x' })),
      ]),
    );
    await add([{ queue: 'big', data: 'later', delayMs: 60_000 }]);
    await small.setConcurrency('big', 2);
    expect((await redis.admin.keys(`${queueBase}*`)).length).toBeGreaterThan(10);
    await expect(small.obliterate('big')).rejects.toMatchObject({
      code: 'ERR_SLUICE_QUEUE_BUSY',
      running: 1,
    });
    const obliterates = scriptCalls('obliterate');
    expect(await small.obliterate('big', { force: true })).toEqual({ jobs: 13, running: 1 });
    expect(obliterates()).toBeGreaterThanOrEqual(5);
    const running = jobs[7]!;
    await firstValueFrom(small.settle([completed(running, 'late')]));
    await firstValueFrom(small.extendLeases('big', [base(running)], 10_000));
    await small.updateJob('big', base(running), { progress: 1 });
    await firstValueFrom(small.recoverExpired('big'));
    // Only the settings version is kept, so workers still listening order later changes after it.
    expect(await redis.admin.keys(`${queueBase}*`)).toEqual([keys.settings]);
    expect(Object.keys(await redis.admin.hgetall(keys.settings))).toEqual(['v']);
    expect(await small.queues()).not.toContain('big');
  });

  it('lists an obliterated queue again once another process adds to it', async () => {
    const producer = await peer();
    await firstValueFrom(producer.enqueue([{ queue: 'again', data: 1 }]));
    await store.ready();
    expect(await store.obliterate('again')).toEqual({ jobs: 1, running: 0 });
    expect(await store.queues()).not.toContain('again');
    // The producer hears of the obliteration over pub/sub and registers the queue on a later add.
    for (let i = 0; i < 100 && !(await store.queues()).includes('again'); i++) {
      await firstValueFrom(producer.enqueue([{ queue: 'again', data: 2 }]));
      await sleep(20);
    }
    expect(await store.queues()).toContain('again');
  });

  it('pages a filtered listing over several bounded script calls', async () => {
    const small = await RedisStore.connect({ url: redis.url, prefix: fx.prefix, listScanPerCall: 2 });
    others.push(small);
    const listCalls = (() => {
      const sha = scripts()['list-jobs'].sha;
      const spy = jest.spyOn(small.client, 'evalsha');
      return () => spy.mock.calls.filter((call) => call[0] === sha).length;
    })();
    await firstValueFrom(
      small.enqueue(
        Array.from({ length: 11 }, (_, i) => ({
          queue: 'f',
          data: i,
          name: i % 3 === 0 ? 'a' : 'b',
          priority: i % 2,
        })),
      ),
    );
    // Ready order: priority 0 (even data) first, then priority 1 (odd data); name a: 0, 3, 6, 9.
    const page = await small.listJobs('f', JobState.Ready, { name: 'a', offset: 1, limit: 2 });
    expect(page.map((j) => j.data)).toEqual([6, 3]);
    expect(listCalls()).toBeGreaterThan(2);
    expect((await small.listJobs('f', JobState.Ready, { name: 'a', limit: 50 })).map((j) => j.data)).toEqual([
      0, 6, 3, 9,
    ]);
    jest.restoreAllMocks();
  });

  it('holds full groups out of the ring: 300 groups over their limit cost a reserve no work until due', async () => {
    const groups = 300;
    const rules = { leaseMs: 10_000, groups: { rateLimit: { allowed: 1, periodMs: 5_000 } } };
    await firstValueFrom(
      store.enqueue(
        Array.from({ length: groups * 2 }, (_, n) => ({ queue: 'q', data: n, group: `g${n % groups}` })),
      ),
    );
    // One job of every group fits its window; the second of each is held back with its group.
    expect((await firstValueFrom(store.reserve('q', 1000, rules))).jobs).toHaveLength(groups);
    const keys = store.keys.queue('q');
    expect(await redis.admin.zcard(`${keys.groupPrefix}d`)).toBe(groups);
    // Nothing is left in the ready lists: the next reserve pops nothing and touches no group.
    expect(await redis.admin.zcard(keys.priorities)).toBe(0);
    const next = await firstValueFrom(store.reserve('q', 1000, rules));
    expect(next.jobs).toHaveLength(0);
    expect(next.nextCheckInMs).toBeGreaterThan(4_000);
    // Each group's log lives in the queue's hash slot and expires.
    const log = `${keys.groupPrefix}l:g0`;
    expect(await redis.admin.hget(log, 'n')).toBe('1');
    expect(await redis.admin.pttl(log)).toBeGreaterThan(0);
    // Numbers set for one group are stored on its log and stay.
    await store.setGroupLimit('q', 'g0', { allowed: 5, periodMs: 5_000 });
    expect(await redis.admin.hmget(log, 'oA', 'oP')).toEqual(['5', '5000']);
    expect(await redis.admin.pttl(log)).toBe(-1);
  });
});

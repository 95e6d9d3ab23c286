import {
  DEFAULT_RETENTION,
  ErrorCode,
  InvalidArgumentError,
  OutcomeKind,
  partitionName,
  type Settlement,
} from '@sluice/core';
import { CLUSTER_SLOTS, KeyBuilder, keySlot, partitionTag, RedisScriptError } from '@sluice/redis';
import {
  decodeTrace,
  encodeNewJob,
  encodeRetention,
  encodeSettlement,
  encodeSettlements,
  settleHint,
  readEvents,
  compactFieldsOf,
  readInt,
  jobFieldsOf,
  readLeasedRecords,
  toCompactJob,
  readRecord,
  readSettleCodes,
  readSettingsMessage,
  Reply,
  SCRIPT_DEFAULTS,
  SETTLE_FIELDS,
  toReservedJob,
} from '../src/codec';
import { compareStreamIds } from '../src/stream-reader';

describe('KeyBuilder', () => {
  it('puts every key of a queue under one hash tag', () => {
    const keys = new KeyBuilder({ prefix: 'shop', cluster: false }).queue('emails');
    const values = Object.values(keys as unknown as Record<string, string>);
    for (const key of [
      keys.settings,
      keys.priorities,
      keys.scheduled,
      keys.active,
      keys.dead,
      keys.finished,
    ]) {
      expect(key.startsWith('shop:{emails}:')).toBe(true);
    }
    expect(keys.jobPrefix + '42').toBe('shop:{emails}:j:42');
    // All distinct, except that the queue name and its tag are the same string.
    expect(new Set(values).size).toBe(values.length - 1);
  });

  it("keeps a queue's group keys in its hash slot, apart from every other key", () => {
    const keys = new KeyBuilder({ prefix: 'shop', cluster: false }).queue('emails');
    expect(keys.groupPrefix).toBe('shop:{emails}:g');
    // The group keys (see lua/includes/groups.lua) meet no other key or key prefix of the queue.
    const groupKeys = ['s:', 'w:', 'i', 'n', 'p'].map((suffix) => keys.groupPrefix + suffix);
    for (const [name, value] of Object.entries(keys as unknown as Record<string, string>)) {
      if (name === 'groupPrefix' || name === 'queue' || name === 'tag') continue;
      for (const g of groupKeys) {
        expect([name, value.startsWith(g) || g.startsWith(value)]).toEqual([name, false]);
      }
    }
  });

  it('keeps queues that share a hash tag apart, and ignores a trailing colon in the prefix', () => {
    const builder = new KeyBuilder({ prefix: 'p:', cluster: true, hashTag: () => 'shared' });
    const a = builder.queue('a');
    const b = builder.queue('a:j');
    expect(a.settings).toBe('p:{shared}{a}:st');
    expect(b.settings).toBe('p:{shared}{a:j}:st');
    // Job "st" of queue "a" and the settings of queue "a:j" do not collide.
    const all = (k: object): string[] =>
      Object.values(k as Record<string, string>).filter((v) => v.includes('{'));
    const ofA = new Set(all(a));
    for (const key of all(b)) expect(ofA.has(key)).toBe(false);
    expect(a.jobPrefix + 'st').not.toBe(b.settings);
    expect(builder.limiter('a', 'smtp')).toBe('p:{shared}:rl:smtp');
    expect(new KeyBuilder({ prefix: 'p', cluster: false }).limiter('a', 'smtp')).toBe('p:rl:smtp');
  });

  it('refuses prefixes and tags with braces, and invalid queue names', () => {
    expect(() => new KeyBuilder({ prefix: 'a{b', cluster: false })).toThrow(InvalidArgumentError);
    expect(() => new KeyBuilder({ prefix: 'p', cluster: true, hashTag: () => 'x}' }).queue('q')).toThrow(
      InvalidArgumentError,
    );
    expect(() => new KeyBuilder({ prefix: 'p', cluster: false }).queue('bad name')).toThrow(/queue name/);
  });
});

describe('codec', () => {
  it('sends only options that differ from their defaults, each as a letter and a value', () => {
    expect(encodeNewJob({ queue: 'q', data: { a: 1 } })).toEqual([0, '{"a":1}']);
    expect(encodeNewJob({ queue: 'q', data: 1, cost: 1, priority: 0, name: 'q' })).toEqual([0, '1']);
    expect(encodeNewJob({ queue: 'q', data: 1, group: 'customer-42' })).toEqual([1, '1', 'G', 'customer-42']);
    expect(
      encodeNewJob({
        queue: 'q',
        name: 'send',
        data: 'x',
        id: 'i',
        priority: 3,
        delayMs: 10,
        maxAttempts: 2,
        timeoutMs: 5,
        unique: { key: 'u', ttlMs: 1.5 },
        retention: { keep: 'age', ageMs: 60_000 },
        cost: 7,
        trace: {
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: 'a=1, b=2',
        },
        group: 'tenant-1',
      }),
    ).toEqual([
      12,
      '"x"',
      'i',
      'i',
      'n',
      'send',
      'p',
      3,
      'D',
      10,
      'm',
      2,
      't',
      5,
      'u',
      'u',
      'U',
      2,
      'R',
      'a60000',
      'q',
      7,
      'T',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 a=1, b=2',
      'G',
      'tenant-1',
    ]);
    expect(decodeTrace('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 a=1, b=2')).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'a=1, b=2',
    });
    expect(decodeTrace('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
    expect(encodeRetention({ keep: 'none' })).toBe('n');
    expect(encodeRetention({ keep: 'count', count: 10 })).toBe('c10');
  });

  it("reads the fields a worker needs from a reserve's leased records, skipping the rest, then the next value", () => {
    const strings = ['d', '{"n":1}', 'k', 'old-token', 'e1', '{"message":"x"}', 'a', '2', 'G', 'g1'];
    const plain = ['d', '"p"', 'c', '5'];
    // How many strings follow, then each job's id, its record's count and strings, all joined by NUL.
    const nul = (...strings: string[]): string => strings.join('\0');
    const joined = (...jobs: [string, string[]][]): string =>
      jobs.map(([id, r]) => [id, String(r.length), ...r].join('\0')).join('\0');
    const reply = new Reply([18, joined(['7', strings], ['8', plain]), 'next'], 'reserve');
    const {
      ids,
      fields: [fields, second],
    } = readLeasedRecords(reply, 2);
    expect(ids).toEqual(['7', '8']);
    expect(fields).toEqual({ d: '{"n":1}', a: '2', G: 'g1' });
    expect(second).toEqual({ d: '"p"', c: '5' });
    expect(reply.str()).toBe('next');
    // No jobs: no strings.
    const none = new Reply([0, '', 'next'], 'reserve');
    expect(readLeasedRecords(none, 0)).toEqual({ ids: [], fields: [] });
    expect(none.str()).toBe('next');
    // A record of no strings (its count alone) next to others.
    expect(readLeasedRecords(new Reply([8, joined(['1', []], ['2', plain])], 'reserve'), 2)).toEqual({
      ids: ['1', '2'],
      fields: [{}, { d: '"p"', c: '5' }],
    });
    // A record or an id holding a NUL splits into more strings than there are: the ids are to be read
    // from the lease and every record of the call again by itself (`undefined`), and the reply goes
    // on after them.
    const withNul = new Reply(
      [20, joined(['7', [...strings, 'n', 'a\0b']], ['8', plain]), 'next'],
      'reserve',
    );
    expect(readLeasedRecords(withNul, 2)).toEqual({ ids: undefined, fields: [undefined, undefined] });
    expect(withNul.str()).toBe('next');
    const idWithNul = new Reply([6, joined(['a\0b', plain])], 'reserve');
    expect(readLeasedRecords(idWithNul, 1)).toEqual({ ids: undefined, fields: [undefined] });
    // Fewer strings than the count given, or counts that do not add up: the reply is malformed.
    expect(() => readLeasedRecords(new Reply([6, nul('7', '4', 'd', 'x', 'y')], 'reserve'), 1)).toThrow(
      /malformed reply: 1 jobs of 6 strings joined by NUL split into 5/,
    );
    expect(() => readLeasedRecords(new Reply([6, nul('7', '3', 'd', 'x', 'c', 'y')], 'reserve'), 1)).toThrow(
      /malformed reply: job 1 of 1 claims 3 strings/,
    );
    expect(() =>
      readLeasedRecords(new Reply([7, nul('7', '2', 'd', 'x', 'c', 'y', 'z')], 'reserve'), 1),
    ).toThrow(/malformed reply: 1 jobs hold 4 of 7 strings/);
    // A record read by itself (HGETALL), kept the same way.
    expect(jobFieldsOf({ d: '{"n":1}', k: 'old-token', a: '2', G: 'g1', n: 'a\0b' })).toEqual({
      ...fields,
      n: 'a\0b',
    });
    expect(
      toReservedJob('q', '7', { ...fields, c: '5' }, { token: 't', expiresAt: 20, startedAt: 10 }),
    ).toEqual(expect.objectContaining({ id: '7', data: { n: 1 }, attempt: 3, createdAt: 5 }));
  });

  it("reads a reserve's compact form: the ids and the compact values, each joined by NUL bytes", () => {
    const value = (created: string, data: string): string => `c\0${created}\0d\0${data}`;
    const reply = new Reply(
      [-1, '7\x008', [value('5', '{"n":1}'), value('6', '"p"')].join('\0'), 'next'],
      'reserve',
    );
    // The values' strings as they are, 4 a job (checked), for toCompactJob: no fields object per job.
    expect(readLeasedRecords(reply, 2)).toEqual({
      ids: ['7', '8'],
      fields: [undefined, undefined],
      compact: ['c', '5', 'd', '{"n":1}', 'c', '6', 'd', '"p"'],
    });
    expect(reply.str()).toBe('next');
    // No jobs: two empty strings; anything else there is a malformed reply.
    const none = new Reply([-1, '', '', 'next'], 'reserve');
    expect(readLeasedRecords(none, 0)).toEqual({ ids: [], fields: [] });
    expect(none.str()).toBe('next');
    expect(() => readLeasedRecords(new Reply([-1, '7', value('5', '1')], 'reserve'), 0)).toThrow(
      /malformed reply: no jobs leased, but ids or records answered/,
    );
    // What the script did not look at is checked here. Each of these leaves every record to be read
    // again by itself (`undefined`), and the reply goes on after them:
    const undecided = (ids: string, values: string[], count: number) => {
      const r = new Reply([-1, ids, values.join('\0'), 'next'], 'reserve');
      const read = readLeasedRecords(r, count);
      expect(r.str()).toBe('next');
      return read;
    };
    const all = (n: number): undefined[] => new Array<undefined>(n).fill(undefined);
    // a value of another shape (fewer strings than 4 per job), the ids still one per job;
    expect(undecided('7\x008', [value('5', '1'), 'garbage'], 2)).toEqual({ ids: ['7', '8'], fields: all(2) });
    // a payload holding a NUL byte (more strings);
    expect(undecided('7\x008', [value('5', '1'), value('6', '"a\0b"')], 2)).toEqual({
      ids: ['7', '8'],
      fields: all(2),
    });
    // 4 strings a job, but not `c`, created-at, `d`, data;
    expect(undecided('7\x008', [value('5', '1'), 'x\0y\0z\0w'], 2)).toEqual({
      ids: ['7', '8'],
      fields: all(2),
    });
    expect(undecided('7\x008', ['d\x005\x00c\x001', value('6', '2')], 2)).toEqual({
      ids: ['7', '8'],
      fields: all(2),
    });
    // an id holding a NUL byte: the ids are read from the lease as well.
    expect(undecided('a\0b', [value('5', '1')], 1)).toEqual({ ids: undefined, fields: all(1) });
    expect(undecided('a\x00b\x008', [value('5', '1'), value('6', '2')], 2)).toEqual({
      ids: undefined,
      fields: all(2),
    });
  });

  it('turns a compact record into the job toReservedJob makes of its two fields, or the same reason', () => {
    const lease = { token: 't', expiresAt: 20, startedAt: 10 };
    for (const [c, d] of [
      ['5', '{"n":1}'],
      ['1700000000000', '"p"'],
      ['', 'null'],
      ['soon', '{}'],
      ['5', '{"to": oops'],
      ['5', ''],
    ] as const) {
      expect(toCompactJob('q', '7', c, d, lease)).toStrictEqual(toReservedJob('q', '7', { c, d }, lease));
    }
    expect(toCompactJob('q', '7', '5', '{"n":1}', lease)).toEqual(
      expect.objectContaining({ id: '7', name: 'q', attempt: 1, createdAt: 5, runAt: 5, data: { n: 1 } }),
    );
  });

  it('turns a leased record into a job, or says why it cannot be one', () => {
    const lease = { token: 't', expiresAt: 20, startedAt: 10 };
    const ok = toReservedJob('q', '7', { d: '{"n":1}', c: '5', a: '1', p: '2' }, lease);
    expect(ok).toEqual({
      id: '7',
      queue: 'q',
      name: 'q',
      data: { n: 1 },
      attempt: 2,
      maxAttempts: 5,
      priority: 2,
      createdAt: 5,
      runAt: 5,
      lease,
    });
    // Made with `new` (V8 may pretenure an object literal's site), with no optional property unset.
    const job = ok as object;
    expect(Object.getPrototypeOf(job)).not.toBe(Object.prototype);
    expect(Object.keys(job)).toHaveLength(10);
    const full = toReservedJob('q', '8', { d: '1', c: '5', t: '9', u: 'k', q: '2', G: 'g' }, lease);
    expect(full).toMatchObject({ timeoutMs: 9, uniqueKey: 'k', cost: 2, group: 'g' });
    expect(toReservedJob('q', '7', { c: '5' }, lease)).toMatch(/no data/);
    expect(toReservedJob('q', '7', { d: '{', c: '5' }, lease)).toMatch(/not JSON/);
    expect(toReservedJob('q', '7', { d: '1', c: '5', m: 'x' }, lease)).toMatch(/field m/);
  });

  it('sends each settlement with its kind named as the outcome is', () => {
    const base = { queue: 'q', id: '7', token: 't' };
    const error = { name: 'E', message: 'm' };
    const settlements: Settlement[] = [
      { ...base, kind: 'completed', result: { ok: true }, durationMs: 1 },
      { ...base, kind: 'retrying', delayMs: 12.2, error },
      { ...base, kind: 'dead', reason: 'gone', error },
      { ...base, kind: 'snoozed', delayMs: -5 },
      { ...base, kind: 'cancelled', reason: 'asked' },
    ];
    const encoded = settlements.map((s) => encodeSettlement(s));
    for (const values of encoded) expect(values).toHaveLength(SETTLE_FIELDS);
    expect(encoded.map((v) => v[2])).toEqual(Object.values(OutcomeKind));
    expect(encoded).toEqual([
      ['7', 't', 'completed', '{"ok":true}', '', ''],
      ['7', 't', 'retrying', '13', '{"name":"E","message":"m"}', ''],
      ['7', 't', 'dead', 'gone', '{"name":"E","message":"m"}', ''],
      ['7', 't', 'snoozed', '0', '', ''],
      ['7', 't', 'cancelled', 'asked', '', ''],
    ]);
    expect(encodeSettlement(settlements[0] as Settlement, '1|2||g')[5]).toBe('1|2||g');
    // The token of the settlement sent before it is not sent again.
    expect(encodeSettlement(settlements[0] as Settlement, '', 't')[1]).toBe('');
    expect(encodeSettlement(settlements[0] as Settlement, '', 'u')[1]).toBe('t');
  });

  it('sends the completed jobs of a lease as one run, one value per job, and any other settlement whole', () => {
    const done = (id: string, token: string, result?: unknown): Settlement => ({
      queue: 'q',
      id,
      token,
      kind: 'completed',
      result,
      durationMs: 0,
    });
    const settlements: Settlement[] = [
      done('1', 't'),
      done('2', 't'),
      done('3', 't', { ok: 1 }), // a result: sent whole
      done('4', 't'),
      done('5', 'u'),
      { queue: 'q', id: '6', token: 'u', kind: 'retrying', delayMs: 5, error: { name: 'E', message: 'm' } },
      done('7', 'u'),
      done('8', 'u'), // its hint is not the default: sent whole
      done('9', 'v'),
      done('10\0x', 'v'), // a NUL in its id: sent whole (a `C` entry's event joins its ids by NUL)
    ];
    const asked: string[] = [];
    const args: (string | number)[] = ['fixed'];
    encodeSettlements(
      settlements,
      (s) => {
        asked.push(s.id);
        return s.id === '8' ? '1|||' : '|||';
      },
      args,
    );
    expect(asked).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10\0x']);
    expect(args).toEqual([
      'fixed',
      ...['C', 't', 2, '1\x002'],
      ...['S', '3', '', 'completed', '{"ok":1}', '', '|||'],
      ...['C', '', 1, '4'],
      ...['C', 'u', 1, '5'],
      ...['S', '6', '', 'retrying', '5', '{"name":"E","message":"m"}', '|||'],
      ...['C', '', 1, '7'],
      ...['S', '8', '', 'completed', '', '', '1|||'],
      ...['C', 'v', 1, '9'],
      ...['S', '10\0x', '', 'completed', '', '', '|||'],
    ]);
  });

  it("reads a settle's codes, one character per settlement", () => {
    expect(readSettleCodes(Reply.of(['102'], 'settle'), 3)).toBe('102');
    expect(() => readSettleCodes(Reply.of(['10'], 'settle'), 3)).toThrow(/expected 3 settle codes/);
    expect(() => readSettleCodes(Reply.of(['1x2'], 'settle'), 3)).toThrow(RedisScriptError);
    expect(() => readSettleCodes(Reply.of([1], 'settle'), 1)).not.toThrow();
  });

  it('hints a settle with the record fields it would otherwise read', () => {
    expect(settleHint({ d: '{}', c: '1' })).toBe('|||');
    expect(settleHint({ d: '{}', c: '1', a: '2', p: '-3', R: 'c10a500', G: 'a|b' })).toBe('2|-3|c10a500|a|b');
    // The record as the reserve answers it keeps R for the hint (and nothing else unknown).
    const reply = Reply.of([8, ['1', '6', 'R', 'n', 'G', 'g', 'x', 'y'].join('\0')], 'test');
    expect(readLeasedRecords(reply, 1).fields).toEqual([{ R: 'n', G: 'g' }]);
  });

  it('passes the defaults of @sluice/core to the scripts', () => {
    expect(SCRIPT_DEFAULTS.defaultRetention).toBe(encodeRetention(DEFAULT_RETENTION));
    expect(SCRIPT_DEFAULTS.defaultRetention).toBe('c1000');
    expect(JSON.parse(SCRIPT_DEFAULTS.leaseExpiredErrorJson)).toEqual({
      name: 'LeaseExpiredError',
      message: 'lease expired on attempt {attempt}: the worker crashed or stalled',
    });
  });

  it('throws a RedisScriptError (ERR_SLUICE_SCRIPT) naming the script for a malformed reply', () => {
    const caught = (fn: () => unknown): RedisScriptError => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(RedisScriptError);
        return error as RedisScriptError;
      }
      throw new Error('expected a throw');
    };
    const notArray = caught(() => Reply.of('OK', 'sluice:stats:abc', 'emails'));
    expect(notArray).toMatchObject({
      code: ErrorCode.Script,
      script: 'sluice:stats:abc',
      queue: 'emails',
      message: 'sluice:stats:abc: expected an array reply, got "OK"',
    });
    expect(caught(() => new Reply([], 'sluice:settle:abc').int())).toMatchObject({
      code: 'ERR_SLUICE_SCRIPT',
      message: 'sluice:settle:abc: malformed reply: too short',
    });
    expect(caught(() => new Reply(['x'], 's').int()).message).toBe(
      's: malformed reply: expected a number, got "x"',
    );
    expect(caught(() => new Reply([[1]], 's').str()).message).toBe(
      's: malformed reply: expected a string, got an array',
    );
    expect(caught(() => new Reply([{}], 's').opt()).code).toBe(ErrorCode.Script);
    expect(caught(() => readInt(null, 'sluice:cancel:abc', 'q'))).toMatchObject({
      code: ErrorCode.Script,
      script: 'sluice:cancel:abc',
      queue: 'q',
    });
    expect(caught(() => readRecord(new Reply(['1', '?', null, 0], 'sluice:get-job:abc'), 'q')).message).toBe(
      'sluice:get-job:abc: malformed reply: unknown job state code "?"',
    );
    expect(readInt('42', 's')).toBe(42);
  });

  it('reads a compact record whole, its data NUL bytes and all, and any other value as data alone', () => {
    expect(compactFieldsOf('c\u00001700000000000\u0000d\u0000{"to":"a"}')).toEqual({
      c: '1700000000000',
      d: '{"to":"a"}',
    });
    expect(compactFieldsOf('c\u00005\u0000d\u0000"a\u0000b"')).toEqual({ c: '5', d: '"a\u0000b"' });
    expect(compactFieldsOf('garbage')).toEqual({ d: 'garbage' });
    expect(compactFieldsOf('c\u0000soon\u0000d\u00001')).toEqual({ d: 'c\u0000soon\u0000d\u00001' });
    // The bucket of an id: the id less its last four digits.
    const builder = new KeyBuilder({ prefix: 'p', cluster: false });
    const keys = builder.queue('q');
    expect(keys.compactPrefix).toBe('p:{q}:c:');
    expect(builder.compact('q', '123456')).toBe(`${keys.compactPrefix}12`);
    expect(builder.compact('q', '9999')).toBe(keys.compactPrefix);
  });

  it('reads every outcome of a batched stream entry', () => {
    const events = readEvents('q', [
      't',
      '100',
      'i',
      '1',
      'k',
      'completed',
      'r',
      '{"ok":true}',
      'i',
      '2',
      'k',
      'dead',
      'x',
      'gone',
      'e',
      '{"name":"E","message":"m"}',
      'i',
      '3',
      'k',
      '?',
      // Completed with no result: the id alone.
      'c',
      '4',
      'c',
      '5',
      'i',
      '6',
      'k',
      'retrying',
      // Jobs of one settle entry completed with no result: their ids joined by NUL.
      'C',
      '7\0a b\x00009',
    ]);
    expect(events).toEqual([
      { queue: 'q', id: '1', kind: 'completed', at: 100, result: { ok: true } },
      { queue: 'q', id: '2', kind: 'dead', at: 100, reason: 'gone', error: { name: 'E', message: 'm' } },
      { queue: 'q', id: '4', kind: 'completed', at: 100, result: undefined },
      { queue: 'q', id: '5', kind: 'completed', at: 100, result: undefined },
      { queue: 'q', id: '6', kind: 'retrying', at: 100 },
      { queue: 'q', id: '7', kind: 'completed', at: 100, result: undefined },
      { queue: 'q', id: 'a b', kind: 'completed', at: 100, result: undefined },
      { queue: 'q', id: '009', kind: 'completed', at: 100, result: undefined },
    ]);
  });

  it('reads every outcome kind by its name, and the letters earlier versions wrote', () => {
    const entry = (kinds: readonly string[]): string[] => [
      't',
      '5',
      ...kinds.flatMap((k, i) => ['i', String(i), 'k', k]),
    ];
    const kinds = Object.values(OutcomeKind);
    expect(readEvents('q', entry(kinds)).map((e) => e.kind)).toEqual(kinds);
    expect(readEvents('q', entry(['c', 'r', 'd', 's', 'x'])).map((e) => e.kind)).toEqual([
      'completed',
      'retrying',
      'dead',
      'snoozed',
      'cancelled',
    ]);
  });

  it('reads settings messages and orders stream ids', () => {
    expect(readSettingsMessage('3|1|')).toEqual({ version: 3, settings: { paused: true } });
    expect(readSettingsMessage('4|0|7')).toEqual({ version: 4, settings: { paused: false, concurrency: 7 } });
    expect(readSettingsMessage('garbage')).toBeUndefined();
    expect(compareStreamIds('1700000000000-2', '1700000000000-10')).toBe(-1);
    expect(compareStreamIds('1700000000001-0', '1700000000000-10')).toBe(1);
    expect(compareStreamIds('5-5', '5-5')).toBe(0);
  });
});

describe('Cluster slots', () => {
  it('hashes keys as Redis Cluster does (CRC16/XMODEM of the hash tag, else the key)', () => {
    expect(keySlot('123456789')).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    // An empty tag counts the whole key.
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
  });

  it('tags partition i of n in the middle half of the i-th n-th of the slots, and nothing else', () => {
    for (const n of [1, 2, 3, 6, 16]) {
      for (let i = 0; i < n; i++) {
        const tag = partitionTag(partitionName('orders', i, n));
        expect(tag?.startsWith(`orders~${n}.${i}`)).toBe(true);
        const slot = keySlot(`{${tag}}`);
        expect(slot).toBeGreaterThanOrEqual(Math.floor(((i + 0.25) * CLUSTER_SLOTS) / n));
        expect(slot).toBeLessThan(
          Math.max(
            Math.floor(((i + 0.25) * CLUSTER_SLOTS) / n) + 1,
            Math.floor(((i + 0.75) * CLUSTER_SLOTS) / n),
          ),
        );
      }
    }
    expect(partitionTag('orders')).toBeUndefined();
    expect(new KeyBuilder({ prefix: 'p', cluster: true }).queue(partitionName('orders', 1, 3)).tag).toBe(
      partitionTag('orders~3.1'),
    );
  });
});

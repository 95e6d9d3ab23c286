import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { PayloadNotSerializableError, PayloadValidationError, Queue } from '@sluice/core';
import { Harness } from '../support/harness';
import { report } from '../support/results';

export interface FuzzParams {
  readonly runs: number;
  readonly bulkRuns: number;
  readonly record: boolean;
  readonly timeoutMs: number;
}

const SCHEMA = {
  type: 'object',
  required: ['id', 'tags'],
  additionalProperties: false,
  properties: {
    id: { type: 'integer', minimum: 0 },
    name: { type: 'string', maxLength: 20 },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
    score: { type: 'number' },
    meta: { type: 'object' },
    flag: { type: 'boolean' },
  },
};

const KEYS = new Set(Object.keys(SCHEMA.properties));

/** The schema restated by hand (not through ajv), applied to the JSON form of a payload. */
function matches(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (!keys.every((k) => KEYS.has(k))) return false;
  const v = value as Record<string, unknown>;
  if (!keys.includes('id') || !keys.includes('tags')) return false;
  if (typeof v['id'] !== 'number' || !Number.isInteger(v['id']) || v['id'] < 0) return false;
  const tags = v['tags'];
  if (!Array.isArray(tags) || tags.length > 3 || !tags.every((t) => typeof t === 'string')) return false;
  if (keys.includes('name') && !(typeof v['name'] === 'string' && Array.from(v['name']).length <= 20))
    return false;
  if (keys.includes('score') && typeof v['score'] !== 'number') return false;
  const meta = v['meta'];
  if (keys.includes('meta') && !(typeof meta === 'object' && meta !== null && !Array.isArray(meta)))
    return false;
  if (keys.includes('flag') && typeof v['flag'] !== 'boolean') return false;
  return true;
}

const valid = fc.record(
  {
    id: fc.nat(),
    name: fc.string({ maxLength: 20, unit: 'binary' }),
    tags: fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 3 }),
    score: fc.double({ noNaN: true, noDefaultInfinity: true }),
    meta: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
    flag: fc.boolean(),
  },
  { requiredKeys: ['id', 'tags'] },
);

/** Valid-looking records with one thing wrong, or an awkward value JSON turns into something else. */
const nearlyValid = fc.record(
  {
    id: fc.oneof(
      fc.integer({ min: -3, max: 3 }),
      fc.double(),
      fc.string(),
      fc.constant(null),
      fc.constant(undefined),
    ),
    name: fc.oneof(fc.string({ maxLength: 25, unit: 'binary' }), fc.integer(), fc.constant(undefined)),
    tags: fc.oneof(fc.array(fc.oneof(fc.string(), fc.integer()), { maxLength: 5 }), fc.string()),
    score: fc.oneof(fc.double(), fc.constant(Number.NaN), fc.constant(-0), fc.string()),
    meta: fc.oneof(fc.jsonValue(), fc.constant([])),
    flag: fc.oneof(fc.boolean(), fc.constant('true'), fc.constant(0)),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Hand-written payloads an attacker or a confused client would send. */
const hostile = fc.constantFrom<unknown>(
  JSON.parse('{"id":1,"tags":[],"__proto__":{"polluted":true}}'),
  JSON.parse('{"id":1,"tags":["a"],"constructor":{"prototype":{"polluted":true}}}'),
  JSON.parse('{"id":1,"tags":[],"meta":{"__proto__":{"polluted":true}}}'),
  { id: 1, tags: ['\u0000', '\uD800', 'é'], name: '\u{1F600}'.repeat(20) },
  { id: 1, tags: [], name: '\u{1F600}'.repeat(21) },
  { id: Number.MAX_SAFE_INTEGER + 2, tags: [] },
  { id: 1e21, tags: [] },
  { id: 1, tags: [], score: Number.POSITIVE_INFINITY },
  { id: 1, tags: [], toJSON: () => ({ id: 2, tags: ['from toJSON'] }) },
  { id: 1, tags: [], when: new Date(0) },
  'just a string',
  null,
  [],
  [{ id: 1, tags: [] }],
);

const payload = fc.oneof(
  { arbitrary: valid, weight: 4 },
  { arbitrary: nearlyValid, weight: 3 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 1 },
  {
    arbitrary: fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withNullPrototype: true }),
    weight: 1,
  },
  { arbitrary: hostile, weight: 1 },
);

/** What the add must do with `data`: store this JSON form, or refuse with this error class. */
function expectation(data: unknown):
  | { readonly stored: true; readonly form: unknown }
  | {
      readonly stored: false;
      readonly error: typeof PayloadValidationError | typeof PayloadNotSerializableError;
    } {
  let json: string | undefined;
  try {
    json = (JSON.stringify as (v: unknown) => string | undefined)(data);
  } catch {
    return { stored: false, error: PayloadNotSerializableError };
  }
  if (json === undefined) return { stored: false, error: PayloadNotSerializableError };
  const form: unknown = JSON.parse(json);
  return matches(form) ? { stored: true, form } : { stored: false, error: PayloadValidationError };
}

/**
 * Random payloads through the public `Queue.add` / `addBulk` against a `RedisStore` with a schema:
 * valid ones (by an independent statement of the schema, applied to their JSON form) are stored and
 * read back deep-equal to that form; invalid ones reject with `PayloadValidationError` (or
 * `PayloadNotSerializableError` for values JSON cannot encode) and store nothing — no job, no key,
 * and a bulk add with one bad payload stores none of its payloads.
 */
export function fuzzScenario(p: FuzzParams): void {
  it(
    `Queue.add with ${String(p.runs)} random payloads and addBulk with ${String(p.bulkRuns)} random batches against RedisStore: valid stored and read back deep-equal, invalid refused storing nothing`,
    async () => {
      const h = await Harness.start({ label: 'fuzz' });
      try {
        const queue = new Queue<unknown>(h.store, 'fuzz', { schema: SCHEMA });
        await queue.add({ id: 0, tags: [] }); // the first add stores the schema and registers the queue
        let stored = 1;
        let refused = 0;
        const footprint = async (): Promise<string> =>
          JSON.stringify([(await h.store.stats('fuzz')).totals.enqueued, await h.admin.dbsize()]);

        await fc.assert(
          fc.asyncProperty(payload, async (data) => {
            const expected = expectation(data);
            const before = await footprint();
            const outcome = await queue.add(data).then(
              (r) => ({ ok: true as const, id: r.id }),
              (error: unknown) => ({ ok: false as const, error }),
            );
            if (expected.stored) {
              if (!outcome.ok) throw new Error(`a valid payload was refused: ${String(outcome.error)}`);
              stored++;
              const record = await queue.getJob(outcome.id);
              expect(record?.state).toBe('ready');
              expect(isDeepStrictEqual(record?.data, expected.form)).toBe(true);
              expect(JSON.stringify(record?.data)).toBe(JSON.stringify(expected.form));
            } else {
              if (outcome.ok) throw new Error(`an invalid payload was stored as job ${outcome.id}`);
              refused++;
              expect(outcome.error).toBeInstanceOf(expected.error);
              expect(await footprint()).toBe(before);
            }
          }),
          { numRuns: p.runs },
        );

        let bulkStored = 0;
        let bulkRefused = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(payload, { minLength: 1, maxLength: 6 }), async (batch) => {
            const expected = batch.map(expectation);
            const before = await footprint();
            const outcome = await queue.addBulk(batch.map((data) => ({ data }))).then(
              (r) => ({ ok: true as const, ids: r.map((x) => x.id) }),
              (error: unknown) => ({ ok: false as const, error }),
            );
            if (expected.every((e) => e.stored)) {
              if (!outcome.ok) throw new Error(`a valid batch was refused: ${String(outcome.error)}`);
              bulkStored += batch.length;
              for (const [i, id] of outcome.ids.entries()) {
                const form = expected[i]?.stored ? expected[i].form : undefined;
                expect(isDeepStrictEqual((await queue.getJob(id))?.data, form)).toBe(true);
              }
            } else {
              if (outcome.ok)
                throw new Error(`a batch with an invalid payload was stored (${outcome.ids.join(', ')})`);
              bulkRefused++;
              expect(await footprint()).toBe(before);
            }
          }),
          { numRuns: p.bulkRuns },
        );

        const total = (await h.store.stats('fuzz')).totals.enqueued;
        report(
          {
            scenario: 'fuzz',
            enqueued: total,
            completed: 0,
            dead: 0,
            lost: total - stored - bulkStored,
            duplicated: 0,
            notes: [
              `${String(p.runs)} single adds: ${String(stored - 1)} valid stored and read back deep-equal, ${String(refused)} refused storing nothing; ${String(p.bulkRuns)} bulk adds: ${String(bulkStored)} jobs stored, ${String(bulkRefused)} batches refused whole (no worker runs: "completed" is 0 by design)`,
            ],
          },
          { record: p.record },
        );
        expect(total).toBe(stored + bulkStored);
        expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      } finally {
        await h.dispose();
      }
    },
    p.timeoutMs,
  );
}

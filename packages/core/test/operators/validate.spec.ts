import { of } from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import { compileSchema, validate, type Checked, type Reservation } from '@sluice/core';
import { newTestScheduler, reservedJob } from '../pipeline/helpers';

interface Email {
  readonly to: unknown;
  readonly subject?: unknown;
}

const schema = {
  type: 'object',
  required: ['to'],
  properties: { to: { type: 'string' }, subject: { type: 'string', maxLength: 5 } },
  additionalProperties: false,
};

const good = reservedJob<Email>('a', { to: 'ada@example.com' });
const wrongType = reservedJob<Email>('b', { to: 42 });
const twoViolations = reservedJob<Email>('c', { to: 7, subject: 'far too long' });
const notAnObject = reservedJob<Email>('d', 'hello' as unknown as Email);
const extraKey = reservedJob<Email>('e', { to: 'x', cc: 'y' } as Email);

describe('validate', () => {
  let testScheduler: TestScheduler;

  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  it('splits each reservation into valid jobs and invalid ones with the violations', () => {
    testScheduler.run(({ hot, expectObservable, expectSubscriptions }) => {
      const grant = { at: 5, storeNow: 5, sentAt: 4, receivedAt: 6 };
      const reserved = hot<Reservation<Email>>('-x---y--|', {
        x: { jobs: [good, wrongType, twoViolations], grant },
        y: { jobs: [notAnObject, extraKey] },
      });
      const expected = '                                   -X---Y--|';
      const sub = '                                      ^-------!';
      expectObservable(reserved.pipe(validate<Email>(compileSchema(schema)))).toBe(expected, {
        X: {
          valid: { jobs: [good], grant }, // the grant travels with the valid jobs
          invalid: [
            {
              job: wrongType,
              durationMs: 0,
              status: 'invalid',
              reason: 'payload failed the schema: /to must be string',
            },
            {
              job: twoViolations,
              durationMs: 0,
              status: 'invalid',
              reason:
                'payload failed the schema: /to must be string; /subject must NOT have more than 5 characters',
            },
          ],
        } satisfies Checked<Email>,
        Y: {
          valid: { jobs: [] },
          invalid: [
            {
              job: notAnObject,
              durationMs: 0,
              status: 'invalid',
              reason: 'payload failed the schema: / must be object',
            },
            {
              job: extraKey,
              durationMs: 0,
              status: 'invalid',
              reason: 'payload failed the schema: / must NOT have additional properties (cc)',
            },
          ],
        } satisfies Checked<Email>,
      });
      expectSubscriptions(reserved.subscriptions).toBe(sub);
    });
  });

  it('passes every job as valid without a validator', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const all: Reservation<Email> = { jobs: [good, wrongType, notAnObject] };
      const reserved = hot<Reservation<Email>>('-x-|', { x: all });
      expectObservable(reserved.pipe(validate<Email>(undefined))).toBe('-X-|', {
        X: { valid: all, invalid: [] },
      });
    });
  });

  it('keeps the order of the valid jobs', () => {
    const validator = compileSchema({ type: 'object', properties: { to: { type: 'string' } } });
    testScheduler.run(({ cold, expectObservable }) => {
      const jobs = ['a', 'b', 'c', 'd'].map((id, i) => reservedJob<Email>(id, { to: i % 2 ? i : id }));
      expectObservable(cold('(x|)', { x: { jobs } }).pipe(validate<Email>(validator))).toBe('(X|)', {
        X: {
          valid: { jobs: [jobs[0], jobs[2]] },
          invalid: [
            expect.objectContaining({ job: jobs[1], status: 'invalid' }),
            expect.objectContaining({ job: jobs[3], status: 'invalid' }),
          ],
        },
      });
    });
  });

  it('passes a reservation whose jobs are all valid on as it is, and copies one with an invalid job', () => {
    const validator = compileSchema({ type: 'object', properties: { to: { type: 'string' } } });
    const all: Reservation<Email> = { jobs: [good, extraKey] };
    const mixed: Reservation<Email> = { jobs: [good, wrongType, extraKey, notAnObject] };
    const seen: Checked<Email>[] = [];
    validate<Email>(validator)(of(all, mixed)).subscribe((checked) => seen.push(checked));
    expect(seen).toHaveLength(2);
    // No copy when nothing is left out: the same reservation and its own list of jobs.
    expect(seen[0]?.valid).toBe(all);
    expect(seen[0]?.invalid).toEqual([]);
    // The jobs before and after the invalid one, in order; the reservation itself is not changed.
    expect(seen[1]?.valid).not.toBe(mixed);
    expect(seen[1]?.valid.jobs).toEqual([good, extraKey]);
    expect(seen[1]?.invalid.map((h) => h.job)).toEqual([wrongType, notAnObject]);
    expect(mixed.jobs).toEqual([good, wrongType, extraKey, notAnObject]);
  });

  it('forwards errors and completion', () => {
    testScheduler.run(({ hot, expectObservable }) => {
      const reserved = hot<Reservation<Email>>('--#', undefined, new Error('store down'));
      expectObservable(reserved.pipe(validate<Email>(compileSchema(schema)))).toBe(
        '--#',
        undefined,
        new Error('store down'),
      );
    });
  });
});

import { map, type OperatorFunction } from 'rxjs';
import type { ReservedJob } from '../model/job';
import type { PayloadValidator } from '../model/validation';
import type { Handled } from '../model/outcome';
import type { Reservation } from '../model/reservation';
import { NONE } from '../util/none';

/** A reservation split by the schema check. */
export interface Checked<T = unknown> {
  /** The reservation with its valid jobs only (grant kept). */
  readonly valid: Reservation<T>;
  /** Jobs whose payload failed the schema, ready to be dead-lettered with the reason. */
  readonly invalid: readonly Handled<T>[];
}

/**
 * Checks every reserved job's payload against the queue's schema.
 *
 * Intuition: producers validate at `add`, but data can reach the queue by other roads (an older
 * producer, a hand-edited record, a schema that tightened). Such a job must not reach the handler,
 * must not stop the pipeline, and must not be lost: it is dead-lettered with the violations.
 *
 * ```
 * reserved:  -[a b!]----[c]--|
 * validate:  -{a|b!}----{c|}-|     (valid | invalid)
 * ```
 *
 * Without a validator every job is valid.
 *
 * ## Example
 * ```ts
 * reserved$.pipe(validate(compileSchema({ type: 'object', required: ['to'] })));
 * ```
 */
export function validate<T>(
  validator: PayloadValidator | undefined,
): OperatorFunction<Reservation<T>, Checked<T>> {
  return map((reservation) => {
    if (!validator) return { valid: reservation, invalid: NONE };
    // The valid jobs are copied out only once an invalid one is found: mostly there is none, and
    // the reservation goes on as it came.
    const { jobs } = reservation;
    let valid: ReservedJob<T>[] | undefined;
    let invalid: Handled<T>[] | undefined;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i] as ReservedJob<T>;
      const violations = validator(job.data);
      if (violations.length === 0) {
        valid?.push(job);
        continue;
      }
      valid ??= jobs.slice(0, i);
      const reason = `payload failed the schema: ${violations
        .map((v) => `${v.path || '/'} ${v.message}`)
        .join('; ')}`;
      (invalid ??= []).push({ job, durationMs: 0, status: 'invalid', reason });
    }
    return valid === undefined || invalid === undefined
      ? { valid: reservation, invalid: NONE }
      : { valid: { ...reservation, jobs: valid }, invalid };
  });
}

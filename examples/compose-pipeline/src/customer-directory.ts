import { defer, map, type Observable, type ObservableInput, timer } from 'rxjs';
import type { Customer } from './order';

/** Looks up many customers in one call (a CRM, a user service): the pipeline asks once per reservation. */
export interface CustomerDirectory {
  /** The customers it knows among `ids`, by id. A promise works as well as an Observable. */
  lookup(ids: readonly string[]): ObservableInput<ReadonlyMap<string, Customer>>;
}

/**
 * A directory that answers after `latencyMs`, whatever the number of ids, and records every call.
 * It runs on RxJS timers, so the same object works in real time and in a marble test's virtual time.
 */
export class SimulatedCustomerDirectory implements CustomerDirectory {
  /** The ids of every call, in order: its length is the number of calls. */
  readonly calls: (readonly string[])[] = [];
  private readonly byId: ReadonlyMap<string, Customer>;
  private failures = 0;

  constructor(
    customers: readonly Customer[],
    private readonly latencyMs: number,
  ) {
    this.byId = new Map(customers.map((c) => [c.id, c]));
  }

  lookup(ids: readonly string[]): Observable<ReadonlyMap<string, Customer>> {
    return defer(() => {
      this.calls.push([...ids]);
      const fail = this.failures > 0;
      if (fail) this.failures--;
      return timer(this.latencyMs).pipe(
        map(() => {
          if (fail) throw new Error('directory unavailable (503)');
          const found = new Map<string, Customer>();
          for (const id of ids) {
            const customer = this.byId.get(id);
            if (customer) found.set(id, customer);
          }
          return found;
        }),
      );
    });
  }

  /** The next `calls` lookups fail (after their latency), as an outage would. */
  failNext(calls = 1): void {
    this.failures += calls;
  }
}

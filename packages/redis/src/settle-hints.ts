import { DEFAULT_HINT } from './codec';

/**
 * What the settle script needs of each job this store leased and has not settled yet
 * (`settleHint` in `codec.ts`), so a settle does not read every record again. Kept per lease: how many of
 * its jobs are still to be settled here, and the hints that are not {@link DEFAULT_HINT} (most jobs
 * are first attempts of no group: a lease of them costs one entry, not one per job). Only a saving:
 * the script uses a hint only while the settlement's token still holds the job, so the default
 * answered for an id the lease did not hold is never used, and a settle of a job with no hint here
 * (another process leased it, or it was forgotten) reads the record. Bounded: past
 * `max` jobs held the oldest leases are forgotten (jobs whose lease was lost and
 * which are never settled here would otherwise stay).
 */
export class SettleHints {
  static readonly MAX = 100_000;
  private readonly leases = new Map<string, { left: number; odd: Map<string, string> | undefined }>();
  private held = 0;

  /** `max`: the most jobs whose hints are kept ({@link SettleHints.MAX}). */
  constructor(private readonly max: number = SettleHints.MAX) {}

  /** Jobs whose hints are kept. */
  get size(): number {
    return this.held;
  }

  /** Keeps the hints of the `count` jobs leased under `token`: the default, or theirs in `odd`. */
  remember(token: string, count: number, odd?: Map<string, string>): void {
    if (count === 0) return;
    this.forget(token);
    for (const [oldest, lease] of this.leases) {
      if (this.held + count <= this.max) break;
      this.held -= lease.left;
      this.leases.delete(oldest);
    }
    this.leases.set(token, { left: count, odd });
    this.held += count;
  }

  /** The hint of `id` under `token` (`''` when none), forgotten as it is taken. */
  take(token: string, id: string): string {
    const lease = this.leases.get(token);
    if (lease === undefined) return '';
    this.held--;
    if (--lease.left === 0) this.leases.delete(token);
    return lease.odd?.get(id) ?? DEFAULT_HINT;
  }

  private forget(token: string): void {
    const lease = this.leases.get(token);
    if (lease === undefined) return;
    this.held -= lease.left;
    this.leases.delete(token);
  }
}

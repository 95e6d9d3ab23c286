import { setTimeout as sleep } from 'node:timers/promises';
import type { Finding } from './message';

/** A stand-in for the on-call pager: each alert takes about 30 ms to deliver. */
export class SimulatedPager {
  readonly delivered: Finding[] = [];

  async page(finding: Finding, signal?: AbortSignal): Promise<void> {
    await sleep(30, undefined, { signal });
    this.delivered.push(finding);
  }
}

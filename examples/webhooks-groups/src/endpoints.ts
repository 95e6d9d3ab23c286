import { performance } from 'node:perf_hooks';
import { maxInAnyWindow } from '@sluice/core';
import type { Webhook } from './webhook';

/** One delivery as the customer's endpoint saw it (local clock, ms). */
export interface Delivery {
  readonly customer: string;
  readonly seq: number;
  readonly start: number;
  end?: number;
}

/**
 * The customers' endpoints, simulated: each call takes `latencyMs`. They record every delivery, and
 * notice what a customer would complain about: two of its webhooks at once (`overlaps`), or one
 * arriving before an earlier one (`outOfOrder`).
 */
export class CustomerEndpoints {
  readonly deliveries: Delivery[] = [];
  overlaps = 0;
  outOfOrder = 0;
  private readonly inFlight = new Set<string>();
  private readonly lastSeq = new Map<string, number>();
  private readonly startsBy = new Map<string, number>();

  constructor(private readonly latencyMs: number) {}

  async deliver(hook: Webhook): Promise<undefined> {
    const delivery: Delivery = { customer: hook.customer, seq: hook.seq, start: performance.now() };
    this.deliveries.push(delivery);
    this.startsBy.set(hook.customer, (this.startsBy.get(hook.customer) ?? 0) + 1);
    if (this.inFlight.has(hook.customer)) this.overlaps++;
    this.inFlight.add(hook.customer);
    if (hook.seq !== (this.lastSeq.get(hook.customer) ?? -1) + 1) this.outOfOrder++;
    this.lastSeq.set(hook.customer, hook.seq);
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    delivery.end = performance.now();
    this.inFlight.delete(hook.customer);
    return undefined;
  }

  /** The most deliveries to one customer that started in any `windowMs`, over every customer. */
  busiestWindow(windowMs: number): { readonly customer: string; readonly deliveries: number } {
    const starts = new Map<string, number[]>();
    for (const d of this.deliveries) {
      const of = starts.get(d.customer);
      if (of) of.push(d.start);
      else starts.set(d.customer, [d.start]);
    }
    let busiest = { customer: '', deliveries: 0 };
    for (const [customer, times] of starts) {
      const deliveries = maxInAnyWindow(times, windowMs);
      if (deliveries > busiest.deliveries) busiest = { customer, deliveries };
    }
    return busiest;
  }

  /** Deliveries to `customer` started so far. */
  startsOf(customer: string): number {
    return this.startsBy.get(customer) ?? 0;
  }
}

import { definePipeline, type PipelineDefinition } from '@sluice/core';
import type { CustomerEndpoints } from './endpoints';

/** One webhook to deliver to a customer's endpoint; `seq` counts the customer's webhooks from 0. */
export interface Webhook {
  readonly customer: string;
  readonly seq: number;
  readonly event: string;
}

export const WEBHOOK_QUEUE = 'webhooks';

/** The group of a customer's webhooks: one group per customer. */
export const groupOf = (customer: string): string => `customer:${customer}`;

/** Webhooks a customer's endpoint accepts in any second. */
export const PER_CUSTOMER_PER_SECOND = 25;

/**
 * Delivers webhooks, 20 at a time overall, one at a time per customer (`groups: { concurrency: 1 }`)
 * and at most `PER_CUSTOMER_PER_SECOND` a second per customer (`groups.rateLimit`, exact on Redis'
 * clock across every worker): a customer's endpoint never sees two of its webhooks at once, sees them
 * in the order they were added, and never more than its quota in any second. Customers take turns, so
 * a customer with a big backlog gets one delivery per round and everyone else's webhooks go on.
 */
export function webhookPipeline(
  endpoints: CustomerEndpoints,
  options: { readonly concurrency?: number } = {},
): PipelineDefinition<Webhook, undefined> {
  return definePipeline<Webhook, undefined>({
    queue: WEBHOOK_QUEUE,
    concurrency: options.concurrency ?? 20,
    groups: { concurrency: 1, rateLimit: { allowed: PER_CUSTOMER_PER_SECOND, periodMs: 1000 } },
    handler: (job, ctx) => {
      const delivered = endpoints.deliver(job.data);
      ctx.limit?.sent(); // the request has left: a late one is moved in its customer's log
      return delivered;
    },
  });
}

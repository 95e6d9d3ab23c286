import { definePipeline, perJob, type Queue } from '@sluice/core';
import { InspectionApiError, type SimulatedInspectionApi } from './inspection-api';
import { ALERT_QUEUE, MESSAGE_QUEUE, type Finding, type Message } from './message';
import type { SimulatedPager } from './pager';

export interface InspectionDeps {
  readonly api: SimulatedInspectionApi;
  readonly pager: SimulatedPager;
  /** Where findings go: one alert job each. */
  readonly alerts: Queue<Finding>;
}

/**
 * Two pipelines: `inspect` sends messages to the API 100 at a time, 10 calls a second, and adds an
 * alert job per finding; `alert` pages someone for each one, five at a time.
 */
export function inspectionPipelines({ api, pager, alerts }: InspectionDeps) {
  const inspect = definePipeline<Message, number>({
    queue: MESSAGE_QUEUE,
    // Full batches of 100; a batch that cannot fill goes after its first message waited 250 ms.
    batch: { size: 100, timeMs: 250 },
    // The limit counts API calls, not messages: 10 calls of up to 100 messages per second. One
    // process calls the API and its start gate holds those calls to the limit, so the margin that
    // covers start times across processes (5 ms a window, 0.5% of the rate) is not needed.
    rateLimit: { allowed: 10, periodMs: 1000, per: 'call' },
    concurrency: 3,
    handler: async (jobs, { signal }) => {
      let findings: Finding[][];
      try {
        findings = await api.inspect(
          jobs.map((job) => job.data),
          signal,
        );
      } catch (error) {
        if (error instanceof InspectionApiError && error.status === 429) return { snooze: 1000 };
        throw error; // retried with backoff
      }
      // The alert's id is derived from the message, so a retried batch cannot page twice.
      await alerts.addBulk(
        findings.flat().map((f) => ({ data: f, options: { id: `alert-${f.messageId}` } })),
      );
      return perJob(findings.map((f) => f.length)); // each message completes with its finding count
    },
  });

  const alert = definePipeline<Finding>({
    queue: ALERT_QUEUE,
    concurrency: 5,
    handler: (job, { signal }) => pager.page(job.data, signal),
  });

  return [inspect, alert] as const;
}

import type { JobReporter } from '../model/handler';
import type { Store } from './store';

/**
 * The reporter handler stages use for `ctx.progress` / `ctx.log` over `store`: one `updateJob` per
 * job of the call, each under the job's own lease. `undefined` when the store does not record reports.
 */
export function storeJobReporter(store: Store): JobReporter | undefined {
  const updateJob = store.updateJob?.bind(store);
  if (!updateJob) return undefined;
  return async (jobs, update) => {
    const written = await Promise.all(
      jobs.map((job) => updateJob(job.queue, { id: job.id, token: job.lease.token }, update)),
    );
    return written.every(Boolean);
  };
}

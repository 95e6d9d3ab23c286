import {
  definePipeline,
  PermanentError,
  Queue,
  silentLogger,
  Telemetry,
  Worker,
  type Store,
} from '@sluice/core';

export interface Email {
  readonly to: string;
  readonly fail?: boolean;
}

/** Polls until `check` returns a truthy value (returned) or the time runs out. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, everyMs = 20, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A real worker on the `emails` queue: jobs with `fail: true` are dead-lettered at once. */
export function startEmailWorker(store: Store) {
  const telemetry = new Telemetry();
  const pipeline = definePipeline<Email, { sent: string }>({
    queue: 'emails',
    concurrency: 4,
    handler: (job) =>
      job.data.fail
        ? Promise.reject(new PermanentError(`mailbox ${job.data.to} does not exist`))
        : Promise.resolve({ sent: job.data.to }),
  });
  const worker = new Worker({ store, telemetry, logger: silentLogger, pipelines: [pipeline] });
  worker.start();
  return {
    queue: new Queue<Email>(store, 'emails'),
    telemetry,
    async stop(): Promise<void> {
      await worker.close({ timeoutMs: 2000 });
    },
  };
}

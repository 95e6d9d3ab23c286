import { definePipeline, MemoryStore, Queue, silentLogger, Worker } from '@sluice/core';
import {
  startDashboardServer,
  type DashboardServer,
  type JobDetailView,
  type Redactor,
} from '@sluice/dashboard';
import { ApiClient, waitFor } from './support';

describe('dashboard API: a job’s progress and log lines (MemoryStore, real Worker)', () => {
  const store = new MemoryStore();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const worker = new Worker({
    store,
    logger: silentLogger,
    pipelines: [
      definePipeline<{ progress: unknown }>({
        queue: 'imports',
        concurrency: 2,
        handler: async (job, ctx) => {
          await ctx.progress(job.data.progress);
          await ctx.log('signed in with token=abc123', 'read 40 rows');
          await released;
          return 'ok';
        },
      }),
    ],
  });
  const servers: DashboardServer[] = [];
  const imports = new Queue<{ progress: unknown }>(store, 'imports');
  const ids: Record<string, string> = {};

  /** The job as a dashboard with `redact` shows it. */
  async function shown(id: string, redact?: Redactor): Promise<JobDetailView> {
    const server = await startDashboardServer({
      store,
      port: 0,
      logger: silentLogger,
      ...(redact ? { redact } : {}),
    });
    servers.push(server);
    const { status, body } = await new ApiClient(server.url).get<{ job: JobDetailView }>(
      `api/queues/imports/jobs/${id}`,
    );
    expect(status).toBe(200);
    return body.job;
  }

  beforeAll(async () => {
    worker.start();
    ids['number'] = (await imports.add({ progress: 40 })).id;
    ids['object'] = (await imports.add({ progress: { stage: 'upload', files: 3 } })).id;
    await waitFor(
      async () =>
        (await Promise.all(Object.values(ids).map((id) => store.getJob('imports', id)))).every(
          (job) => job?.logs?.length === 2,
        ),
      { what: 'both handlers to report' },
    );
  });

  afterAll(async () => {
    release();
    await worker.close({ timeoutMs: 2000 });
    for (const server of servers) await server.close();
    await store.close();
  });

  it('shows the progress and log lines the handler reported while it runs', async () => {
    const job = await shown(ids['number']!);
    expect(job.state).toBe('running');
    expect(job.progress).toBe(40);
    expect(job.logs).toEqual(['signed in with token=abc123', 'read 40 rows']);
    expect((await shown(ids['object']!)).progress).toEqual({ stage: 'upload', files: 3 });
  });

  it('passes progress and log lines through the redactor when it returns them', async () => {
    const masked = await shown(ids['number']!, (job) => ({
      ...job,
      logs: (job.logs ?? []).map((line) => line.replace(/token=\S+/, 'token=***')),
    }));
    expect(masked.logs).toEqual(['signed in with token=***', 'read 40 rows']);
    expect(masked.progress).toBe(40);

    const failing = await shown(ids['number']!, () => {
      throw new Error('no');
    });
    expect(failing.logs).toEqual(['[redaction failed]']);
    expect(failing.progress).toBe('[redaction failed]');
  });

  it('shows no progress and an empty log for a job that reported none', async () => {
    const { id } = await new Queue(store, 'imports').add({ progress: 1 }, { delayMs: 3_600_000 });
    const job = await shown(id);
    expect(job.state).toBe('scheduled');
    expect(job).not.toHaveProperty('progress');
    expect(job.logs).toEqual([]);
  });
});

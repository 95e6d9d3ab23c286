import { firstValueFrom } from 'rxjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { definePipeline, fixed, Queue, silentLogger, Worker } from '@sluice/core';
import { startDashboardServer, type DashboardServer } from '@sluice/dashboard';
import { useRedis } from '@sluice/testing';
import { createBrowserTestStore, type BrowserTestStore } from './browser-store';
import { waitFor } from './support';

const TOKEN = 'browser-settings-token-7be2';

jest.setTimeout(30_000);

/** The queue page's retention and counts, and a job's progress and logs, in headless Chromium. */
describe('queue retention, counts and job progress in headless Chromium (real Redis, real Worker)', () => {
  let fixture: BrowserTestStore;
  let worker: Worker;
  let server: DashboardServer;
  let browser: Browser;
  const problems: string[] = [];
  /** Steps of the `tasks` handler, released by the test one after the other. */
  const steps = Array.from({ length: 3 }, () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  });

  // Before useRedis(): this cleanup runs while the test Redis is still up.
  afterAll(async () => {
    for (const step of steps) step.open();
    for (const step of [
      () => browser.close(),
      () => server.close(),
      async () => {
        await worker.close({ timeoutMs: 2000 });
      },
      () => fixture.cleanup(),
    ]) {
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
    }
  });

  const redis = useRedis();

  beforeAll(async () => {
    fixture = await createBrowserTestStore(redis.url);
    const store = fixture.store;
    worker = new Worker({
      store,
      logger: silentLogger,
      pipelines: [
        definePipeline<{ fail?: boolean }>({
          queue: 'orders',
          concurrency: 2,
          backoff: fixed(0),
          handler: (job) =>
            job.data.fail ? Promise.reject(new Error('card declined')) : Promise.resolve('ok'),
        }),
        definePipeline({
          queue: 'tasks',
          handler: async (_job, ctx) => {
            await ctx.progress(40);
            await ctx.log('fetched 4 of 10 pages');
            await steps[0]!.opened;
            await ctx.progress(75);
            await ctx.log('fetched 7 of 10 pages', 'page 8: <b>retrying</b>');
            await steps[1]!.opened;
            await ctx.progress({ stage: 'upload', files: 3 });
            await steps[2]!.opened;
            return 'done';
          },
        }),
      ],
    });
    worker.start();
    await new Queue(store, 'orders').add({});
    await waitFor(async () => (await store.stats('orders')).counts.completed === 1, { what: 'a first job' });
    server = await startDashboardServer({
      store,
      port: 0,
      logger: silentLogger,
      auth: { token: TOKEN },
      refreshIntervalMs: 60_000,
    });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--no-first-run'],
    });
  }, 60_000);

  afterEach(() => {
    expect(problems).toEqual([]);
  });

  async function signedIn(hash: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    await page.goto(server.url);
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').first().waitFor();
    await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    return page;
  }

  it('shows the retention in force and changes it from the form', async () => {
    const store = fixture.store;
    const page = await signedIn('#/queues/orders');
    try {
      const finished = page.getByTestId('retention-finished');
      const dead = page.getByTestId('retention-dead');
      await finished.filter({ hasText: 'the newest 1,000 (default)' }).waitFor();
      expect(await dead.textContent()).toBe('all (default)');

      const form = page.getByTestId('retention-form');
      const set = async (fields: {
        which: string;
        keep: string;
        count?: string;
        age?: string;
        unit?: string;
      }): Promise<void> => {
        await form.locator('select[name="which"]').selectOption(fields.which);
        await form.locator('select[name="keep"]').selectOption(fields.keep);
        await form.locator('input[name="count"]').fill(fields.count ?? '');
        await form.locator('input[name="age"]').fill(fields.age ?? '');
        if (fields.unit) await form.locator('select[name="unit"]').selectOption(fields.unit);
        await form.locator('[data-action="set-retention"]').click();
        await page.getByTestId('confirm-ok').click();
      };

      await set({ which: 'dead', keep: 'count', count: '500', age: '7', unit: 'd' });
      await dead.filter({ hasText: 'the newest 500, none older than 7 d' }).waitFor();
      expect((await store.getQueueConfig('orders')).deadRetention).toEqual({
        keep: 'count',
        count: 500,
        ageMs: 7 * 86_400_000,
      });

      await set({ which: 'finished', keep: 'age', age: '90', unit: 'min' });
      await finished.filter({ hasText: 'for 90 min' }).waitFor();
      await set({ which: 'finished', keep: 'none' });
      await finished.filter({ hasText: 'none (deleted as they finish)' }).waitFor();
      expect(await store.getQueueConfig('orders')).toEqual({
        retention: { keep: 'none' },
        deadRetention: { keep: 'count', count: 500, ageMs: 7 * 86_400_000 },
      });

      await set({ which: 'dead', keep: 'default' });
      await dead.filter({ hasText: 'all (default)' }).waitFor();
      await set({ which: 'finished', keep: 'all' });
      await finished.filter({ hasText: /^all$/ }).waitFor();
      expect(await store.getQueueConfig('orders')).toEqual({ retention: { keep: 'all' } });
    } finally {
      await page.close();
    }
  });

  it('labels the counts of finished and dead jobs as kept records, and the totals as since creation', async () => {
    const store = fixture.store;
    await store.updateQueueConfig?.('orders', { retention: { keep: 'count', count: 2 } });
    const orders = new Queue<{ fail?: boolean }>(store, 'orders');
    await orders.addBulk(Array.from({ length: 5 }, () => ({ data: {} })));
    await orders.add({ fail: true }, { maxAttempts: 2 });
    await waitFor(
      async () => {
        const s = await store.stats('orders');
        return s.totals.completed === 6 && s.counts.dead === 1;
      },
      { what: 'the jobs to settle' },
    );
    // A lease that expires: a job reserved by hand and never settled.
    await new Queue(store, 'stalls').add({});
    await firstValueFrom(store.reserve('stalls', 1, { leaseMs: 1 }));
    await waitFor(
      async () => {
        await firstValueFrom(store.recoverExpired('stalls'));
        return (await store.stats('stalls')).totals.leaseExpiries === 1;
      },
      { what: 'the lease to expire' },
    );

    const page = await signedIn('#/queues/orders');
    try {
      for (const queue of ['orders', 'stalls']) {
        await page.evaluate(`location.hash = ${JSON.stringify(`#/queues/${queue}`)}`);
        await page.locator('main h1', { hasText: queue }).waitFor();
        const stats = await store.stats(queue);
        const totals = page.getByTestId('totals');
        await totals
          .locator('[data-total="enqueued"]')
          .filter({ hasText: new RegExp(`^${stats.totals.enqueued}$`) })
          .waitFor();
        for (const state of ['ready', 'scheduled', 'running', 'completed', 'dead', 'cancelled'] as const) {
          const tab = page.locator(`.tab[data-state="${state}"]`);
          const kept = state === 'completed' || state === 'dead' || state === 'cancelled';
          expect(await tab.locator('.tab-label').textContent()).toBe(kept ? `${state} (kept)` : state);
          expect(await tab.locator('.tab-count').textContent()).toBe(
            stats.counts[state].toLocaleString('en-US'),
          );
        }
        const line = (await totals.textContent()) ?? '';
        const t = stats.totals;
        expect(line).toBe(
          `${t.enqueued} added · ${t.completed} completed · ${t.dead} dead-lettered · ${t.cancelled} cancelled · ` +
            `${t.failed} failed attempts (${t.handlerFailures} handler failures, ${t.leaseExpiries} lease expiries)`,
        );
        expect(await page.locator('dt', { hasText: 'Since the queue was created' }).count()).toBe(1);
      }
      const orders = await store.stats('orders');
      expect(orders.counts.completed).toBe(2);
      expect(orders.totals).toMatchObject({ completed: 6, handlerFailures: 2, leaseExpiries: 0, dead: 1 });
      expect((await store.stats('stalls')).totals).toMatchObject({ leaseExpiries: 1, handlerFailures: 0 });
    } finally {
      await page.close();
    }
  });

  it('follows a running job’s progress and log lines live, as its handler reports them', async () => {
    const store = fixture.store;
    const { id } = await new Queue(store, 'tasks').add({});
    await waitFor(async () => (await store.getJob('tasks', id))?.logs?.length === 1, {
      timeoutMs: 10_000,
      what: 'the handler’s first report',
    });
    const page = await signedIn(`#/queues/tasks/jobs/${encodeURIComponent(id)}`);
    try {
      const progress = page.getByTestId('job-progress');
      const lines = page.locator('[data-testid="job-logs"] li');
      await progress.locator('.progress-value').filter({ hasText: '40%' }).waitFor();
      expect(await progress.locator('progress').getAttribute('value')).toBe('40');
      expect(await lines.allTextContents()).toEqual(['fetched 4 of 10 pages']);
      // Marks this document: the updates below must come without a reload (the poll is a minute).
      await page.evaluate('window.sameDocument = true');

      steps[0]!.open();
      await progress.locator('.progress-value').filter({ hasText: '75%' }).waitFor();
      await lines.nth(2).waitFor();
      expect(await lines.allTextContents()).toEqual([
        'fetched 4 of 10 pages',
        'fetched 7 of 10 pages',
        'page 8: <b>retrying</b>',
      ]);
      expect(await page.getByTestId('job-state').textContent()).toBe('running');

      steps[1]!.open();
      await page.locator('pre[data-testid="job-progress"]').filter({ hasText: '"upload"' }).waitFor();
      expect(JSON.parse((await progress.textContent()) ?? '')).toEqual({ stage: 'upload', files: 3 });

      steps[2]!.open();
      await page.getByTestId('job-state').filter({ hasText: 'completed' }).waitFor();
      expect(await lines.count()).toBe(3);
      expect(await page.evaluate('window.sameDocument')).toBe(true);
      const stored = await store.getJob('tasks', id);
      expect(stored?.progress).toEqual({ stage: 'upload', files: 3 });
      expect(stored?.logs).toEqual(await lines.allTextContents());
    } finally {
      await page.close();
    }
  });
});

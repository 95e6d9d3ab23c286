import { firstValueFrom } from 'rxjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { definePipeline, fixed, MemoryStore, Queue, silentLogger, Worker } from '@sluice/core';
import { startDashboardServer, type DashboardServer } from '@sluice/dashboard';
import { useRedis } from '@sluice/testing';
import { createBrowserTestStore, type BrowserTestStore } from './browser-store';
import { startEmailWorker, waitFor } from './support';

const TOKEN = 'browser-pages-token-31c4';

interface Measure {
  readonly scrollWidth: number;
  readonly innerWidth: number;
  /** The element reaching furthest right, for the failure message. */
  readonly widest: string;
}
/** Runs in the page (as text: the test's TypeScript has no DOM types). */
const MEASURE = `(() => {
  let widest = '';
  let right = 0;
  for (const el of document.querySelectorAll('main *')) {
    const r = el.getBoundingClientRect().right;
    if (r > right) {
      right = r;
      widest = el.tagName.toLowerCase() + '.' + el.className + ' (' + Math.round(r) + ' px)';
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, widest };
})()`;

jest.setTimeout(30_000);

/** Pages of the UI in headless Chromium: layouts, schedules, job lists, job pages, rate limits. */
describe('dashboard pages in headless Chromium (real Redis, real Worker)', () => {
  let fixture: BrowserTestStore;
  let worker: ReturnType<typeof startEmailWorker>;
  let server: DashboardServer;
  let browser: Browser;
  const ids: Record<string, string> = {};
  const problems: string[] = [];

  afterAll(async () => {
    for (const step of [
      () => browser.close(),
      () => server.close(),
      () => worker.stop(),
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
    worker = startEmailWorker(store);
    const emails = worker.queue;
    ids['dead'] = (
      await emails.add({
        to: 'someone-with-a-rather-long-address@a-long-example-domain.example.com',
        fail: true,
        note: 'x'.repeat(400),
      })
    ).id;
    await emails.add({ to: 'ada@example.com' });
    await new Queue(store, 'reports').add({ month: '2024-01' });
    await store.setQueueConfig('reports', { schedules: { hourly: { cron: '0 * * * *', data: {} } } });
    await waitFor(async () => (await store.stats('emails')).counts.dead === 1, {
      timeoutMs: 15_000,
      what: 'the failing job to be dead-lettered',
    });
    await waitFor(async () => ((await store.workers?.()) ?? []).length === 1, { what: 'the worker report' });

    server = await startDashboardServer({
      store,
      port: 0,
      telemetry: worker.telemetry,
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

  const stateOf = async (id: string) => (await fixture.store.getJob('emails', id))?.state;

  async function signedIn(hash: string, viewport = { width: 1280, height: 860 }): Promise<Page> {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
    await page.goto(server.url);
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').first().waitFor();
    await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    return page;
  }

  it('shows the next run of a cron schedule as a real time', async () => {
    const page = await signedIn('#/queues/reports');
    try {
      const cell = page.locator('[data-schedule="hourly"] [data-testid="next-run"] time');
      await cell.waitFor();
      const at = Date.parse((await cell.getAttribute('datetime')) ?? '');
      // The next whole hour, computed here.
      const hour = 3_600_000;
      const expected = Math.floor(Date.now() / hour) * hour + hour;
      expect([expected, expected - hour]).toContain(at);
      expect(await cell.textContent()).toMatch(/\(in \d+ min\)|\(in [\d.]+ s\)|\(just now\)/);
      expect(await cell.getAttribute('title')).toMatch(/^then /);
    } finally {
      await page.close();
    }
  });

  it('fits a 390 px wide screen: no page scrolls sideways (overview, queue page with workers, job page)', async () => {
    const viewport = { width: 390, height: 844 };
    const pages = [
      { hash: '#/', ready: '[data-testid="workers"] tr[data-worker]' },
      { hash: '#/queues/emails?state=dead', ready: '[data-testid="jobs"] tr[data-job]' },
      {
        hash: `#/queues/emails/jobs/${encodeURIComponent(ids['dead']!)}`,
        ready: '[data-testid="job-errors"]',
      },
      { hash: '#/queues/emails/limits/emails', ready: '[data-testid="limit-form"]' },
    ];
    for (const { hash, ready } of pages) {
      const page = await signedIn(hash, viewport);
      try {
        await page.locator(ready).first().waitFor();
        if (hash.startsWith('#/queues/emails?')) await page.locator('[data-testid="workers"]').waitFor();
        const { scrollWidth, innerWidth, widest } = await page.evaluate<Measure>(MEASURE);
        expect(innerWidth).toBe(390);
        if (scrollWidth > innerWidth) throw new Error(`${hash}: ${scrollWidth} px wide; widest ${widest}`);
      } finally {
        await page.close();
      }
    }
  });

  it('acts on several selected jobs at once, and on one row; the selection survives live updates', async () => {
    const store = fixture.store;
    const later = { delayMs: 3_600_000, name: 'reminder' };
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map(async (to) => (await worker.queue.add({ to: `${to}@example.com` }, later)).id),
    );
    const page = await signedIn('#/queues/emails?state=scheduled');
    try {
      const row = (id: string) => page.locator(`[data-testid="jobs"] tr[data-job="${id}"]`);
      await row(c!).waitFor();
      await row(a!).getByLabel(`Select job ${a}`).check();
      await row(b!).getByLabel(`Select job ${b}`).check();
      await page.getByTestId('selected-count').filter({ hasText: '2 selected' }).waitFor();

      // A live update re-renders the list: the ticks stay.
      const d = (await worker.queue.add({ to: 'd@example.com' }, later)).id;
      await row(d).waitFor();
      expect(await row(a!).getByLabel(`Select job ${a}`).isChecked()).toBe(true);
      expect(await row(b!).getByLabel(`Select job ${b}`).isChecked()).toBe(true);
      expect(await row(c!).getByLabel(`Select job ${c}`).isChecked()).toBe(false);

      await page.locator('[data-bulk="promote"]').click();
      expect(await page.locator('dialog#confirm').textContent()).toContain('Run now: 2 jobs?');
      await page.getByTestId('confirm-ok').click();
      await waitFor(async () => (await stateOf(a!)) === 'completed' && (await stateOf(b!)) === 'completed', {
        timeoutMs: 10_000,
        what: 'the two promoted jobs to run',
      });
      await row(a!).waitFor({ state: 'detached' });
      expect(await stateOf(c!)).toBe('scheduled');
      await page.getByTestId('selected-count').filter({ hasText: 'Select jobs' }).waitFor();

      // One row's own button.
      await row(c!).locator('[data-action="remove"]').click();
      await page.getByTestId('confirm-ok').click();
      await row(c!).waitFor({ state: 'detached' });
      expect(await store.getJob('emails', c!)).toBeUndefined();

      // Select the whole page, cancel it; then retry every cancelled job from the cancelled tab.
      await page.getByLabel('Select every job on this page').check();
      await page.getByTestId('selected-count').filter({ hasText: '1 selected' }).waitFor();
      await page.locator('[data-bulk="cancel"]').click();
      await page.getByTestId('confirm-ok').click();
      await waitFor(async () => (await stateOf(d)) === 'cancelled', { what: 'the cancel' });
      await page.evaluate(`location.hash = '#/queues/emails?state=cancelled'`);
      await row(d).waitFor();
      await page.getByLabel('Select every job on this page').check();
      await page.locator('[data-bulk="retry"]').click();
      await page.getByTestId('confirm-ok').click();
      await waitFor(async () => (await stateOf(d)) === 'completed', { timeoutMs: 10_000, what: 'the retry' });
    } finally {
      await page.close();
    }
  });

  it('shows which worker holds a running job, in the running list and on the job page', async () => {
    const store = fixture.store;
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = new Worker({
      store,
      id: 'slow-worker-1',
      logger: silentLogger,
      pipelines: [definePipeline({ queue: 'slow', concurrency: 1, handler: () => held })],
    });
    slow.start();
    const page = await signedIn('#/');
    try {
      const { id } = await new Queue(store, 'slow').add({ n: 1 });
      await waitFor(async () => (await store.getJob('slow', id))?.state === 'running', { what: 'the start' });
      await page.evaluate(`location.hash = '#/queues/slow?state=running'`);
      const listed = page.locator(`tr[data-job="${id}"] [data-testid="job-worker"]`);
      await listed.waitFor();
      expect(await listed.textContent()).toBe('on slow-worker-1');
      await page.evaluate(`location.hash = '#/queues/slow/jobs/${id}'`);
      const fact = page.getByTestId('job-worker');
      await fact.waitFor();
      expect(await fact.textContent()).toBe('slow-worker-1');
      release();
      await page
        .getByTestId('job-state')
        .filter({ hasText: /^completed$/ })
        .waitFor();
      expect(await page.getByTestId('job-worker').count()).toBe(0);
    } finally {
      release();
      await page.close();
      await slow.close({ timeoutMs: 2000 });
    }
  });

  it("shows each retry's error on its own: attempt, time, message, stack folded", async () => {
    const store = fixture.store;
    const flaky = new Worker({
      store,
      logger: silentLogger,
      pipelines: [
        definePipeline({
          queue: 'flaky',
          concurrency: 1,
          backoff: fixed(10),
          handler: (job) => Promise.reject(new Error(`upstream said no (try ${job.attempt})`)),
        }),
      ],
    });
    flaky.start();
    const page = await signedIn('#/');
    try {
      const { id } = await new Queue(store, 'flaky').add({ n: 1 }, { maxAttempts: 3 });
      await waitFor(async () => (await store.getJob('flaky', id))?.state === 'dead', {
        timeoutMs: 10_000,
        what: 'three failed attempts',
      });
      const stored = (await store.getJob('flaky', id))!.errors;
      await page.evaluate(`location.hash = '#/queues/flaky/jobs/${id}'`);
      const entries = page.getByTestId('job-error');
      await entries.nth(2).waitFor();
      expect(await entries.count()).toBe(3);
      // Newest first, one entry per attempt, each with its own message and time.
      for (const [i, attempt] of [3, 2, 1].entries()) {
        const entry = entries.nth(i);
        expect(await entry.getAttribute('data-attempt')).toBe(String(attempt));
        expect(await entry.locator('.error-attempt').textContent()).toBe(`Attempt ${attempt} of 3`);
        expect(await entry.getByTestId('error-message').textContent()).toBe(
          `upstream said no (try ${attempt})`,
        );
        const at = stored.find((e) => e.attempt === attempt)!.at;
        expect(await entry.locator('time').getAttribute('datetime')).toBe(new Date(at).toISOString());
        const details = entry.locator('details');
        expect(await details.count()).toBe(1);
        expect(await details.evaluate((d) => (d as unknown as { open: boolean }).open)).toBe(false);
        expect(await entry.locator('pre').isVisible()).toBe(false);
      }
      await entries.nth(1).getByText('Stack trace').click();
      expect(await entries.nth(1).locator('pre').textContent()).toContain('upstream said no (try 2)');
      expect(await entries.nth(0).locator('pre').isVisible()).toBe(false);
    } finally {
      await page.close();
      await flaky.close({ timeoutMs: 2000 });
    }
  });

  it('shows a rate limit and changes it store-wide from its page', async () => {
    const store = fixture.store;
    // Start timing as a loaded worker would report it on the hub the dashboard reads.
    const timing = (event: {
      kind: 'lead' | 'margin' | 'ahead';
      marginMs: number;
      marginCapped: boolean;
      aheadJobs?: number;
    }): void => {
      worker.telemetry.emit({
        type: 'start-timing',
        queue: 'emails',
        at: Date.now(),
        pipeline: 'emails',
        key: 'emails',
        lateMs: 0,
        leadMs: 180,
        capped: true,
        ...event,
      });
    };
    // A lead at its cap; a margin at its cap (requests leave later after their slots than the cap
    // allows for); no jobs granted ahead (jobs whose slots came waited for busy handlers).
    timing({ kind: 'lead', marginMs: 10, marginCapped: false });
    timing({ kind: 'margin', marginMs: 50, marginCapped: true });
    timing({ kind: 'ahead', marginMs: 50, marginCapped: true, aheadJobs: 0 });
    const page = await signedIn('#/queues/emails');
    try {
      await page.locator('.limits a', { hasText: 'emails' }).click();
      await page.getByTestId('limit-effective').filter({ hasText: '100 per s' }).waitFor();
      expect(await page.getByTestId('limit-override').textContent()).toContain('not set');
      await page.getByTestId('lead-capped').waitFor();
      expect(await page.getByTestId('lead-capped').textContent()).toContain('180 ms ahead');
      expect(await page.getByTestId('margin-capped').textContent()).toContain('50 ms wider');
      expect(await page.getByTestId('timing-margin').textContent()).toContain('capped');
      expect(await page.getByTestId('timing-ahead').textContent()).toContain('0handlers busy');

      // A provider pause taken by any process shows up (the next live update re-reads the page).
      const spec = { key: 'emails', allowed: 100, periodMs: 1000 };
      const pause = await firstValueFrom(store.pauseLimit!('emails', spec, 300));
      await worker.queue.add({ to: 'wake@example.com' });
      await page.getByTestId('limit-pauses').locator('li').first().waitFor();
      expect(await page.getByTestId('limit-pauses').locator('li').count()).toBe(1);
      expect(await page.getByTestId('limit-pauses').textContent()).toContain('until');
      expect(pause.until).toBeGreaterThan(0);
      // The job added here started under the limit after the dashboard began counting.
      await waitFor(async () => Number(await page.getByTestId('timing-started').textContent()) > 0, {
        what: 'a start counted on the page',
      });

      const form = page.getByTestId('limit-form');
      await form.getByLabel('Allowed').fill('40');
      await form.getByLabel('per (ms)').fill('2000');
      await form.getByRole('button', { name: 'Set store-wide' }).click();
      expect(await page.locator('dialog#confirm').textContent()).toContain('Set emails to 40 per 2 s?');
      await page.getByTestId('confirm-ok').click();
      await page.getByTestId('limit-override').filter({ hasText: '40 per 2 s' }).waitFor();
      expect(await store.getRateLimit!('emails', 'emails')).toEqual({ allowed: 40, periodMs: 2000 });
      expect(await page.getByTestId('limit-effective').textContent()).toBe('40 per 2 s');

      await page.locator('[data-action="clear-limit"]').click();
      await page.getByTestId('confirm-ok').click();
      await page.getByTestId('limit-override').filter({ hasText: 'not set' }).waitFor();
      expect(await store.getRateLimit!('emails', 'emails')).toBeNull();
    } finally {
      await store.setRateLimit?.('emails', 'emails', null);
      await page.close();
    }
  });

  describe('with 50 queues', () => {
    const many = new MemoryStore();
    let manyServer: DashboardServer;
    const name = (i: number) => `tenant-${String(i).padStart(2, '0')}`;

    beforeAll(async () => {
      for (let i = 0; i < 50; i++) {
        // Queue i holds i % 7 ready jobs (tenant-06, -13, -20 … hold the most: 6).
        const queue = new Queue<{ i: number }>(many, name(i));
        await queue.add({ i }, { delayMs: 3_600_000 }); // every queue exists, with one scheduled job
        for (let j = 0; j < i % 7; j++) await queue.add({ i });
      }
      await many.pause(name(3));
      await many.pause(name(44));
      manyServer = await startDashboardServer({ store: many, port: 0, logger: silentLogger });
    });

    afterAll(async () => {
      await manyServer.close();
      await many.close();
    });

    async function overview(hash = '', viewport = { width: 1280, height: 860 }): Promise<Page> {
      const page = await browser.newPage({ viewport });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      await page.goto(`${manyServer.url}${hash}`);
      return page;
    }

    const rows = (page: Page) => page.locator('[data-testid="queue-list"] tr[data-testid="queue-row"]');
    const shownQueues = (page: Page) =>
      page.evaluate<string[]>(
        `[...document.querySelectorAll('[data-testid="queue-list"] tr[data-queue]')].map((tr) => tr.dataset.queue)`,
      );
    const height = (page: Page) => page.evaluate<number>('document.documentElement.scrollHeight');

    it('shows them as a dense list, with search, filters and sorting kept in the URL', async () => {
      const page = await overview();
      try {
        await rows(page).nth(49).waitFor();
        expect(await rows(page).count()).toBe(50);
        expect(await page.locator('[data-testid="queue-card"]').count()).toBe(0);
        const rowHeights = await rows(page).evaluateAll((trs) =>
          trs.map((tr) => (tr as unknown as { offsetHeight: number }).offsetHeight),
        );
        expect(Math.max(...rowHeights)).toBeLessThanOrEqual(40);
        const listHeight = await height(page);

        // The cards, for comparison: the list is a small fraction of their height.
        await page.locator('button[data-layout="cards"]').click();
        await page.locator('[data-testid="queue-card"]').nth(49).waitFor();
        expect(listHeight * 3).toBeLessThan(await height(page));
        await page.locator('button[data-layout="list"]').click();
        await rows(page).nth(49).waitFor();

        // Search by name.
        await page.getByTestId('queue-search').fill('tenant-4');
        await page.getByTestId('queue-shown').filter({ hasText: '10 of 50 shown' }).waitFor();
        expect(await shownQueues(page)).toEqual([40, 41, 42, 43, 44, 45, 46, 47, 48, 49].map(name));

        // A filter chip on top of the search: paused queues only.
        await page.locator('button[data-filter="paused"]').click();
        await page.getByTestId('queue-shown').filter({ hasText: '1 of 50 shown' }).waitFor();
        expect(await rows(page).getAttribute('data-queue')).toBe(name(44));
        expect(await rows(page).locator('[data-testid="paused"]').count()).toBe(1);
        expect(await page.locator('button[data-filter="paused"] .chip-count').textContent()).toBe('2');

        // Clear both; sort by ready, largest first.
        await page.getByTestId('queue-search').fill('');
        await page.locator('button[data-filter="all"]').click();
        await page.locator('button[data-sort="ready"]').click();
        await page.locator('th[aria-sort="descending"] button[data-sort="ready"]').waitFor();
        const ready = await rows(page).locator('[data-state="ready"]').allTextContents();
        expect(ready.slice(0, 8)).toEqual(['6', '6', '6', '6', '6', '6', '6', '5']);

        // The choices are in the URL: a reload shows the same list.
        expect(await page.evaluate<string>('location.hash')).toBe('#/?sort=ready&layout=list');
        await page.reload();
        await page.locator('th[aria-sort="descending"] button[data-sort="ready"]').waitFor();
        expect(await rows(page).count()).toBe(50);

        // A row leads to its queue.
        await rows(page).first().locator('a').first().click();
        await page.locator('.tab[data-state="ready"] .tab-count').filter({ hasText: '6' }).waitFor();
        expect(await page.evaluate<string>('location.hash')).toMatch(/^#\/queues\/tenant-\d\d$/);
      } finally {
        await page.close();
      }
    });

    it('fits a 390 px screen with 50 queues too', async () => {
      const page = await overview('#/?layout=list', { width: 390, height: 844 });
      try {
        await rows(page).nth(49).waitFor();
        const { scrollWidth, innerWidth, widest } = await page.evaluate<Measure>(MEASURE);
        expect(innerWidth).toBe(390);
        if (scrollWidth > innerWidth) throw new Error(`${scrollWidth} px wide; widest ${widest}`);
      } finally {
        await page.close();
      }
    });
  });
});

import { chromium, type Browser, type Page } from 'playwright-core';
import { Queue, silentLogger } from '@sluice/core';
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
});

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { JOB_STATES, Queue, silentLogger } from '@sluice/core';
import { startDashboardServer, type DashboardServer } from '@sluice/dashboard';
import { useRedis } from '@sluice/testing';
import { createBrowserTestStore, type BrowserTestStore } from './browser-store';
import { startEmailWorker, waitFor } from './support';

const TOKEN = 'browser-test-token-8a7d';
// The README's screenshots are rewritten only on request (SLUICE_UPDATE_SCREENSHOTS=1): a test run
// leaves the checkout as it found it.
const SCREENSHOTS =
  process.env['SLUICE_UPDATE_SCREENSHOTS'] === '1'
    ? join(__dirname, '..', 'docs', 'screenshots')
    : mkdtempSync(join(tmpdir(), 'sluice-screenshots-'));
const XSS = '<script>window.__pwned = true</script><img src=x onerror="window.__pwned = true">';

jest.setTimeout(30_000);

describe('dashboard UI in headless Chromium (real Redis, real Worker)', () => {
  let fixture: BrowserTestStore;
  let worker: ReturnType<typeof startEmailWorker>;
  let server: DashboardServer;
  let browser: Browser;
  const ids: Record<string, string> = {};
  /** Uncaught page errors and CSP violations seen by any page. */
  const problems: string[] = [];

  // Jest runs afterAll hooks in the order they are declared: this one must run before the Redis
  // fixture's, which stops the server.
  afterAll(async () => {
    // Each step runs even if set-up stopped half-way (the later fixtures are then unset).
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
    for (const to of ['ada', 'grace', 'linus', 'barbara']) await emails.add({ to: `${to}@example.com` });
    ids['xss'] = (
      await emails.add({ to: 'mallory@example.com', note: XSS, fail: true }, { name: 'welcome' })
    ).id;
    ids['dead'] = (await emails.add({ to: 'nobody@example.com', fail: true }, { name: 'receipt' })).id;
    await emails.add({ to: 'later@example.com' }, { delayMs: 3_600_000, name: 'reminder' });
    const reports = new Queue<{ month: string }>(store, 'reports');
    await reports.addBulk(['2024-01', '2024-02', '2024-03'].map((month) => ({ data: { month } })));
    await waitFor(
      async () => {
        const s = await store.stats('emails');
        return s.counts.completed === 4 && s.counts.dead === 2;
      },
      { timeoutMs: 15_000, what: 'the first jobs to be processed' },
    );

    server = await startDashboardServer({
      store,
      port: 0,
      telemetry: worker.telemetry,
      logger: silentLogger,
      auth: { token: TOKEN },
      // Updates must come from the live stream (or the UI's own refresh after an action), not a poll.
      refreshIntervalMs: 60_000,
    });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-gpu',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);

  afterEach(() => {
    expect(problems).toEqual([]);
  });

  async function newPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content.Security.Policy|Refused to/i.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
    return page;
  }

  /** Opens the dashboard and signs in with the token, as a user would. */
  async function signedIn(hash = ''): Promise<Page> {
    const page = await newPage();
    await page.goto(server.url);
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-testid="queue-card"]').first().waitFor();
    if (hash) await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    return page;
  }

  const cardCount = (page: Page, queue: string, state: string) =>
    page.locator(`[data-testid="queue-card"][data-queue="${queue}"] [data-state="${state}"] dd`);

  it('without the token the API answers 401 and the UI shows a login prompt', async () => {
    const page = await newPage();
    try {
      await page.goto(server.url);
      const login = page.getByTestId('login');
      await login.waitFor();
      expect(await login.getByRole('heading').textContent()).toBe('Sign in');
      const status = await page.evaluate(async () => (await fetch('api/overview')).status);
      expect(status).toBe(401);

      await page.getByLabel('Access token').fill('not-the-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('That token was refused.').waitFor();

      await page.getByLabel('Access token').fill(TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('[data-testid="queue-card"][data-queue="emails"]').waitFor();
      expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('shows every queue with the right counts on the overview', async () => {
    const page = await signedIn();
    try {
      for (const queue of ['emails', 'reports']) {
        const stats = await fixture.store.stats(queue);
        for (const state of JOB_STATES) {
          await waitFor(
            async () => (await cardCount(page, queue, state).textContent()) === String(stats.counts[state]),
            {
              what: `${queue} ${state} = ${stats.counts[state]}`,
            },
          );
        }
      }
      expect(await cardCount(page, 'emails', 'completed').textContent()).toBe('4');
      expect(await cardCount(page, 'emails', 'dead').textContent()).toBe('2');
      expect(await cardCount(page, 'reports', 'ready').textContent()).toBe('3');
      await page.locator('.live[data-state="live"]').waitFor();
      await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('renders a <script> payload as text, and it does not run', async () => {
    const page = await signedIn(`#/queues/emails/jobs/${encodeURIComponent(ids['xss']!)}`);
    try {
      const payload = page.getByTestId('job-payload');
      await payload.waitFor();
      expect(await payload.textContent()).toContain(XSS.replace(/"/g, '\\"'));
      await page.getByTestId('job-errors').waitFor();
      expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
      expect(await page.locator('main script, main img').count()).toBe(0);
      await page.getByText('Stack trace').click();
      await page.screenshot({ path: join(SCREENSHOTS, 'job.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  it('retries a dead job from its page; the page follows the job to completed without a reload', async () => {
    const id = ids['dead']!;
    const page = await signedIn(`#/queues/emails/jobs/${encodeURIComponent(id)}`);
    try {
      const state = page.getByTestId('job-state');
      await state.filter({ hasText: /^dead$/ }).waitFor();
      await page.evaluate(() => ((globalThis as { __samePage?: boolean }).__samePage = true));
      worker.healed.add(id);

      await page.locator('[data-action="retry"]').click();
      const dialog = page.locator('dialog#confirm');
      await dialog.waitFor();
      expect(await dialog.textContent()).toContain(`Retry job ${id}?`);
      await page.getByTestId('confirm-ok').click();

      await state.filter({ hasText: /^completed$/ }).waitFor();
      expect(await state.textContent()).toBe('completed');
      expect((await fixture.store.getJob('emails', id))?.state).toBe('completed');
      expect(await page.evaluate(() => (globalThis as { __samePage?: boolean }).__samePage)).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('pauses a queue from the UI: no job starts until it is resumed', async () => {
    const store = fixture.store;
    const page = await signedIn('#/queues/emails');
    try {
      const pause = page.locator('[data-action="pause"]');
      await pause.waitFor();

      // Cancelling the dialog does nothing.
      await pause.click();
      await page.getByTestId('confirm-cancel').click();
      expect((await store.stats('emails')).paused).toBe(false);

      await pause.click();
      await page.getByTestId('confirm-ok').click();
      await page.getByTestId('paused').waitFor();
      expect((await store.stats('emails')).paused).toBe(true);

      const { id } = await worker.queue.add({ to: 'while-paused@example.com' });
      // The new job appears live (a wake-up on the stream), and stays ready.
      const readyCount = page.locator('.tab[data-state="ready"] .tab-count');
      await readyCount.filter({ hasText: /^1$/ }).waitFor();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await store.getJob('emails', id))?.state).toBe('ready');

      await page.locator('[data-action="resume"]').click();
      await page.getByTestId('confirm-ok').click();
      await waitFor(async () => (await store.getJob('emails', id))?.state === 'completed', {
        timeoutMs: 10_000,
        what: 'the job to run after resume',
      });
      await readyCount.filter({ hasText: /^0$/ }).waitFor();
      expect(await page.getByTestId('paused').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('refuses an action sent without the CSRF token', async () => {
    const page = await signedIn();
    try {
      const answers = await page.evaluate(async (token) => {
        const post = async (headers: Record<string, string>) => {
          const res = await fetch('api/queues/emails/pause', { method: 'POST', headers });
          return { status: res.status, body: (await res.json()) as { error: { code: string } } };
        };
        const auth = { Authorization: `Bearer ${token}` };
        return [await post(auth), await post({ ...auth, 'X-CSRF-Token': 'forged' })];
      }, TOKEN);
      for (const answer of answers) {
        expect(answer.status).toBe(403);
        expect(answer.body.error.code).toBe('csrf');
      }
      expect((await fixture.store.stats('emails')).paused).toBe(false);
    } finally {
      await page.close();
    }
  });
});

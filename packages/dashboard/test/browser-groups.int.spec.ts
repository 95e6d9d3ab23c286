import { chromium, type Browser, type Page } from 'playwright-core';
import { firstValueFrom } from 'rxjs';
import { definePipeline, Queue, silentLogger, Worker } from '@sluice/core';
import { startDashboardServer, type DashboardServer } from '@sluice/dashboard';
import { useRedis } from '@sluice/testing';
import { createBrowserTestStore, type BrowserTestStore } from './browser-store';
import { waitFor } from './support';

const TOKEN = 'browser-groups-token-41c9';

interface Measure {
  readonly scrollWidth: number;
  readonly innerWidth: number;
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

jest.setTimeout(60_000);

/**
 * A queue's groups on its page: busiest first with paging, pause and resume, a group's rate limit,
 * add with a group.
 */
describe('groups on the queue page in headless Chromium (real Redis, real Worker)', () => {
  let fixture: BrowserTestStore;
  let worker: Worker | undefined;
  let server: DashboardServer;
  let browser: Browser;
  const problems: string[] = [];
  /** Group of every job the worker completed, in completion order. */
  const completed: string[] = [];

  // Before useRedis(): this cleanup runs while the test Redis is still up.
  afterAll(async () => {
    for (const step of [
      () => browser.close(),
      () => server.close(),
      async () => {
        await worker?.close({ timeoutMs: 2000 });
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
    // 12 groups: g-01 has 1 ready job … g-12 has 12, so the busiest order is g-12 … g-01.
    const jobs = [];
    for (let i = 1; i <= 12; i++) {
      const group = `g-${String(i).padStart(2, '0')}`;
      for (let n = 0; n < i; n++) jobs.push({ data: { group, n }, options: { group } });
    }
    await new Queue(fixture.store, 'hooks').addBulk(jobs);
    server = await startDashboardServer({
      store: fixture.store,
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

  async function signedIn(hash: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    const made: string[] = [];
    changes.set(page, made);
    page.on('response', (res) => {
      const method = res.request().method();
      if (method !== 'GET') made.push(`${method} ${new URL(res.url()).pathname} → ${res.status()}`);
    });
    await page.addInitScript(`
      window.__toastsShown = [];
      new MutationObserver((records) => {
        for (const r of records)
          for (const n of r.addedNodes)
            if (n.classList && n.classList.contains('toast')) window.__toastsShown.push(n.className + ': ' + n.textContent);
      }).observe(document, { childList: true, subtree: true });
    `);
    await page.goto(server.url);
    await page.getByLabel('Access token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').first().waitFor();
    await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
    return page;
  }

  /** The API calls each page made that change something, with their answers: said when a toast does not come. */
  const changes = new WeakMap<Page, string[]>();
  /**
   * Waits until a toast holding `text` has been shown since the last one this took (recorded as it is
   * added, so one that is gone again by the time it is looked for still counts); on a timeout the error
   * lists the toasts shown, the changing API calls and the confirm dialog's state.
   */
  async function toastShown(page: Page, text: string, kind: 'ok' | 'error' = 'ok'): Promise<void> {
    const take = `(() => {
      const shown = window.__toastsShown;
      const i = shown.findIndex((t) => t.includes(${JSON.stringify(`toast-${kind}`)}) && t.includes(${JSON.stringify(text)}));
      if (i < 0) return false;
      shown.splice(0, i + 1);
      return true;
    })()`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (await page.evaluate(take)) return;
      if (Date.now() > deadline) {
        const state = await page.evaluate(
          `({ toasts: window.__toastsShown, open: document.getElementById('confirm').open, title: document.getElementById('confirm-title').textContent })`,
        );
        throw new Error(
          `no ${kind} toast with ${JSON.stringify(text)}; shown and dialog: ${JSON.stringify(state)}; ` +
            `API changes: ${JSON.stringify(changes.get(page) ?? [])}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const rowGroups = (page: Page) =>
    page
      .locator('[data-testid="group-list"] tr[data-group]')
      .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { group: string } }).dataset.group));

  it('lists the groups busiest first, ten to a page', async () => {
    const page = await signedIn('#/queues/hooks');
    try {
      await page.locator('[data-testid="group-list"] tr[data-group="g-12"]').waitFor();
      expect(await rowGroups(page)).toEqual([
        'g-12',
        'g-11',
        'g-10',
        'g-09',
        'g-08',
        'g-07',
        'g-06',
        'g-05',
        'g-04',
        'g-03',
      ]);
      const first = page.locator('tr[data-group="g-12"]');
      expect(await first.locator('td[data-label="Ready"]').textContent()).toBe('12');
      expect(await first.locator('td[data-label="Active"]').textContent()).toBe('0');
      expect(await page.getByTestId('groups-summary').textContent()).toBe(
        '12 groups with jobs, busiest first',
      );

      await page.getByTestId('groups-pager').getByRole('link', { name: 'Quieter →' }).click();
      await page.locator('[data-testid="group-list"] tr[data-group="g-01"]').waitFor();
      expect(await rowGroups(page)).toEqual(['g-02', 'g-01']);
      expect(await page.getByTestId('groups-pager').textContent()).toContain('11–12 of 12');

      // A group's name filters the job list to its jobs.
      await page.locator('tr[data-group="g-02"] td[data-label="Group"] a').click();
      await page.locator('[data-testid="jobs"] tr[data-job]').nth(1).waitFor();
      const shown = await page.locator('[data-testid="jobs"] [data-testid="job-group"]').allTextContents();
      expect(shown).toEqual(['g-02', 'g-02']);
      expect(await page.getByTestId('filter').locator('input[name="group"]').inputValue()).toBe('g-02');
    } finally {
      await page.close();
    }
  });

  it("shows a group's weight and, while its rate limit holds it back, for how long", async () => {
    const store = fixture.store;
    await store.setGroupWeight!('hooks', 'g-11', 3);
    // A group whose 1-a-minute limit is spent: a reserve leases its first job and holds it back.
    await new Queue(store, 'metered').addBulk(
      [1, 2].map((n) => ({ data: { n }, options: { group: 'slow' } })),
    );
    const limited = { leaseMs: 60_000, groups: { rateLimit: { allowed: 1, periodMs: 60_000, marginMs: 0 } } };
    await firstValueFrom(store.reserve('metered', 5, limited));
    await firstValueFrom(store.reserve('metered', 5, limited));
    const page = await signedIn('#/queues/hooks');
    try {
      const weighted = page.locator('tr[data-group="g-11"]');
      await weighted.getByTestId('group-weight').waitFor();
      expect(await weighted.getByTestId('group-weight').textContent()).toBe('weight 3');
      expect(await page.locator('tr[data-group="g-12"]').getByTestId('group-weight').count()).toBe(0);
      await page.evaluate(`location.hash = '#/queues/metered'`);
      const slow = page.locator('tr[data-group="slow"]');
      await slow.getByTestId('group-limited').waitFor();
      // Within the minute the window lasts (a bound, not a timing: the page may load slowly).
      const shown = (await slow.getByTestId('group-limited').textContent()) ?? '';
      expect(shown).toMatch(/^limited \d+ s$/);
      expect(Number(/\d+/.exec(shown)?.[0])).toBeLessThanOrEqual(60);
      expect(await page.locator('tr[data-group="slow"]').getByTestId('group-weight').count()).toBe(0);
    } finally {
      await page.close();
      await store.setGroupWeight!('hooks', 'g-11', null);
    }
  });

  it('adds a job with a group from the form, and shows the group on its page', async () => {
    const page = await signedIn('#/queues/hooks');
    try {
      const form = page.getByTestId('add-job');
      await form.locator('textarea[name="data"]').fill('{"from":"form"}');
      await form.locator('input[name="group"]').fill('from-form');
      await form.locator('input[name="priority"]').fill('7');
      await form.locator('[data-action="add-job"]').click();
      await toastShown(page, 'added to group from-form');
      const added = (await fixture.store.listJobs('hooks', 'ready', { limit: 200 })).find(
        (j) => j.group === 'from-form',
      );
      expect(added).toMatchObject({ data: { from: 'form' }, priority: 7 });

      // A payload that is not JSON is refused in the page; nothing is added.
      await form.locator('textarea[name="data"]').fill('{oops');
      await form.locator('[data-action="add-job"]').click();
      await toastShown(page, 'The payload is not JSON', 'error');
      expect((await fixture.store.stats('hooks')).counts.ready).toBe(79);

      await page.evaluate(`location.hash = ${JSON.stringify(`#/queues/hooks/jobs/${added!.id}`)}`);
      const group = page.getByTestId('job-group');
      await group.waitFor();
      expect(await group.textContent()).toBe('from-form');
    } finally {
      await page.close();
    }
  });

  it('sets a group’s rate limit from the form, shows it under the group’s name, and clears it', async () => {
    const store = fixture.store;
    const page = await signedIn('#/queues/hooks');
    try {
      const row = page.locator('[data-testid="group-list"] tr[data-group="g-12"]');
      await row.waitFor();
      expect(await page.locator('[data-testid="group-list"] [data-testid="group-limit"]').count()).toBe(0);
      // The form stays where it is while the list refreshes around it (moving it would blur the
      // field being typed in, and a test's typing could land nowhere): count every removal.
      await page.evaluate(`(() => {
        const form = document.querySelector('[data-testid="group-limit-form"]');
        window.__formRemovals = 0;
        new MutationObserver((records) => {
          for (const r of records)
            for (const n of r.removedNodes) if (n === form || (n.contains && n.contains(form))) window.__formRemovals++;
        }).observe(document.getElementById('main'), { childList: true, subtree: true });
      })()`);

      const form = page.getByTestId('group-limit-form');
      await form.locator('input[name="group"]').fill('g-12');
      await form.locator('input[name="allowed"]').fill('25');
      await form.locator('input[name="periodMs"]').fill('2000');
      await form.locator('[data-action="set-group-limit"]').click();
      expect(await page.locator('#confirm-title').textContent()).toBe('Set group g-12 to 25 per 2 s?');
      await page.getByTestId('confirm-ok').click();
      await toastShown(page, 'Group g-12: 25 per 2 s');
      expect(await store.getGroupLimit!('hooks', 'g-12')).toEqual({ allowed: 25, periodMs: 2000 });
      await row.getByTestId('group-limit').waitFor();
      expect(await row.getByTestId('group-limit').textContent()).toBe('limit 25 per 2 s · change');
      // Only that group shows numbers of its own.
      expect(await page.locator('[data-testid="group-list"] [data-testid="group-limit"]').count()).toBe(1);

      // A group with no job (so not on the list) gets its numbers too, and loses them with Clear.
      await form.locator('input[name="group"]').fill('premium/a b');
      await form.locator('input[name="allowed"]').fill('250');
      await form.locator('input[name="periodMs"]').fill('60000');
      await form.locator('[data-action="set-group-limit"]').click();
      await page.getByTestId('confirm-ok').click();
      await toastShown(page, 'Group premium/a b: 250 per 60 s');
      expect(await store.getGroupLimit!('hooks', 'premium/a b')).toEqual({ allowed: 250, periodMs: 60_000 });
      await form.locator('[data-action="clear-group-limit"]').click();
      expect(await page.locator('#confirm-title').textContent()).toBe(
        'Clear the numbers of group premium/a b?',
      );
      await page.getByTestId('confirm-ok').click();
      await toastShown(page, 'Group premium/a b: back to the pipeline');
      expect(await store.getGroupLimit!('hooks', 'premium/a b')).toBeNull();

      // Numbers the API refuses are reported, and nothing changes.
      await form.locator('input[name="group"]').fill('g-12');
      await form.locator('input[name="allowed"]').fill('2000000');
      await form.locator('input[name="periodMs"]').fill('1000');
      await page.evaluate(`document.querySelector('[data-testid="group-limit-form"]').noValidate = true`);
      await form.locator('[data-action="set-group-limit"]').click();
      expect(await page.locator('#confirm-title').textContent()).toBe('Set group g-12 to 2,000,000 per s?');
      await page.getByTestId('confirm-ok').click();
      await toastShown(page, '"allowed" must be an integer from 1 to 1000000', 'error');
      expect(await store.getGroupLimit!('hooks', 'g-12')).toEqual({ allowed: 25, periodMs: 2000 });
      // Four changes, each followed by a refresh of the list: the form never left the page.
      expect(await page.evaluate('window.__formRemovals')).toBe(0);

      // "change" under the group's name fills the form with its numbers; Clear goes back to the pipeline's.
      await form.locator('input[name="group"]').fill('');
      await row.locator('[data-action="edit-group-limit"]').click();
      expect(
        await Promise.all(
          ['group', 'allowed', 'periodMs'].map((n) => form.locator(`input[name="${n}"]`).inputValue()),
        ),
      ).toEqual(['g-12', '25', '2000']);
      await form.locator('[data-action="clear-group-limit"]').click();
      await page.getByTestId('confirm-ok').click();
      await toastShown(page, 'Group g-12: back to the pipeline');
      expect(await store.getGroupLimit!('hooks', 'g-12')).toBeNull();
      await waitFor(async () => (await row.getByTestId('group-limit').count()) === 0, {
        what: 'the limit to go',
      });
    } finally {
      await page.close();
    }
  });

  it('pauses one group and resumes it; a real worker runs every other group meanwhile', async () => {
    const store = fixture.store;
    const page = await signedIn('#/queues/hooks');
    try {
      const row = page.locator('[data-testid="group-list"] tr[data-group="g-11"]');
      await row.locator('[data-action="pause-group"]').click();
      await page.getByTestId('confirm-ok').click();
      await row.getByTestId('group-state').filter({ hasText: 'paused' }).waitFor();
      expect((await store.listGroups!('hooks', { limit: 100 })).filter((g) => g.paused)).toEqual([
        { group: 'g-11', ready: 11, active: 0, paused: true },
      ]);
      await page.getByTestId('groups-summary').filter({ hasText: '1 paused' }).waitFor();

      worker = new Worker({
        store,
        logger: silentLogger,
        pipelines: [
          definePipeline<{ group?: string }>({
            queue: 'hooks',
            concurrency: 4,
            groups: { concurrency: 1 },
            handler: (job) => {
              completed.push(job.group ?? '');
              return Promise.resolve('ok');
            },
          }),
        ],
      });
      worker.start();
      // Every job but the paused group's 11: 78 + 1 from the form - 11.
      await waitFor(() => completed.length === 79 - 11, { timeoutMs: 20_000, what: 'the other groups' });
      expect(completed).not.toContain('g-11');
      await page.evaluate('location.reload()');
      await page.locator('[data-testid="group-list"] tr[data-group="g-11"]').waitFor();
      expect(await rowGroups(page)).toEqual(['g-11']);
      expect((await store.stats('hooks')).counts.ready).toBe(11);

      await page.locator('tr[data-group="g-11"] [data-action="resume-group"]').click();
      await page.getByTestId('confirm-ok').click();
      await waitFor(() => completed.length === 79, { timeoutMs: 20_000, what: 'the resumed group' });
      await page.getByTestId('groups').filter({ hasText: 'No group holds a job' }).waitFor();
    } finally {
      await page.close();
    }
  });

  it('fits a 390 px wide screen with groups, the add form and grouped jobs', async () => {
    await new Queue(fixture.store, 'hooks').addBulk(
      ['a-rather-long-customer-name-with-no-spaces-at-all-0001', 'b', 'c'].map((group) => ({
        data: { group },
        options: { group, delayMs: 3_600_000 },
      })),
    );
    await fixture.store.pauseGroup!('hooks', 'paused-and-empty');
    // A group with numbers of its own: the Limit column and its Clear button fit too.
    await fixture.store.setGroupLimit!('hooks', 'paused-and-empty', { allowed: 250, periodMs: 60_000 });
    const page = await signedIn('#/queues/hooks?state=scheduled', { width: 390, height: 844 });
    try {
      await page.locator('[data-testid="jobs"] tr[data-job]').first().waitFor();
      await page.locator('[data-testid="group-list"] tr[data-group]').first().waitFor();
      await page.locator('tr[data-group="paused-and-empty"] [data-testid="group-limit"]').waitFor();
      await page.getByTestId('group-limit-form').waitFor();
      const { scrollWidth, innerWidth, widest } = await page.evaluate<Measure>(MEASURE);
      expect(innerWidth).toBe(390);
      if (scrollWidth > innerWidth) throw new Error(`${scrollWidth} px wide; widest ${widest}`);
      // The group list fits its card: no sideways scrolling inside it either.
      const list = await page.evaluate<{ scrollWidth: number; clientWidth: number }>(
        `(() => { const w = document.querySelector('[data-testid="group-list"]').parentElement; return { scrollWidth: w.scrollWidth, clientWidth: w.clientWidth }; })()`,
      );
      expect(list.scrollWidth).toBeLessThanOrEqual(list.clientWidth);
    } finally {
      await page.close();
      await fixture.store.setGroupLimit!('hooks', 'paused-and-empty', null);
    }
  });
});

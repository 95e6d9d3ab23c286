import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, take } from 'rxjs';
import { MemoryStore, Queue, silentLogger, type JobRecord, type TelemetryEvent } from '@sluice/core';
import {
  createDashboard,
  startDashboardServer,
  type DashboardHandler,
  type DashboardServer,
  type JobDetailView,
  type JobListView,
  type OverviewView,
  type QueueDetailView,
  type SessionView,
} from '@sluice/dashboard';
import { ApiClient, startEmailWorker, waitFor, type Email } from './support';

const TOKEN = 'test-token-5f1c9e';

/** Masks the password of a payload and the receipt of a result. */
function redact(job: JobRecord) {
  const data: Record<string, unknown> = { ...(job.data as object) };
  if ('password' in data) data['password'] = '***';
  const result = job.result === undefined ? undefined : { ...(job.result as object), receipt: '[hidden]' };
  return result === undefined ? { data } : { data, result };
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const urlOf = (server: Server): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

describe('dashboard API over node:http (MemoryStore, real Worker)', () => {
  let store: MemoryStore;
  let fixture: ReturnType<typeof startEmailWorker>;
  let server: DashboardServer;
  let api: ApiClient;
  const ids: Record<string, string> = {};

  const stats = () => store.stats('emails');

  beforeAll(async () => {
    store = new MemoryStore();
    fixture = startEmailWorker(store);
    const q = fixture.queue;
    ids['alice'] = (await q.add({ to: 'alice@example.com', password: 'hunter2', note: 'vip' })).id;
    for (const to of ['bob', 'carol', 'dan']) await q.add({ to: `${to}@example.com` });
    ids['welcome'] = (await q.add({ to: 'erin@example.com' }, { name: 'welcome' })).id;
    ids['dead1'] = (await q.add({ to: 'nobody@example.com', fail: true })).id;
    ids['dead2'] = (await q.add({ to: 'ghost@example.com', fail: true })).id;
    ids['later'] = (await q.add({ to: 'later@example.com' }, { delayMs: 3_600_000 })).id;
    await waitFor(async () => {
      const s = await stats();
      return s.counts.completed === 5 && s.counts.dead === 2;
    });

    const reports = new Queue<{ n: number; customer: string }>(store, 'reports');
    await reports.addBulk(
      Array.from({ length: 30 }, (_, n) => ({
        data: { n, customer: n % 3 === 0 ? 'acme' : 'globex' },
        options: { name: n % 2 === 0 ? 'monthly' : 'weekly' },
      })),
    );

    server = await startDashboardServer({
      store,
      port: 0,
      telemetry: fixture.telemetry,
      logger: silentLogger,
      auth: { token: TOKEN },
      redact,
      actor: (req) => (typeof req.headers['x-user'] === 'string' ? req.headers['x-user'] : undefined),
    });
    api = new ApiClient(server.url, TOKEN);
    await api.session();
  });

  afterAll(async () => {
    await server.close();
    await fixture.stop();
    await store.close();
  });

  describe('security', () => {
    it('sets security headers on the UI, its assets, the API and errors', async () => {
      for (const path of ['', 'app.js', 'app.css', 'api/overview', 'api/nope', 'api/queues/ghost']) {
        const { headers } = await api.get(path);
        expect(headers.get('x-content-type-options')).toBe('nosniff');
        expect(headers.get('x-frame-options')).toBe('DENY');
        expect(headers.get('referrer-policy')).toBe('no-referrer');
        const csp = headers.get('content-security-policy') ?? '';
        expect(csp).toContain("frame-ancestors 'none'");
        expect(csp).not.toContain('unsafe-inline');
        expect(csp).not.toContain('unsafe-eval');
      }
      const page = await fetch(server.url);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const js = await fetch(`${server.url}app.js`);
      expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      // Read both bodies: a response left unread keeps its connection open after the server closed
      // (the client stops reading the socket), and the open socket outlives the test file.
      expect(await page.text()).toContain('<html');
      expect(await js.text()).not.toBe('');
      const api404 = await api.get('api/overview');
      expect(api404.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(api404.headers.get('cache-control')).toBe('no-store');
    });

    it('serves HTML with no inline script, style or event handler (the CSP would block them)', async () => {
      const html = await (await fetch(server.url)).text();
      expect(html).toMatch(/<script type="module" src="\.\/app\.js"><\/script>/);
      expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(html).not.toMatch(/<style/i);
      expect(html).not.toMatch(/\sstyle=/i);
      expect(html).not.toMatch(/\son[a-z]+=/i);
    });

    it('revalidates assets with ETags', async () => {
      const first = await fetch(`${server.url}app.css`);
      const etag = first.headers.get('etag') ?? '';
      expect(etag).not.toBe('');
      const again = await fetch(`${server.url}app.css`, { headers: { 'If-None-Match': etag } });
      expect(again.status).toBe(304);
    });

    it('answers 401 without the token, or with a wrong one; the UI files stay public', async () => {
      const anonymous = new ApiClient(server.url);
      for (const path of ['api/session', 'api/overview', 'api/queues/emails/jobs', 'metrics']) {
        const res = await anonymous.get(path);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="sluice"');
      }
      const res = await anonymous.get('api/overview');
      expect(res.body.error).toMatchObject({ status: 401, code: 'unauthorized', login: 'token' });
      expect((await new ApiClient(server.url, 'wrong').get('api/overview')).status).toBe(401);
      expect((await anonymous.get('')).status).toBe(200);
      expect((await anonymous.get('app.js')).status).toBe(200);
      const action = await anonymous.act('POST', 'api/queues/emails/pause');
      expect(action.status).toBe(401);
      expect((await stats()).paused).toBe(false);
    });

    it('lets an authorize() hook admit requests without the token', async () => {
      const dashboard = createDashboard({
        store,
        logger: silentLogger,
        metrics: false,
        auth: { token: TOKEN, authorize: (req) => req.headers['x-sso-user'] === 'ada' },
      });
      const http = await listen(dashboard);
      try {
        const base = `${urlOf(http)}/`;
        const sso = await fetch(`${base}api/overview`, { headers: { 'X-SSO-User': 'ada' } });
        expect(sso.status).toBe(200);
        expect((await fetch(`${base}api/overview`, { headers: { 'X-SSO-User': 'eve' } })).status).toBe(401);
        expect((await new ApiClient(base, TOKEN).get('api/overview')).status).toBe(200);
      } finally {
        await dashboard.close();
        await closeServer(http);
      }
    });
  });

  describe('reading', () => {
    it('issues a session with a CSRF token bound to a SameSite=Strict HttpOnly cookie', async () => {
      const res = await fetch(`${server.url}api/session`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      const cookie = res.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/^sluice_csrf=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict$/);
      const body = (await res.json()) as SessionView;
      expect(body).toMatchObject({ readOnly: false, login: 'token', title: 'Sluice', historyMinutes: 60 });
      expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });

    it('shows every queue with counts, history, rate limits and live workers', async () => {
      const { status, body } = await api.get<OverviewView>('api/overview');
      expect(status).toBe(200);
      expect(body.queues.map((q) => q.name)).toEqual(['emails', 'reports']);
      const emails = body.queues.find((q) => q.name === 'emails')!;
      expect(emails.counts).toEqual({
        ready: 0,
        scheduled: 1,
        running: 0,
        completed: 5,
        dead: 2,
        cancelled: 0,
      });
      expect(emails.paused).toBe(false);
      expect(emails.history).toHaveLength(60);
      expect(emails.lastHour).toMatchObject({ completed: 5, failed: 2, minutes: 60 });
      expect(emails.lastHour.failureRate).toBeCloseTo(2 / 7);
      expect(emails.rateLimits).toEqual([
        {
          key: 'emails',
          allowed: 100,
          periodMs: 1000, // as configured; the store's window adds the margin
          per: 'job',
          used: expect.any(Number),
          leadCapped: false,
          marginCapped: false,
          pipelines: ['emails'],
        },
      ]);
      expect(emails.pipelines).toBe(1);
      const reports = body.queues.find((q) => q.name === 'reports')!;
      expect(reports.counts.ready).toBe(30);
      expect(reports.rateLimits).toEqual([]);
      expect(body.workers).toEqual([
        expect.objectContaining({
          id: fixture.worker.id,
          pipelines: [expect.objectContaining({ name: 'emails', queue: 'emails', concurrency: 4 })],
        }),
      ]);
    });

    it('shows a queue page: counts, concurrency override, config, cron entries and its workers', async () => {
      await store.setQueueConfig('reports', {
        retention: { keep: 'count', count: 10 },
        schedules: {
          nightly: { cron: '0 3 * * *', data: { customer: 'acme', password: 'swordfish' }, timezone: 'UTC' },
          broken: { data: {} },
          typo: { cron: '61 * * * *' },
          everyFiveMinutes: { cron: '*/5 * * * *' },
        },
      } as never);
      const before = Date.now();
      const { body } = await api.get<QueueDetailView>('api/queues/reports');
      const after = Date.now();
      expect(body).toMatchObject({
        name: 'reports',
        concurrency: null,
        config: { retention: { keep: 'count', count: 10 } },
        invalidSchedules: 1,
        workers: [],
      });
      // The next ticks, computed here by hand: 03:00 UTC daily, and every whole five minutes.
      const nextAt = (t: number, stepMs: number, offsetMs: number) =>
        Math.floor((t - offsetMs) / stepMs) * stepMs + stepMs + offsetMs;
      const day = 86_400_000;
      const nightly = nextAt(before, day, 3 * 3_600_000);
      const five = nextAt(before, 300_000, 0);
      // (The request might straddle a tick; then the later one is the answer.)
      const expectNext = (actual: number | undefined, atBefore: number, atAfter: number): void => {
        expect([atBefore, atAfter]).toContain(actual);
      };
      expect(body.schedules.map((e) => e.name)).toEqual(['everyFiveMinutes', 'nightly', 'typo']);
      const [every, night, typo] = body.schedules;
      expect(night).toMatchObject({
        name: 'nightly',
        cron: '0 3 * * *',
        timezone: 'UTC',
        data: { customer: 'acme', password: '***' },
      });
      expectNext(night?.nextRunAt, nightly, nextAt(after, day, 3 * 3_600_000));
      expect(night?.upcoming).toEqual([0, 1, 2, 3, 4].map((i) => night!.nextRunAt! + i * day));
      expectNext(every?.nextRunAt, five, nextAt(after, 300_000, 0));
      expect(every?.upcoming[1]).toBe(every!.nextRunAt! + 300_000);
      expect(every?.error).toBeUndefined();
      expect(typo).toMatchObject({ name: 'typo', upcoming: [] });
      expect(typo?.nextRunAt).toBeUndefined();
      expect(typo?.error).toMatch(/minute field "61" value 61 is outside 0-59/);
      const emails = await api.get<QueueDetailView>('api/queues/emails');
      expect(emails.body.schedules).toEqual([]);
      expect(emails.body.workers).toHaveLength(1);
    });

    it('paginates jobs by state', async () => {
      const seen: string[] = [];
      const pages: JobListView[] = [];
      for (const offset of [0, 10, 20]) {
        const { body } = await api.get<JobListView>(
          `api/queues/reports/jobs?state=ready&offset=${offset}&limit=10`,
        );
        pages.push(body);
        seen.push(...body.jobs.map((j) => j.id));
      }
      expect(pages.map((p) => p.hasMore)).toEqual([true, true, false]);
      expect(pages.every((p) => p.total === 30 && p.limit === 10)).toBe(true);
      expect(new Set(seen).size).toBe(30);
      const beyond = await api.get<JobListView>('api/queues/reports/jobs?state=ready&offset=30&limit=10');
      expect(beyond.body.jobs).toEqual([]);
      const dflt = await api.get<JobListView>('api/queues/reports/jobs');
      expect(dflt.body).toMatchObject({ state: 'ready', offset: 0, limit: 25, hasMore: true });
    });

    it('filters by name and payload text, with pagination over the matches', async () => {
      const monthly = await api.get<JobListView>('api/queues/reports/jobs?state=ready&name=MONTH&limit=200');
      expect(monthly.body.jobs).toHaveLength(15);
      expect(monthly.body.jobs.every((j) => j.name === 'monthly')).toBe(true);
      expect(monthly.body.filter).toEqual({ name: 'MONTH', scanned: 30, complete: true });

      const acme = await api.get<JobListView>('api/queues/reports/jobs?state=ready&text=acme&limit=200');
      expect(acme.body.jobs).toHaveLength(10);
      expect(acme.body.jobs.every((j) => j.preview.includes('"acme"'))).toBe(true);

      const both = await api.get<JobListView>(
        'api/queues/reports/jobs?state=ready&name=monthly&text=acme&limit=3',
      );
      expect(both.body.jobs).toHaveLength(3);
      expect(both.body.hasMore).toBe(true);
      const rest = await api.get<JobListView>(
        'api/queues/reports/jobs?state=ready&name=monthly&text=acme&limit=3&offset=3',
      );
      expect(rest.body.jobs).toHaveLength(2); // n = 0, 6, 12, 18, 24
      expect(rest.body.hasMore).toBe(false);
    });

    it('applies redact() to previews, the payload filter, payloads and results', async () => {
      const completed = await api.get<JobListView>('api/queues/emails/jobs?state=completed');
      const alice = completed.body.jobs.find((j) => j.id === ids['alice'])!;
      expect(alice.preview).toContain('"password":"***"');
      expect(JSON.stringify(completed.body)).not.toContain('hunter2');
      const probe = await api.get<JobListView>('api/queues/emails/jobs?state=completed&text=hunter2');
      expect(probe.body.jobs).toEqual([]);

      const { body } = await api.get<{ job: JobDetailView }>(`api/queues/emails/jobs/${ids['alice']}`);
      expect(body.job.data).toEqual({ to: 'alice@example.com', password: '***', note: 'vip' });
      expect(body.job.result).toEqual({ sent: 'alice@example.com', receipt: '[hidden]' });
      expect(JSON.stringify(body)).not.toContain('receipt-secret');
    });

    it('hides payloads whose redaction throws', async () => {
      const dashboard = createDashboard({
        store,
        logger: silentLogger,
        metrics: false,
        redact: () => {
          throw new Error('boom');
        },
      });
      const http = await listen(dashboard);
      try {
        const res = await fetch(`${urlOf(http)}/api/queues/emails/jobs/${ids['alice']}`);
        const body = (await res.json()) as { job: JobDetailView };
        expect(body.job.data).toBe('[redaction failed]');
        expect(body.job.result).toBe('[redaction failed]');
      } finally {
        await dashboard.close();
        await closeServer(http);
      }
    });

    it('shows a job page: attempts with errors and stacks, options, timings; never the lease token', async () => {
      const { status, body } = await api.get<{ job: JobDetailView }>(
        `api/queues/emails/jobs/${ids['dead1']}`,
      );
      expect(status).toBe(200);
      const job = body.job;
      expect(job).toMatchObject({
        id: ids['dead1'],
        queue: 'emails',
        name: 'emails',
        state: 'dead',
        attempt: 1,
        options: { priority: 0, maxAttempts: 5 },
        data: { to: 'nobody@example.com', fail: true },
      });
      expect(job.reason).toContain('does not exist');
      expect(job.errors).toHaveLength(1);
      expect(job.errors[0]).toMatchObject({
        attempt: 1,
        name: 'PermanentError',
        message: 'mailbox nobody@example.com does not exist',
      });
      expect(job.errors[0]?.stack).toContain('PermanentError');
      expect(job.timings.createdAt).toBeLessThanOrEqual(job.timings.startedAt!);
      expect(job.timings.durationMs).toBeGreaterThanOrEqual(0);
      expect(job.timings.waitMs).toBeGreaterThanOrEqual(0);

      expect((await store.getJob('emails', ids['later']!))?.state).toBe('scheduled');
      const later = await api.get<{ job: JobDetailView }>(`api/queues/emails/jobs/${ids['later']}`);
      expect(JSON.stringify(later.body)).not.toMatch(/"token"/);
    });

    it('looks a job up by an id that needs URL encoding', async () => {
      await new Queue<Email>(store, 'emails').add(
        { to: 'x@example.com' },
        { id: 'order 7/a?b', delayMs: 3_600_000 },
      );
      const res = await api.get<{ job: JobDetailView }>(
        `api/queues/emails/jobs/${encodeURIComponent('order 7/a?b')}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.job.id).toBe('order 7/a?b');
      await store.removeJob('emails', 'order 7/a?b');
    });
  });

  describe('validation', () => {
    it.each([
      ['a queue name with spaces', 'api/queues/bad%20name!', 'invalid_queue'],
      ['a bad queue name in a job list', 'api/queues/bad%20name!/jobs', 'invalid_queue'],
      ['an unknown state', 'api/queues/emails/jobs?state=nope', 'invalid_state'],
      ['a negative offset', 'api/queues/emails/jobs?offset=-1', 'invalid_pagination'],
      ['a zero limit', 'api/queues/emails/jobs?limit=0', 'invalid_pagination'],
      ['a limit above 200', 'api/queues/emails/jobs?limit=1000', 'invalid_pagination'],
      ['a limit that is not a number', 'api/queues/emails/jobs?limit=ten', 'invalid_pagination'],
      ['a fractional offset', 'api/queues/emails/jobs?offset=1.5', 'invalid_pagination'],
      ['a repeated offset', 'api/queues/emails/jobs?offset=1&offset=2', 'bad_request'],
      ['a 201-character filter', `api/queues/emails/jobs?name=${'x'.repeat(201)}`, 'bad_request'],
      ['a 257-character job id', `api/queues/emails/jobs/${'x'.repeat(257)}`, 'invalid_id'],
      ['a broken percent-encoding', 'api/queues/emails/jobs/%E0%A4%A', 'bad_request'],
      ['a bad queue name to watch', 'api/events?queue=no%20spaces', 'invalid_queue'],
    ])('GET with %s → 400', async (_label, path, code) => {
      const res = await api.get(path);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toEqual(expect.any(String));
    });

    it.each([
      [{ concurrency: 0 }],
      [{ concurrency: 2.5 }],
      [{ concurrency: '3' }],
      [{ concurrency: 1_000_000 }],
      [{}],
      ['{ not json'],
      ['[1, 2]'],
    ])('PUT concurrency with %j → 400', async (body) => {
      const res = await api.act('PUT', 'api/queues/emails/concurrency', body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('bad_request');
    });

    it('refuses bodies that are not JSON (415) or too large (413)', async () => {
      const text = await fetch(`${server.url}api/queues/emails/concurrency`, {
        method: 'PUT',
        headers: api.headers({ 'X-CSRF-Token': api.csrf.token, 'Content-Type': 'text/plain' }),
        body: 'concurrency=3',
      });
      expect(text.status).toBe(415);
      const large = await api.act('PUT', 'api/queues/emails/concurrency', {
        concurrency: 2,
        pad: 'x'.repeat(20_000),
      });
      expect(large.status).toBe(413);
    });

    it('refuses to purge a state that is not terminal', async () => {
      const res = await api.act('POST', 'api/queues/emails/ready/purge');
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_state');
    });

    it.each([
      ['api/nope'],
      ['api/queues/ghost'],
      ['api/queues/ghost/jobs'],
      ['api/queues/emails/jobs/no-such-job'],
      ['api/queues/emails/jobs/1/extra'],
      ['nothing-here'],
      ['api'],
    ])('GET %s → 404', async (path) => {
      const res = await api.get(path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    });

    it('answers a known path with the wrong method with 405 and Allow', async () => {
      const res = await api.get('api/queues/emails/pause');
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      const asset = await api.act('POST', 'app.js');
      expect(asset.status).toBe(405);
    });

    it('does not create a queue by looking at it', async () => {
      await api.get('api/queues/phantom');
      await api.act('POST', 'api/queues/phantom/pause');
      expect(await store.queues()).not.toContain('phantom');
    });
  });

  describe('CSRF', () => {
    it('refuses an action without the token header, without the cookie, or with a wrong token', async () => {
      const noHeader = await fetch(`${server.url}api/queues/emails/pause`, {
        method: 'POST',
        headers: api.headers(),
      });
      expect(noHeader.status).toBe(403);
      expect(((await noHeader.json()) as { error: { code: string } }).error.code).toBe('csrf');

      const noCookie = await fetch(`${server.url}api/queues/emails/pause`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'X-CSRF-Token': api.csrf.token },
      });
      expect(noCookie.status).toBe(403);

      const wrong = await fetch(`${server.url}api/queues/emails/pause`, {
        method: 'POST',
        headers: api.headers({ 'X-CSRF-Token': `${api.csrf.token.slice(0, -2)}xx` }),
      });
      expect(wrong.status).toBe(403);

      // A cookie planted by someone else (a sibling subdomain) does not match a stolen token.
      const planted = await fetch(`${server.url}api/queues/emails/pause`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          Cookie: `sluice_csrf=${'A'.repeat(43)}`,
          'X-CSRF-Token': api.csrf.token,
        },
      });
      expect(planted.status).toBe(403);

      const crossSite = await fetch(`${server.url}api/queues/emails/pause`, {
        method: 'POST',
        headers: api.headers({ 'X-CSRF-Token': api.csrf.token, 'Sec-Fetch-Site': 'cross-site' }),
      });
      expect(crossSite.status).toBe(403);
      expect((await stats()).paused).toBe(false);
    });

    it('accepts tokens across replicas that share a secret, and only then', async () => {
      const secret = 'a-shared-secret-of-32-characters!';
      const handlers = [secret, secret, 'another-secret-of-32-characters!!'].map((s) =>
        createDashboard({ store, logger: silentLogger, metrics: false, csrf: { secret: s } }),
      );
      const servers = await Promise.all(handlers.map((h) => listen(h)));
      try {
        const first = new ApiClient(`${urlOf(servers[0]!)}/`);
        await first.session();
        const headers = { Cookie: first.csrf.cookie, 'X-CSRF-Token': first.csrf.token };
        const sameSecret = await fetch(`${urlOf(servers[1]!)}/api/queues/reports/pause`, {
          method: 'POST',
          headers,
        });
        expect(sameSecret.status).toBe(200);
        const otherSecret = await fetch(`${urlOf(servers[2]!)}/api/queues/reports/resume`, {
          method: 'POST',
          headers,
        });
        expect(otherSecret.status).toBe(403);
        await store.resume('reports');
      } finally {
        for (const h of handlers) await h.close();
        for (const s of servers) await closeServer(s);
      }
    });
  });

  describe('read-only mode', () => {
    let readOnly: DashboardHandler;
    let http: Server;
    let client: ApiClient;

    beforeAll(async () => {
      readOnly = createDashboard({ store, logger: silentLogger, readOnly: true, metrics: false });
      http = await listen(readOnly);
      client = new ApiClient(`${urlOf(http)}/`);
    });
    afterAll(async () => {
      await readOnly.close();
      await closeServer(http);
    });

    it('says so in the session and refuses every action with 403, CSRF token or not', async () => {
      const session = await client.session();
      expect(session['readOnly']).toBe(true);
      expect(session['login']).toBe('none');
      const attempts: [string, string, unknown?][] = [
        ['POST', 'api/queues/emails/pause'],
        ['POST', 'api/queues/emails/resume'],
        ['PUT', 'api/queues/emails/concurrency', { concurrency: 3 }],
        ['POST', 'api/queues/emails/dead/retry'],
        ['POST', 'api/queues/emails/dead/purge'],
        ['POST', `api/queues/emails/jobs/${ids['dead1']}/retry`],
        ['POST', `api/queues/emails/jobs/${ids['later']}/promote`],
        ['POST', `api/queues/emails/jobs/${ids['later']}/cancel`],
        ['DELETE', `api/queues/emails/jobs/${ids['dead1']}`],
      ];
      for (const [method, path, body] of attempts) {
        const res = await client.act(method, path, body);
        expect(res.status).toBe(403);
        expect(res.body.error.code).toBe('read_only');
      }
      expect(await stats()).toMatchObject({ paused: false, counts: { dead: 2, scheduled: 1 } });
      expect((await client.get('api/overview')).status).toBe(200);
    });
  });

  describe('actions', () => {
    const actions = (): Extract<TelemetryEvent, { type: 'action' }>[] =>
      fixture.events.filter((e): e is Extract<TelemetryEvent, { type: 'action' }> => e.type === 'action');

    it('retries a dead job, records who did it, and the job then completes', async () => {
      const id = ids['dead1']!;
      fixture.healed.add(id);
      const res = await fetch(`${server.url}api/queues/emails/jobs/${id}/retry`, {
        method: 'POST',
        headers: api.headers({ 'X-CSRF-Token': api.csrf.token, 'X-User': 'ada' }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        ok: true,
        action: 'retry',
        queue: 'emails',
        jobId: id,
        state: 'ready',
      });
      await waitFor(async () => (await store.getJob('emails', id))?.state === 'completed');
      expect(actions()).toContainEqual(
        expect.objectContaining({
          type: 'action',
          queue: 'emails',
          action: 'retry',
          jobId: id,
          actor: 'ada',
        }),
      );
    });

    it('refuses to retry a job that is not dead or cancelled (409)', async () => {
      const res = await api.act('POST', `api/queues/emails/jobs/${ids['alice']}/retry`);
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('conflict');
    });

    it('retries all dead jobs, then purges the dead-letter queue', async () => {
      const retried = await api.act<{ count: number }>('POST', 'api/queues/emails/dead/retry');
      expect(retried.status).toBe(200);
      expect(retried.body.count).toBe(1);
      // Not healed: it dies again, with a second error.
      await waitFor(async () => {
        const job = await store.getJob('emails', ids['dead2']!);
        return job?.state === 'dead' && job.errors.length === 2 && (await stats()).counts.dead === 1;
      });
      const purged = await api.act<{ count: number; state: string }>('POST', 'api/queues/emails/dead/purge');
      expect(purged.body).toMatchObject({ ok: true, action: 'purge', state: 'dead', count: 1 });
      expect((await stats()).counts.dead).toBe(0);
      expect(actions().map((a) => [a.action, a.detail])).toEqual(
        expect.arrayContaining([
          ['retry', 'all-dead'],
          ['purge', 'dead'],
        ]),
      );
    });

    it('promotes a scheduled job, which then runs; a second promote is a 409', async () => {
      const id = ids['later']!;
      const res = await api.act('POST', `api/queues/emails/jobs/${id}/promote`);
      expect(res.status).toBe(200);
      await waitFor(async () => (await store.getJob('emails', id))?.state === 'completed');
      expect((await api.act('POST', `api/queues/emails/jobs/${id}/promote`)).status).toBe(409);
    });

    it('cancels a waiting job; cancelling it again is a 409', async () => {
      const { id } = await fixture.queue.add({ to: 'cancel@example.com' }, { delayMs: 3_600_000 });
      const res = await api.act<{ result: string }>('POST', `api/queues/emails/jobs/${id}/cancel`);
      expect(res.status).toBe(200);
      expect(res.body.result).toBe('cancelled');
      expect((await store.getJob('emails', id))?.state).toBe('cancelled');
      expect((await api.act('POST', `api/queues/emails/jobs/${id}/cancel`)).status).toBe(409);
    });

    it('deletes a job; it is then gone (404)', async () => {
      const id = ids['welcome']!;
      const res = await api.act('DELETE', `api/queues/emails/jobs/${id}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: true, action: 'remove', jobId: id, deleted: true });
      expect(await store.getJob('emails', id)).toBeUndefined();
      expect((await api.get(`api/queues/emails/jobs/${id}`)).status).toBe(404);
      expect((await api.act('DELETE', `api/queues/emails/jobs/${id}`)).status).toBe(404);
    });

    it('pauses the queue on every worker (no job starts), then resumes it', async () => {
      expect((await api.act('POST', 'api/queues/emails/pause')).status).toBe(200);
      expect((await stats()).paused).toBe(true);
      const overview = await api.get<OverviewView>('api/overview');
      expect(overview.body.queues.find((q) => q.name === 'emails')?.paused).toBe(true);
      const { id } = await fixture.queue.add({ to: 'paused@example.com' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await store.getJob('emails', id))?.state).toBe('ready');

      expect((await api.act('POST', 'api/queues/emails/resume')).status).toBe(200);
      await waitFor(async () => (await store.getJob('emails', id))?.state === 'completed');
      expect(actions().map((a) => a.action)).toEqual(expect.arrayContaining(['pause', 'resume']));
    });

    it('changes the concurrency of every worker, then clears the override', async () => {
      const set = await api.act('PUT', 'api/queues/emails/concurrency', { concurrency: 2 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ ok: true, action: 'set-concurrency', concurrency: 2 });
      expect((await firstValueFrom(store.settings('emails').pipe(take(1)))).concurrency).toBe(2);
      await waitFor(() => fixture.worker.pipeline('emails').status().concurrency === 2);
      expect((await api.get<QueueDetailView>('api/queues/emails')).body.concurrency).toBe(2);

      const cleared = await api.act('PUT', 'api/queues/emails/concurrency', { concurrency: null });
      expect(cleared.status).toBe(200);
      await waitFor(() => fixture.worker.pipeline('emails').status().concurrency === 4);
      expect((await api.get<QueueDetailView>('api/queues/emails')).body.concurrency).toBeNull();
      expect(
        actions()
          .filter((a) => a.action === 'set-concurrency')
          .map((a) => a.detail),
      ).toEqual(['2', 'cleared']);
    });
  });

  describe('live updates', () => {
    it('streams a change event when a job is added to a watched queue', async () => {
      const controller = new AbortController();
      const res = await fetch(`${server.url}api/events?queue=reports&queue=ghost`, {
        headers: api.headers({ Accept: 'text/event-stream' }),
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      const readUntil = async (needle: string) => {
        while (!text.includes(needle)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${needle}`);
          text += value;
        }
      };
      try {
        await readUntil('event: ready');
        expect(text).toContain('data: {"queues":["reports"]}'); // unknown queues are not watched
        await new Queue(store, 'reports').add({ n: 99, customer: 'initech' });
        await readUntil('event: change');
        expect(text).toMatch(/event: change\ndata: \{"queues":\["reports"\]\}/);
      } finally {
        controller.abort();
      }
    });
  });

  describe('mounting', () => {
    it('serves under a basePath, redirecting the bare prefix to its trailing slash', async () => {
      const dashboard = createDashboard({ store, logger: silentLogger, basePath: '/admin/queues/' });
      expect(dashboard.basePath).toBe('/admin/queues');
      const http = await listen(dashboard);
      try {
        const base = urlOf(http);
        const bare = await fetch(`${base}/admin/queues?x=1`, { redirect: 'manual' });
        expect(bare.status).toBe(302);
        expect(bare.headers.get('location')).toBe('/admin/queues/?x=1');
        expect((await fetch(`${base}/admin/queues/`)).status).toBe(200);
        expect((await fetch(`${base}/admin/queues/api/overview`)).status).toBe(200);
        expect((await fetch(`${base}/admin/queues/metrics`)).status).toBe(200);
        const outside = await fetch(`${base}/admin/queuesx/api/overview`);
        expect(outside.status).toBe(404);
        expect(outside.headers.get('x-content-type-options')).toBe('nosniff');
      } finally {
        await dashboard.close();
        await closeServer(http);
      }
    });

    it('never redirects to another host', async () => {
      const dashboard = createDashboard({ store, logger: silentLogger, metrics: false });
      const http = await listen((req, res) => {
        // What a framework mounted at "//evil.example" would hand over.
        Object.assign(req, { originalUrl: '//evil.example', url: '/' });
        dashboard(req, res);
      });
      try {
        const res = await fetch(`${urlOf(http)}/`, { redirect: 'manual' });
        expect(res.headers.get('location')).toBe('/evil.example/');
      } finally {
        await dashboard.close();
        await closeServer(http);
      }
    });

    it('works behind an Express-style mount that strips the prefix, and calls next() for other paths', async () => {
      for (const basePath of [undefined, '/ops']) {
        const dashboard = createDashboard({
          store,
          logger: silentLogger,
          metrics: false,
          ...(basePath ? { basePath } : {}),
        });
        let nextCalls = 0;
        const http = await listen((req, res) => {
          const url = req.url ?? '/';
          const next = () => {
            nextCalls++;
            res.statusCode = 418;
            res.end('next');
          };
          if (url === '/ops' || url.startsWith('/ops/') || url.startsWith('/ops?')) {
            // app.use('/ops', dashboard): Express keeps the full URL in originalUrl.
            Object.assign(req, {
              originalUrl: url,
              url: url.slice(4).startsWith('/') ? url.slice(4) : `/${url.slice(4)}`,
            });
            dashboard(req, res, next);
          } else if (basePath) {
            dashboard(req, res, next); // app.use(dashboard) with a basePath
          } else {
            next();
          }
        });
        try {
          const base = urlOf(http);
          const bare = await fetch(`${base}/ops`, { redirect: 'manual' });
          expect(bare.status).toBe(302);
          expect(bare.headers.get('location')).toBe('/ops/');
          expect((await fetch(`${base}/ops/`)).status).toBe(200);
          const overview = await fetch(`${base}/ops/api/overview`);
          expect(overview.status).toBe(200);
          const session = await fetch(`${base}/ops/api/session`);
          expect(session.status).toBe(200);
          expect((await fetch(`${base}/elsewhere`)).status).toBe(418);
          expect(nextCalls).toBe(1);
        } finally {
          await dashboard.close();
          await closeServer(http);
        }
      }
    });

    it('rejects a malformed basePath', () => {
      expect(() => createDashboard({ store, basePath: 'admin' })).toThrow(/basePath/);
      expect(() => createDashboard({ store, basePath: '/a b' })).toThrow(/basePath/);
      expect(() => createDashboard({ store, auth: { token: '' } })).toThrow(/token/);
    });

    it('answers /metrics with Prometheus text behind the same auth', async () => {
      const res = await api.get<string>('metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(res.body).toContain('sluice_queue_jobs{queue="reports",state="ready"}');
    });
  });
});

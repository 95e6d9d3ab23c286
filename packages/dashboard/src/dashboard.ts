import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createLogger,
  ErrorCode,
  InvalidArgumentError,
  SluiceError,
  type Logger,
  type Store,
  type Telemetry,
} from '@sluice/core';
import { createApiRouter } from './api';
import { UiAssets } from './assets';
import { Authenticator, type DashboardAuth } from './auth';
import { CsrfGuard, type CsrfOptions } from './csrf';
import {
  API_CONTENT_SECURITY_POLICY,
  ApiErrorCode,
  HttpError,
  isStateChanging,
  notFound,
  sendError,
  sendText,
  setSecurityHeaders,
  UI_CONTENT_SECURITY_POLICY,
} from './http';
import { DEFAULT_GROUP_SCAN_LIMIT } from './groups';
import { LiveUpdates, type LiveUpdatesOptions } from './live-updates';
import { createMetrics, type Metrics, type MetricsRegistry } from './metrics';
import { RateLimitMonitor } from './rate-limits';
import type { Redactor } from './views';

export interface DashboardOptions {
  /** The store to show and administer (`MemoryStore`, `RedisStore`, …). */
  readonly store: Store;
  /**
   * The path prefix the dashboard is served under, e.g. `/admin/queues`. The handler accepts requests
   * whose `req.url` (or, when a framework strips the mount path, `req.originalUrl`) starts with it.
   * Default: none (a framework that strips its mount path, or a server of its own).
   */
  readonly basePath?: string;
  /** Who may use the API and `/metrics`. Default: everyone (see {@link DashboardAuth}). */
  readonly auth?: DashboardAuth;
  /** Refuse every action (403) and hide them in the UI. Default `false`. */
  readonly readOnly?: boolean;
  /** Masks secrets in every payload and result the API returns. Default: shown as stored. */
  readonly redact?: Redactor;
  /**
   * The telemetry hub your workers emit on: feeds `/metrics`, and receives an `action` event for every
   * action taken here (`queue`, `action`, `jobId`, `actor`, `detail`).
   */
  readonly telemetry?: Telemetry;
  /** Names who took an action (for telemetry and logs), e.g. from your session or an SSO header. */
  readonly actor?: (req: IncomingMessage) => string | undefined;
  /** Every action is logged at `info`. Default: the core's winston logger. */
  readonly logger?: Logger;
  /** CSRF settings (the protection itself is always on). */
  readonly csrf?: CsrfOptions;
  /**
   * Serve Prometheus metrics at `GET <base>/metrics`: `true` (default) behind the same auth as the
   * API, `'public'` without auth (for a scraper on a private network), `false` not at all.
   */
  readonly metrics?: boolean | 'public';
  /** The prom-client registry `/metrics` exposes. Default: a new `Registry`. */
  readonly registry?: MetricsRegistry;
  /** Shown in the page title and header. Default `"Sluice"`. */
  readonly title?: string;
  /** How often the UI re-reads its view besides live updates. Default `5000`, at least `500`. */
  readonly refreshIntervalMs?: number;
  /** Most jobs a name/group/payload filter scans per request. Default `5000`. */
  readonly filterScanLimit?: number;
  /**
   * Most groups of a queue one request (the groups list, `/metrics`) reads to sort them busiest
   * first. Default `10000`; a queue with more shows the first ones by name, and says so.
   */
  readonly groupScanLimit?: number;
  /** How many of a queue's busiest groups `/metrics` labels by name (see `MetricsOptions.topGroups`). Default `20`. */
  readonly metricsTopGroups?: number;
  /** Live-update stream tuning. */
  readonly live?: LiveUpdatesOptions;
}

/**
 * A plain Node request handler, usable with `node:http` or any framework that exposes the raw
 * request and response. Called with `next`, it passes requests outside its `basePath` on (Express
 * style); without `next`, it answers them with a 404.
 */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /**
   * Handles the request if it is under `basePath` and resolves `true` once the response is written
   * (for a live-update stream: once it is open); resolves `false`, touching nothing, otherwise.
   * Never rejects. Use it from frameworks that await their middleware (Koa, Fastify hooks).
   */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** The normalised base path (`""` for none). */
  readonly basePath: string;
  /** The metrics behind `/metrics`, or `undefined` when disabled. */
  readonly metrics: Metrics | undefined;
  /** Ends live-update streams and stops the metrics' telemetry subscription. The store stays open. */
  close(): Promise<void>;
}

interface Target {
  /** The path below the base path, `""` or starting with `/`. */
  readonly path: string;
  readonly search: string;
  /** The path the browser asked for (for redirects). */
  readonly visible: string;
}

/**
 * Creates the dashboard: a web UI, its JSON API, live updates and Prometheus metrics, as one
 * `(req, res)` handler.
 *
 * The UI shows every queue at a glance (counts by state, throughput and failure rate over the last
 * hour, rate-limit usage, paused state, live workers), a page per queue (jobs by state, paginated and
 * filterable, lookup by id, cron entries, concurrency and pause controls, its groups busiest first
 * with pause and resume per group, a form to add a job) and a page per job
 * (payload, options, every attempt's error and stack, timings, result). Actions — retry, delete,
 * promote or cancel a job; retry or purge the dead-letter queue; pause, resume (a queue or one of its
 * groups), add a job, change concurrency —
 * are confirmed in the UI, CSRF-protected, logged and emitted as telemetry.
 *
 * ## Example
 * ```ts
 * import { createServer } from 'node:http';
 * import { Telemetry, Worker } from '@sluice/core';
 * import { RedisStore } from '@sluice/redis';
 * import { createDashboard } from '@sluice/dashboard';
 *
 * const store = await RedisStore.connect({ url: 'redis://localhost:6379' });
 * const telemetry = new Telemetry();
 * new Worker({ store, telemetry, pipelines: [emails] }).start();
 *
 * const dashboard = createDashboard({
 *   store,
 *   telemetry,
 *   basePath: '/admin/queues',
 *   auth: { token: process.env.DASHBOARD_TOKEN! },
 *   redact: (job) => ({ ...job, data: { ...(job.data as object), apiKey: '***' } }),
 * });
 * createServer(dashboard).listen(8080); // UI at http://localhost:8080/admin/queues/
 *
 * // Express: app.use(dashboard) — before express.json(); requests elsewhere fall through to next()
 * ```
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const store = options.store;
  const basePath = normaliseBasePath(options.basePath);
  const logger = options.logger ?? createLogger({ service: 'sluice-dashboard' });
  const auth = new Authenticator(options.auth);
  const csrf = new CsrfGuard(options.csrf);
  const live = new LiveUpdates(store, logger, options.live);
  const assets = new UiAssets();
  const readOnly = options.readOnly ?? false;
  const refreshIntervalMs = Math.max(500, options.refreshIntervalMs ?? 5000);
  const filterScanLimit = options.filterScanLimit ?? 5000;
  if (!Number.isInteger(filterScanLimit) || filterScanLimit < 1) {
    throw new InvalidArgumentError(`filterScanLimit must be an integer ≥ 1, got ${filterScanLimit}`);
  }
  const groupScanLimit = options.groupScanLimit ?? DEFAULT_GROUP_SCAN_LIMIT;
  if (!Number.isInteger(groupScanLimit) || groupScanLimit < 1) {
    throw new InvalidArgumentError(`groupScanLimit must be an integer ≥ 1, got ${groupScanLimit}`);
  }
  const metricsMode = options.metrics ?? true;
  const metrics =
    metricsMode === false
      ? undefined
      : createMetrics({
          store,
          logger,
          groupScanLimit,
          ...(options.metricsTopGroups === undefined ? {} : { topGroups: options.metricsTopGroups }),
          ...(options.telemetry ? { telemetry: options.telemetry } : {}),
          ...(options.registry ? { registry: options.registry } : {}),
        });
  const limits = new RateLimitMonitor(store, logger, options.telemetry);
  const router = createApiRouter({
    limits,
    store,
    logger,
    telemetry: options.telemetry,
    redact: options.redact,
    readOnly,
    csrf,
    live,
    actor: options.actor,
    title: options.title ?? 'Sluice',
    refreshIntervalMs,
    filterScanLimit,
    groupScanLimit,
    login: auth.enabled ? auth.login : 'none',
  });

  const resolve = (req: IncomingMessage): Target | undefined => {
    const originalUrl = (req as { originalUrl?: unknown }).originalUrl;
    const visible = splitUrl(typeof originalUrl === 'string' ? originalUrl : (req.url ?? '/')).path;
    for (const raw of [req.url, originalUrl]) {
      if (typeof raw !== 'string') continue;
      const { path, search } = splitUrl(raw);
      if (basePath === '') return { path, search, visible };
      if (path === basePath || path.startsWith(`${basePath}/`)) {
        return { path: path.slice(basePath.length), search, visible };
      }
    }
    return undefined;
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse, target: Target): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const { path } = target;

    if (path === '' || path === '/') {
      if (!target.visible.endsWith('/')) {
        // The UI uses relative URLs, so it must be served from a path ending in a slash.
        res.statusCode = 302;
        res.setHeader('Location', `${target.visible.replace(/^[/\\]+/, '/')}/${target.search}`);
        res.end();
        return;
      }
      setSecurityHeaders(res, UI_CONTENT_SECURITY_POLICY);
    }
    if (assets.has(path === '' ? '/' : path)) {
      if (method !== 'GET' && method !== 'HEAD') {
        throw new HttpError(405, ApiErrorCode.MethodNotAllowed, 'use GET here', { Allow: 'GET, HEAD' });
      }
      await assets.serve(req, res, path === '' ? '/' : path);
      return;
    }

    if (path === '/metrics' && metrics) {
      if (metricsMode !== 'public') await auth.check(req);
      if (method !== 'GET' && method !== 'HEAD') {
        throw new HttpError(405, ApiErrorCode.MethodNotAllowed, 'use GET here', { Allow: 'GET, HEAD' });
      }
      sendText(res, 200, await metrics.metrics(), metrics.contentType);
      return;
    }

    if (path.startsWith('/api/')) {
      await auth.check(req);
      const { handler, params } = router.match(method, path.slice('/api'.length));
      if (isStateChanging(method)) {
        if (readOnly) {
          logger.warn('dashboard: action refused (read-only)', { method, path });
          throw new HttpError(403, ApiErrorCode.ReadOnly, 'this dashboard is read-only');
        }
        try {
          csrf.verify(req);
        } catch (err) {
          logger.warn('dashboard: action refused (CSRF)', {
            method,
            path,
            remoteAddress: req.socket.remoteAddress,
          });
          throw err;
        }
      }
      await handler({ req, res, query: new URLSearchParams(target.search) }, params);
      return;
    }

    throw notFound(`nothing at ${path.slice(0, 200)}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const target = resolve(req);
    if (!target) return false;
    setSecurityHeaders(res, API_CONTENT_SECURITY_POLICY);
    try {
      await dispatch(req, res, target);
    } catch (err) {
      if (err instanceof HttpError) {
        sendError(res, err);
      } else if (err instanceof SluiceError && err.code === ErrorCode.InvalidArgument) {
        sendError(res, new HttpError(400, ApiErrorCode.BadRequest, err.message));
      } else {
        logger.error('dashboard: request failed', {
          method: req.method,
          url: req.url,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        });
        sendError(res, new HttpError(500, ApiErrorCode.Internal, 'internal error; see the server log'));
      }
    }
    return true;
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    void handle(req, res).then((handled) => {
      if (handled) return;
      if (next) {
        next();
        return;
      }
      setSecurityHeaders(res);
      sendError(res, notFound('not found'));
    });
  };

  return Object.assign(handler, {
    handle,
    basePath,
    metrics,
    close: (): Promise<void> => {
      live.close();
      limits.close();
      metrics?.close();
      return Promise.resolve();
    },
  });
}

function normaliseBasePath(raw: string | undefined): string {
  if (raw === undefined || raw === '' || raw === '/') return '';
  const path = raw.replace(/\/+$/, '');
  if (!/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(path)) {
    throw new InvalidArgumentError(
      `basePath must look like "/admin/queues" (segments of URL path characters), got ${JSON.stringify(raw)}`,
    );
  }
  return path;
}

function splitUrl(url: string): { path: string; search: string } {
  const q = url.indexOf('?');
  const beforeHash = url.split('#')[0] ?? '';
  if (q < 0) return { path: beforeHash, search: '' };
  return { path: url.slice(0, q), search: beforeHash.slice(q) };
}

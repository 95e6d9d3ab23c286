import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@sluice/core';
import { createDashboard, type DashboardHandler, type DashboardOptions } from './dashboard';

export interface DashboardServerOptions extends DashboardOptions {
  /** Default `3000`; `0` picks a free port (read it from `url`). */
  readonly port?: number;
  /**
   * Interface to listen on. Default `127.0.0.1`: only this machine. Listening more widely without
   * `auth` logs a warning.
   */
  readonly host?: string;
}

export interface DashboardServer {
  /** Where the UI is, e.g. `http://127.0.0.1:3000/`. */
  readonly url: string;
  readonly server: Server;
  readonly dashboard: DashboardHandler;
  /** Ends live-update streams, stops listening and closes every connection. The store stays open. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Starts a `node:http` server running {@link createDashboard} — what `sluice dashboard --port`
 * runs. Resolves once it listens.
 *
 * ## Example
 * ```ts
 * import { RedisStore } from '@sluice/redis';
 * import { startDashboardServer } from '@sluice/dashboard';
 *
 * const store = await RedisStore.connect({ url: 'redis://10.0.0.5:6379' });
 * const { url, close } = await startDashboardServer({
 *   store,
 *   port: 3000,
 *   host: '0.0.0.0',
 *   auth: { token: process.env.SLUICE_DASHBOARD_TOKEN! },
 * });
 * console.log(`dashboard on ${url}`);
 * process.on('SIGTERM', () => void close().then(() => store.close()));
 * ```
 */
export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const { port = 3000, host = '127.0.0.1', ...dashboardOptions } = options;
  const logger = dashboardOptions.logger ?? createLogger({ service: 'sluice-dashboard' });
  const dashboard = createDashboard({ ...dashboardOptions, logger });
  const server = createServer(dashboard);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await dashboard.close(); // e.g. the port is taken: drop the telemetry subscription too
    throw err;
  }
  const address = server.address() as AddressInfo;
  const shownHost =
    host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${address.port}${dashboard.basePath}/`;
  if (!LOOPBACK.has(host) && !dashboardOptions.auth) {
    logger.warn('dashboard: listening beyond this machine without auth; anyone who can reach it can act', {
      host,
      port: address.port,
    });
  }
  logger.info('dashboard listening', { url, readOnly: dashboardOptions.readOnly ?? false });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await dashboard.close();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    })();
    return closing;
  };
  return { url, server, dashboard, close };
}

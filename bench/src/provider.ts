import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { now } from './clock';

/**
 * A stand-in for a rate-limited third-party API, run by the benchmark's parent process: every
 * handler of the rate-limit scenario POSTs to it once, and it timestamps each arrival on the shared
 * clock (`clock.now`), as a provider counting calls would. It accepts every call, so both systems
 * are measured as they send, not as a provider would throttle them.
 */
export class Provider {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** Arrival times, in order. */
    readonly arrivals: readonly number[],
  ) {}

  static async start(): Promise<Provider> {
    const arrivals: number[] = [];
    const server = createServer((req, res) => {
      arrivals.push(now());
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new Provider(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, arrivals);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

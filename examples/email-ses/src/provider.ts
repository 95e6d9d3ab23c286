import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Email } from './email';

export interface ProviderOptions {
  /** Calls accepted in any sliding second; beyond it the provider answers 429. Default 450. */
  readonly maxPerSecond?: number;
  /** Share of calls answered 503 (a transient error worth retrying). Default 0.02. */
  readonly transientErrorRate?: number;
  /** Latency of one call in ms, uniform in [min, max]. Default [5, 25]. */
  readonly latencyMs?: readonly [number, number];
}

/** One call as the provider saw it. */
export interface ProviderCall {
  /** When the request arrived (this process's clock, ms). */
  readonly at: number;
  readonly to: string;
  readonly status: 200 | 400 | 429 | 503;
}

/**
 * A stand-in for a transactional-email provider such as Amazon SES, over HTTP so every worker
 * process calls the same one. `POST /send` with an {@link Email} answers:
 *
 * - 200 `{ messageId }`: sent;
 * - 400: hard bounce (addresses starting with `bounce`): retrying cannot help;
 * - 503: a transient error, for a share of calls;
 * - 429: more than `maxPerSecond` calls arrived in the last 1,000 ms (the account's rate limit).
 */
export class SimulatedProvider {
  /** Every call, in arrival order. */
  readonly calls: ProviderCall[] = [];
  private readonly server: Server;
  private readonly maxPerSecond: number;
  private readonly transientErrorRate: number;
  private readonly latencyMs: readonly [number, number];
  /** Arrival times of the calls of the last second, oldest first. */
  private recent: number[] = [];

  constructor(options: ProviderOptions = {}) {
    this.maxPerSecond = options.maxPerSecond ?? 450;
    this.transientErrorRate = options.transientErrorRate ?? 0.02;
    this.latencyMs = options.latencyMs ?? [5, 25];
    this.server = createServer((req, res) => {
      this.handle(req, res);
    });
  }

  /** Starts listening on a free loopback port; resolves to the provider's base URL. */
  listen(): Promise<string> {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        resolve(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}`);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const at = Date.now();
    this.recent = this.recent.filter((t) => t > at - 1000);
    this.recent.push(at);
    const overLimit = this.recent.length > this.maxPerSecond;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const email = JSON.parse(body) as Email;
      const status = this.answer(email, overLimit);
      this.calls.push({ at, to: email.to, status });
      const [min, max] = this.latencyMs;
      setTimeout(
        () => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(status === 200 ? { messageId: `msg-${this.calls.length}` } : { status }));
        },
        min + Math.random() * (max - min),
      );
    });
  }

  private answer(email: Email, overLimit: boolean): ProviderCall['status'] {
    if (overLimit) return 429;
    if (email.to.startsWith('bounce')) return 400;
    if (Math.random() < this.transientErrorRate) return 503;
    return 200;
  }
}

import {
  definePipeline,
  PermanentError,
  Queue,
  silentLogger,
  Telemetry,
  Worker,
  type Store,
  type TelemetryEvent,
} from '@sluice/core';
import type { ApiErrorBody } from '@sluice/dashboard';

export interface Email {
  readonly to: string;
  readonly fail?: boolean;
  readonly password?: string;
  readonly note?: string;
}

/** Polls until `check` returns a truthy value (returned) or the time runs out. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, everyMs = 20, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A real worker on the `emails` queue: jobs with `fail: true` are dead-lettered at once (a
 * `PermanentError`) unless their id is in `healed`; the others complete with a result holding a
 * secret (to prove results are redacted too).
 */
export function startEmailWorker(store: Store, options: { readonly queue?: string } = {}) {
  const queue = options.queue ?? 'emails';
  const telemetry = new Telemetry();
  const events: TelemetryEvent[] = [];
  const subscription = telemetry.events$.subscribe((e) => events.push(e));
  const healed = new Set<string>();
  const pipeline = definePipeline<Email, { sent: string; receipt: string }>({
    queue,
    concurrency: 4,
    rateLimit: { allowed: 100, periodMs: 1000 },
    handler: (job) => {
      if (job.data.fail && !healed.has(job.id)) {
        return Promise.reject(new PermanentError(`mailbox ${job.data.to} does not exist`));
      }
      return Promise.resolve({ sent: job.data.to, receipt: 'receipt-secret' });
    },
  });
  const worker = new Worker({
    store,
    telemetry,
    logger: silentLogger,
    pipelines: [pipeline],
    reportEveryMs: 200,
  });
  worker.start();
  return {
    queue: new Queue<Email>(store, queue),
    telemetry,
    events,
    healed,
    worker,
    async stop(): Promise<void> {
      await worker.close({ timeoutMs: 2000 });
      subscription.unsubscribe();
    },
  };
}

/** A JSON API client that keeps the CSRF cookie like a browser would. */
export class ApiClient {
  private cookie = '';
  private csrfToken = '';

  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
      ...(this.cookie ? { Cookie: this.cookie } : {}),
      ...extra,
    };
  }

  /** Fetches a session: the CSRF cookie and token. */
  async session(): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.baseUrl}api/session`, { headers: this.headers() });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0] ?? '';
    const body = (await res.json()) as Record<string, unknown>;
    this.csrfToken = String(body['csrfToken']);
    return body;
  }

  get csrf(): { readonly cookie: string; readonly token: string } {
    return { cookie: this.cookie, token: this.csrfToken };
  }

  /** GETs `path`; `T` is what the test expects the body to be (an error body by default). */
  async get<T = ApiErrorBody>(path: string): Promise<Reply<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, { headers: this.headers() });
    return { status: res.status, body: await parse<T>(res), headers: res.headers };
  }

  /** A state-changing request with the cookie and the CSRF header. */
  async act<T = ApiErrorBody>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: this.headers({
        'X-CSRF-Token': this.csrfToken,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      }),
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, body: await parse<T>(res), headers: res.headers };
  }
}

export interface Reply<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** The body as the test expects it; the assertions on it are the check. */
async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

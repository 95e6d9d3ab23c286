import { Presets, SingleBar } from 'cli-progress';
import {
  createLogger,
  definePipeline,
  maxInAnyWindow,
  exponential,
  MemoryStore,
  Queue,
  silentLogger,
  Worker,
  type Store,
} from '@sluice/core';
import { openDemoStore, RedisStore } from '@sluice/redis';
import { CliError } from '../io';
import { SimulatedEmailProvider, type Email } from './email-provider';

export interface DemoOptions {
  readonly jobs?: number;
  readonly allowed?: number;
  readonly periodMs?: number;
  readonly concurrency?: number;
  /** `auto` (default): Redis when reachable, else memory. */
  readonly store?: 'auto' | 'memory' | 'redis';
  readonly redisUrl?: string;
  /** Show a progress bar on stderr. Default: when stderr is a TTY. */
  readonly progress?: boolean;
  /** Where readable lines go. Default: stdout. */
  readonly print?: (line: string) => void;
  /**
   * Stops the run early (Ctrl-C): the worker stops, the demo's keys are deleted, and the run rejects
   * with a `CliError` (exit code 130). Default: the process's SIGINT.
   */
  readonly interrupt?: Promise<void>;
}

/** How often the demo checks that Redis still answers, and how many missed checks mean it is gone. */
const PROBE_EVERY_MS = 1000;
const PROBE_TIMEOUT_MS = 1500;
const PROBES_MISSED = 3;

export interface DemoSummary {
  readonly store: 'redis' | 'memory';
  readonly jobs: number;
  readonly completed: number;
  readonly retried: number;
  readonly dead: number;
  readonly allowed: number;
  readonly periodMs: number;
  readonly maxStartsInAnyWindow: number;
  readonly achievedPerSecond: number;
  readonly durationMs: number;
}

interface OpenedStore {
  readonly store: Store;
  readonly kind: 'redis' | 'memory';
  readonly why: string;
  /** The Redis URL (credentials hidden), or `memory`. */
  readonly where: string;
  /** Deletes what the demo wrote and closes the store. */
  readonly dispose: () => Promise<void>;
}

async function openStore(options: DemoOptions, runId: string): Promise<OpenedStore> {
  const memory = (why: string): OpenedStore => {
    const store = new MemoryStore();
    return { store, kind: 'memory', why, where: 'memory', dispose: () => store.close() };
  };
  if (options.store === 'memory') return memory('asked for the in-memory store');
  const url = options.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  try {
    const opened = await openDemoStore(url, `sluice-demo:${runId}`);
    return {
      store: opened.store,
      kind: 'redis',
      why: `Redis at ${redact(url)} answered`,
      where: redact(url),
      dispose: () => opened.dispose(),
    };
  } catch (err) {
    if (options.store === 'redis') {
      throw new CliError(`cannot connect to Redis at ${redact(url)}: ${causeOf(err)}`);
    }
    return memory(`no Redis answered at ${redact(url)} (${(err as Error).message})`);
  }
}

/** The innermost message of an error chain (`connect ECONNREFUSED 127.0.0.1:1`), on one line. */
function causeOf(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  const message = current instanceof Error ? current.message : String(current);
  return message.split('\n')[0] ?? message;
}

/**
 * Resolves with a one-line reason once the store has failed {@link PROBES_MISSED} checks in a row
 * (Redis stopped, or the network to it went away); never for the memory store.
 */
function watchStore(store: Store, stop: Promise<void>): Promise<string> {
  return new Promise<string>((resolve) => {
    let missed = 0;
    // Read through a function, so the compiler does not assume the flag still holds after an await.
    const state = { stopped: false };
    const isStopped = (): boolean => state.stopped;
    void stop.then(() => {
      state.stopped = true;
    });
    const probe = async (): Promise<void> => {
      while (!isStopped()) {
        await new Promise((r) => setTimeout(r, PROBE_EVERY_MS).unref());
        if (isStopped()) return;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            store.queues(),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`));
              }, PROBE_TIMEOUT_MS);
            }),
          ]);
          missed = 0;
        } catch (err) {
          missed++;
          if (missed >= PROBES_MISSED) {
            resolve(causeOf(err));
            return;
          }
        } finally {
          clearTimeout(timer);
        }
      }
    };
    void probe();
  });
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/**
 * The email demo: `jobs` emails through a provider that fails ~2% of calls, at most `allowed` sends
 * per `periodMs`, `concurrency` at a time, with retries (exponential backoff, full jitter) and a
 * dead-letter queue for hard bounces.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const jobs = options.jobs ?? 2000;
  const allowed = options.allowed ?? 400;
  const periodMs = options.periodMs ?? 1000;
  const concurrency = options.concurrency ?? 5;
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  const opened = await openStore(options, runId);
  print(`store: ${opened.kind} — ${opened.why}`);
  const queueName = 'emails';
  const provider = new SimulatedEmailProvider();
  const queue = new Queue<Email>(opened.store, queueName, {
    schema: {
      type: 'object',
      required: ['to', 'subject'],
      properties: { to: { type: 'string', minLength: 3 }, subject: { type: 'string' } },
    },
    defaults: { maxAttempts: 4 },
  });

  const pipeline = definePipeline<Email, string>({
    queue: queueName,
    concurrency,
    rateLimit: { allowed, periodMs },
    backoff: exponential({ baseMs: 100, maxMs: 2_000 }),
    timeoutMs: 5_000,
    handler: (job, { signal, limit }) => {
      const sending = provider.send(job.data, signal);
      // The call has left: one the machine delayed past the margin is moved in the limit's log to
      // when it left, so no later call joins it in a window.
      limit?.sent();
      return sending;
    },
  });

  const worker = new Worker({
    store: opened.store,
    pipelines: [pipeline],
    // Warnings are JSON lines meant for log collectors; the demo reports trouble itself, in one line,
    // unless LOG_LEVEL asks for the log.
    logger: process.env['LOG_LEVEL']
      ? createLogger({ level: process.env['LOG_LEVEL'], service: 'sluice-demo' })
      : silentLogger,
  });

  let completed = 0;
  let retried = 0;
  let dead = 0;
  const bar =
    (options.progress ?? process.stderr.isTTY)
      ? new SingleBar(
          {
            format: 'sending  {bar} {value}/{total} | {rate}/s | retried {retried} | dead {dead}',
            stream: process.stderr,
          },
          Presets.shades_classic,
        )
      : undefined;

  const started = Date.now();
  const ended = new AbortController();
  const endedPromise = new Promise<void>((resolve) => {
    ended.signal.addEventListener('abort', () => {
      resolve();
    });
  });
  const interrupt =
    options.interrupt ??
    new Promise<void>((resolve) => {
      const onSigint = (): void => {
        resolve();
      };
      process.once('SIGINT', onSigint);
      ended.signal.addEventListener('abort', () => process.off('SIGINT', onSigint));
    });
  const lost =
    opened.kind === 'redis' ? watchStore(opened.store, endedPromise) : new Promise<never>(() => undefined);
  // What the connection saw ("connect ECONNREFUSED …") says more than a failed call's own error.
  let connectionError: string | undefined;
  if (opened.store instanceof RedisStore) {
    opened.store.client.on('error', (err: unknown) => {
      connectionError = causeOf(err);
    });
  }
  let stoppedBy:
    { readonly kind: 'interrupted' } | { readonly kind: 'lost'; readonly reason: string } | undefined;
  let added: Promise<unknown> = Promise.resolve();
  try {
    const finished = new Promise<void>((resolve) => {
      worker.outcomes$.subscribe((outcome) => {
        if (outcome.kind === 'completed') completed++;
        else if (outcome.kind === 'retrying') retried++;
        else if (outcome.kind === 'dead') dead++;
        const elapsed = (Date.now() - started) / 1000;
        bar?.update(completed + dead, {
          retried,
          dead,
          rate: elapsed > 0 ? Math.round(completed / elapsed) : 0,
        });
        if (completed + dead >= jobs) resolve();
      });
    });
    const stopped = Promise.race([
      interrupt.then(() => ({ kind: 'interrupted' }) as const),
      lost.then((reason) => ({ kind: 'lost', reason }) as const),
    ]);
    worker.start();
    // Every 500th address bounces for good: those end in the dead-letter queue.
    added = queue.addBulk(
      Array.from({ length: jobs }, (_, i) => ({
        data: {
          to: i % 500 === 499 ? `bounce-${i}@example.com` : `user-${i}@example.com`,
          subject: `Welcome #${i}`,
        },
      })),
    );
    // An add that fails on Redis means the store went away: end like the watchdog would.
    const addedOrLost = added.then(
      () => undefined,
      (err: unknown) => {
        if (opened.kind !== 'redis') throw err;
        return { kind: 'lost', reason: causeOf(err) } as const;
      },
    );
    stoppedBy = await Promise.race([addedOrLost, stopped]);
    if (stoppedBy === undefined) {
      bar?.start(jobs, 0, { retried: 0, dead: 0, rate: 0 });
      stoppedBy = await Promise.race([finished.then(() => undefined), stopped]);
    }
    bar?.stop();
  } finally {
    ended.abort();
    if (stoppedBy?.kind === 'lost') {
      // Nothing to flush to a server that is gone: drop the connection so nothing waits on it.
      if (opened.store instanceof RedisStore) opened.store.client.disconnect();
      await worker.close({ timeoutMs: 1_000 }).catch(() => undefined);
      await opened.dispose().catch(() => undefined);
    } else {
      // An interrupted add finishes first, so deleting the keys leaves none behind.
      await added.catch(() => undefined);
      await worker.close({ timeoutMs: 5_000 });
      await opened.dispose();
    }
  }
  if (stoppedBy?.kind === 'interrupted') {
    throw new CliError(`interrupted: sent ${completed} of ${jobs} emails; the demo's keys were removed`, 130);
  }
  if (stoppedBy?.kind === 'lost') {
    throw new CliError(
      `lost Redis at ${opened.where} mid-run (${connectionError ?? stoppedBy.reason}); ` +
        `sent ${completed} of ${jobs} emails`,
    );
  }
  const durationMs = Date.now() - started;
  const summary: DemoSummary = {
    store: opened.kind,
    jobs,
    completed,
    retried,
    dead,
    allowed,
    periodMs,
    maxStartsInAnyWindow: maxInAnyWindow(provider.callStarts, periodMs),
    achievedPerSecond: Math.round((provider.callStarts.length / durationMs) * 1000 * 10) / 10,
    durationMs,
  };
  print('');
  print(
    `sent ${completed} of ${jobs} emails in ${(durationMs / 1000).toFixed(1)} s using the ${summary.store} store`,
  );
  print(`  retried after transient errors: ${retried}`);
  print(`  dead-lettered (hard bounces):   ${dead}`);
  print(
    `  rate limit ${allowed} per ${periodMs} ms: busiest window held ${summary.maxStartsInAnyWindow} provider calls ` +
      `(${summary.maxStartsInAnyWindow <= allowed ? 'within the limit' : 'OVER THE LIMIT'})`,
  );
  print(`  achieved ${summary.achievedPerSecond} calls/s with concurrency ${concurrency}`);
  print('');
  print('next:');
  print('  npx sluice dashboard     the web dashboard for the queues in Redis (http://127.0.0.1:3000)');
  print('  npx sluice --help        the CLI: stats, enqueue, jobs, retry, purge, pause, …');
  print(
    '  examples/                six runnable pipelines: npm run build && npm start -w examples/email-ses',
  );
  return summary;
}

import { Presets, SingleBar } from 'cli-progress';
import {
  createLogger,
  definePipeline,
  maxInAnyWindow,
  exponential,
  MemoryStore,
  Queue,
  Worker,
  type Store,
} from '@sluice/core';
import { openDemoStore } from '@sluice/redis';
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
}

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
  /** Deletes what the demo wrote and closes the store. */
  readonly dispose: () => Promise<void>;
}

async function openStore(options: DemoOptions, runId: string): Promise<OpenedStore> {
  const memory = (why: string): OpenedStore => {
    const store = new MemoryStore();
    return { store, kind: 'memory', why, dispose: () => store.close() };
  };
  if (options.store === 'memory') return memory('asked for the in-memory store');
  const url = options.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  try {
    const opened = await openDemoStore(url, `sluice-demo:${runId}`);
    return {
      store: opened.store,
      kind: 'redis',
      why: `Redis at ${redact(url)} answered`,
      dispose: () => opened.dispose(),
    };
  } catch (err) {
    if (options.store === 'redis') throw err;
    return memory(`no Redis answered at ${redact(url)} (${(err as Error).message})`);
  }
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
    handler: (job, { signal }) => provider.send(job.data, signal),
  });

  const worker = new Worker({
    store: opened.store,
    pipelines: [pipeline],
    logger: createLogger({ level: process.env['LOG_LEVEL'] ?? 'warn', service: 'sluice-demo' }),
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
    worker.start();
    // Every 500th address bounces for good: those end in the dead-letter queue.
    await queue.addBulk(
      Array.from({ length: jobs }, (_, i) => ({
        data: {
          to: i % 500 === 499 ? `bounce-${i}@example.com` : `user-${i}@example.com`,
          subject: `Welcome #${i}`,
        },
      })),
    );
    bar?.start(jobs, 0, { retried: 0, dead: 0, rate: 0 });
    await finished;
    bar?.stop();
  } finally {
    await worker.close({ timeoutMs: 5_000 });
    await opened.dispose();
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
  return summary;
}

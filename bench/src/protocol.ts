/**
 * What a benchmark's parent process and its worker processes say to each other over the IPC channel
 * of `child_process.fork`. Both systems' worker scripts (`workers/sluice-worker.ts`,
 * `workers/bullmq-worker.ts`) take the same {@link WorkerSpec} and answer with the same
 * {@link WorkerReport}, so a scenario runs either system the same way.
 */

/** The payload of every benchmark job: small JSON, the same for both systems. */
export interface BenchPayload {
  /** A short string, like an e-mail address. */
  readonly to: string;
  /** The producer's clock (see `clock.ts`) just before the add call, when the scenario measures latency. */
  readonly t?: number;
}

/** What the handler does for each call (one job, or one batch). */
export type HandlerSpec =
  /** Returns at once (an `async` function that does nothing). */
  | { readonly kind: 'noop' }
  /** Waits this long (a slow handler: keeps jobs in flight). */
  | { readonly kind: 'sleep'; readonly ms: number }
  /** POSTs to a provider once (keep-alive connections) and waits for its answer. */
  | { readonly kind: 'http'; readonly url: string };

/** How the worker takes jobs. */
export type ModeSpec =
  /** One job per handler call, `concurrency` calls at once. */
  | { readonly kind: 'single' }
  /** One batch per handler call: at most `size` jobs, flushed `timeMs` after the first. */
  | { readonly kind: 'batch'; readonly size: number; readonly timeMs: number };

/** A rate limit, as both systems' users would configure it. */
export interface RateLimitSpec {
  readonly allowed: number;
  readonly periodMs: number;
  /** `'call'`: counts handler calls (a batch is one unit); `'job'`: counts jobs. */
  readonly per: 'job' | 'call';
}

/** A worker process's whole configuration, passed as JSON in `argv[2]`. */
export interface WorkerSpec {
  readonly url: string;
  /** Key prefix of the run (each run has its own). */
  readonly prefix: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly mode: ModeSpec;
  readonly handler: HandlerSpec;
  readonly rateLimit?: RateLimitSpec;
  /** Report `done` once this many jobs have completed (settled in Redis). Default: only on `stop`. */
  readonly expect?: number;
  /** Record each job's enqueue → start latency (needs `t` in the payload). */
  readonly recordLatency?: boolean;
  /** Record the time and size of every handler call. */
  readonly recordCalls?: boolean;
  /** Sample the process's RSS this often while running. Default: no sampling. */
  readonly rssEveryMs?: number;
  /** Sample the V8 heap in use too, with the RSS (`WorkerReport.heapPeak`). Default: no. */
  readonly sampleHeap?: boolean;
  /**
   * Jobs completed after `start` before the measured window opens: the report's span, CPU time,
   * `completed` and recordings then start at that completion, `expect` counts the jobs after it, and
   * the warm-up's own figures are `WorkerReport.warmup`. Measures a worker whose code the JIT has
   * compiled (the steady state of a long-running worker). Default: 0 (the window opens at `start`).
   */
  readonly warmup?: number;
}

/** Parent → worker. */
export type ParentMessage =
  /** Start taking jobs (the worker is connected and idle until then). */
  | { readonly type: 'start' }
  /** Stop: close gracefully, send the report, exit. */
  | { readonly type: 'stop' };

/** Worker → parent. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  /** `expect` jobs have completed; the worker keeps running until `stop`. */
  | { readonly type: 'done'; readonly report: WorkerReport }
  /** Sent after `stop`, just before the process exits. */
  | { readonly type: 'stopped'; readonly report: WorkerReport }
  | { readonly type: 'failed'; readonly message: string };

/** What a worker measured. Times are epoch ms on the shared clock (`clock.ts`). */
export interface WorkerReport {
  /** Jobs completed (settled) since `start`, or since the warm-up (`WorkerSpec.warmup`). */
  readonly completed: number;
  /** The warm-up before the measured window, when the spec asked for one and it ended. */
  readonly warmup?: {
    readonly completed: number;
    /** User + system CPU of the process from `start` to the warm-up's last completion. */
    readonly cpuMs: number;
    readonly ms: number;
  };
  /** When `start` arrived (with a warm-up: when its last job completed). */
  readonly startedAt: number;
  /** When the `expect`-th job completed (or the last one, if no `expect`). */
  readonly doneAt: number;
  /** Enqueue → handler start, ms, one per job (with `recordLatency`). */
  readonly latencies: readonly number[];
  /** The producer's timestamp (`t`) of each job in `latencies`. */
  readonly enqueuedAt: readonly number[];
  /** Handler call start times (with `recordCalls`). */
  readonly callTimes: readonly number[];
  /** Jobs per handler call, matching `callTimes`. */
  readonly callSizes: readonly number[];
  /**
   * When the first job of each call was handed to this worker, matching `callTimes`: Sluice's lease
   * start (Redis `TIME` in the reserve script, whole ms), BullMQ's `processedOn` (the worker's clock
   * when it asked for the job).
   */
  readonly callGrants: readonly number[];
  /** RSS in bytes when `start` arrived. */
  readonly rssAtStart: number;
  /** The largest RSS sampled between `start` and the report, in bytes. */
  readonly rssPeak: number;
  /** The largest V8 heap in use (`heapUsed`) sampled, in bytes; 0 without `sampleHeap`. */
  readonly heapPeak: number;
  /** CPU time (user + system) of the worker process between `start` and `doneAt`, in ms. */
  readonly cpuMs: number;
}

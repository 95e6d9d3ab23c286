import type { OperatorFunction } from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { BatchHandler, Handler } from '../model/handler';
import type { Handled } from '../model/outcome';
import type { Reservation } from '../model/reservation';
import { batchJobs, chunkJobs } from '../operators/batch-jobs';
import { adaptiveBatches, processBatches } from '../operators/process-batches';
import { processJobs } from '../operators/process-jobs';
import { pipeline, type PipelineContext, type PipelineDefinition, type PipelineSpec } from './pipeline';

/** Flush a batch at `size` jobs or `timeMs` after its first job, whichever comes first. */
export interface SizeTimeBatch {
  readonly size: number;
  /** Default: flush on size only (and on drain). */
  readonly timeMs?: number;
  /**
   * Let a batch hold jobs of different groups (`JobOptions.group`). Default `false`: each group
   * fills its own batches (jobs of no group together), so one handler call serves one tenant. Under
   * a rate limit `per: 'call'` the store forms each call from the jobs it counted for it, in queue
   * order, so a call may mix groups whatever this says (splitting it would make more calls than the
   * limit counted).
   */
  readonly mixGroups?: boolean;
}

/**
 * "Write while busy": jobs that find the handler idle go at once (a reservation's jobs together);
 * while it is busy jobs gather, up to `maxSize` a call.
 */
export interface AdaptiveBatch {
  readonly adaptive: true;
  readonly maxSize: number;
  /** Let a call hold jobs of different groups. Default `false` (see `SizeTimeBatch.mixGroups`). */
  readonly mixGroups?: boolean;
}

export type BatchSpec = SizeTimeBatch | AdaptiveBatch;

interface CommonConfig extends Omit<PipelineSpec, 'unitSize' | 'fill'> {
  /** Abort a handler after this long unless the job has its own `timeoutMs`. Default: no timeout. */
  readonly timeoutMs?: number;
}

/** A pipeline whose handler takes one job at a time. */
export interface SingleJobPipelineConfig<T, R> extends CommonConfig {
  readonly batch?: undefined;
  readonly handler: Handler<T, R>;
}

/**
 * A pipeline whose handler takes a batch of jobs. For adaptive batches, `prefetch` defaults to one
 * more batch per handler slot (`concurrency × maxSize`, 0 with a rate limit), so the next batch
 * gathers while one is written.
 */
export interface BatchPipelineConfig<T, R> extends CommonConfig {
  readonly batch: BatchSpec;
  readonly handler: BatchHandler<T, R>;
}

export type PipelineConfig<T = unknown, R = unknown> =
  SingleJobPipelineConfig<T, R> | BatchPipelineConfig<T, R>;

/**
 * Defines a pipeline: a demand-driven source on a queue, an optional rate limit and batching, a
 * handler with bounded concurrency, and settlement of every outcome.
 *
 * Intuition: sugar over {@link pipeline}. It picks the handler stage for the batching mode — the
 * whole function is this short composition of public operators, so copy it to make your own:
 *
 * ```
 * worker source ─► validate ─► [timeStarts] ─► processJobs | batchJobs/chunkJobs ─► processBatches
 *                                            | adaptiveBatches ─► settle ─► outcomes$
 * ```
 *
 * ## Example
 * ```ts
 * const emails = definePipeline<Email, string>({
 *   queue: 'emails',
 *   concurrency: 5,
 *   rateLimit: { allowed: 400, periodMs: 1000 },
 *   timeoutMs: 10_000,
 *   handler: async (job, { signal }) => {
 *     const res = await provider.send(job.data, { signal });
 *     if (res.status === 429) return { snooze: 1000 };
 *     return res.messageId;
 *   },
 * });
 * ```
 */
/* eslint-disable @typescript-eslint/unified-signatures -- a union loses the handler's contextual type */
export function definePipeline<T = unknown, R = unknown>(
  config: SingleJobPipelineConfig<T, R>,
): PipelineDefinition<T, R>;
export function definePipeline<T = unknown, R = unknown>(
  config: BatchPipelineConfig<T, R>,
): PipelineDefinition<T, R>;
/* eslint-enable @typescript-eslint/unified-signatures */
export function definePipeline<T = unknown, R = unknown>(
  config: PipelineConfig<T, R>,
): PipelineDefinition<T, R> {
  const { timeoutMs, handler: _handler, batch: spec, ...common } = config;
  const name = config.name ?? config.queue;
  const withTimeout = (ctx: PipelineContext) => (timeoutMs === undefined ? ctx : { ...ctx, timeoutMs });
  type Stage = (ctx: PipelineContext) => OperatorFunction<Reservation<T>, readonly Handled<T>[]>;
  let stage: Stage;
  let unitSize = 1;
  let prefetch = config.prefetch;
  let fill: PipelineSpec['fill'];
  if (config.batch === undefined) {
    const handler = config.handler;
    stage = (ctx) => processJobs(handler, withTimeout(ctx));
  } else if ('adaptive' in config.batch) {
    const { handler, batch } = config;
    unitSize = batch.maxSize;
    // One more batch per slot gathers while one is written (not with a limit: it would start late).
    prefetch ??= config.rateLimit ? 0 : (config.concurrency ?? 1) * batch.maxSize;
    const mixGroups = batch.mixGroups === true;
    stage = (ctx) => adaptiveBatches(handler, { ...withTimeout(ctx), maxSize: batch.maxSize, mixGroups });
  } else {
    const { handler, batch } = config;
    unitSize = batch.size;
    if (config.rateLimit) {
      // With a limit the store forms the batches (a reserved job starts when it was counted, never
      // after a local timer), and each reservation is split into calls of at most `size`.
      if (batch.timeMs !== undefined) fill = { count: batch.size, waitMs: batch.timeMs };
      // Calls counted by the store stay whole; jobs counted one by one may be split by group.
      const mixGroups = batch.mixGroups === true || config.rateLimit.per === 'call';
      stage = (ctx) => (r$) =>
        r$.pipe(chunkJobs(batch.size, { mixGroups }), processBatches(handler, withTimeout(ctx)));
    } else {
      const timing = batch.timeMs === undefined ? {} : { timeMs: batch.timeMs };
      stage = (ctx) => (r$) =>
        r$.pipe(
          batchJobs<T>({
            size: batch.size,
            ...timing,
            scheduler: ctx.scheduler,
            mixGroups: batch.mixGroups === true,
          }),
          processBatches(handler, withTimeout(ctx)),
        );
    }
  }
  if (config.rateLimit?.per === 'call' && (spec === undefined || 'adaptive' in spec)) {
    throw new InvalidArgumentError(
      `pipeline "${name}": a rate limit per call needs a size/time batch ({ size, timeMs })`,
    );
  }
  return pipeline<T, R>(
    { ...common, unitSize, ...(prefetch === undefined ? {} : { prefetch }), ...(fill ? { fill } : {}) },
    (reservations$, ctx) => reservations$.pipe(stage(ctx)),
  );
}

import { asyncScheduler, Observable } from 'rxjs';
import {
  MemoryStore,
  silentLogger,
  Telemetry,
  Worker,
  type CloseResult,
  type JobOptions,
  type Logger,
  type Outcome,
  type PipelineDefinition,
  type Store,
} from '@sluice/core';

export interface PipelineHarnessOptions<S extends Store = MemoryStore> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- definitions of any payload type
  readonly pipelines: readonly PipelineDefinition<any, any>[];
  /**
   * Default: a new `MemoryStore` on `asyncScheduler` (virtual inside `TestScheduler.run`). Any store
   * whose calls answer on that scheduler runs in virtual time too (a `PartitionedStore` over a
   * `MemoryStore`).
   */
  readonly store?: S;
  readonly logger?: Logger;
  readonly telemetry?: Telemetry;
}

export interface EnqueueItem {
  readonly data: unknown;
  readonly options?: JobOptions;
}

/**
 * Runs whole pipelines over a `MemoryStore` in RxJS virtual time: schedule adds at frames, start the
 * worker, drain it at a frame, and compare the outcomes with marbles.
 *
 * Everything here is driven by `asyncScheduler`, which `TestScheduler.run` virtualises, so call it
 * inside `run()`. Handlers must return values or Observables (`timer(100).pipe(map(...))` for a
 * 100 ms call): promises resolve outside virtual time.
 *
 * ## Example
 * ```ts
 * testScheduler.run(({ expectObservable }) => {
 *   const h = pipelineHarness({ pipelines: [definePipeline({ queue: 'q', handler: (job) => job.data })] });
 *   h.enqueueAt(0, 'q', [{ data: 'a' }, { data: 'b' }]);
 *   const outcomes$ = h.run({ until: 100 }).pipe(map(describeOutcome));
 *   expectObservable(outcomes$).toBe('(ab)', { a: 'completed:a', b: 'completed:b' });
 * });
 * ```
 */
export function pipelineHarness(options: PipelineHarnessOptions): PipelineHarness;
export function pipelineHarness<S extends Store>(
  options: PipelineHarnessOptions<S> & { readonly store: S },
): PipelineHarness<S>;
export function pipelineHarness(options: PipelineHarnessOptions<Store>): PipelineHarness<Store> {
  const store = options.store ?? new MemoryStore();
  const telemetry = options.telemetry ?? new Telemetry();
  const worker = new Worker({
    store,
    pipelines: options.pipelines,
    logger: options.logger ?? silentLogger,
    telemetry,
  });
  let closeResult: CloseResult | undefined;
  return {
    store,
    worker,
    telemetry,
    enqueueAt(frame, queue, items) {
      asyncScheduler.schedule(() => {
        store.enqueue(items.map((item) => ({ ...item.options, queue, data: item.data }))).subscribe({
          error: (err: unknown) => {
            throw err;
          },
        });
      }, frame);
    },
    run({ until, drainTimeoutMs }) {
      // Cold: the worker starts when the outcomes are subscribed, so none are missed.
      return new Observable<Outcome>((subscriber) => {
        const subscription = worker.outcomes$.subscribe(subscriber);
        worker.start();
        asyncScheduler.schedule(
          () => {
            worker.drain({ timeoutMs: drainTimeoutMs ?? 0 }).subscribe((r) => (closeResult = r));
          },
          Math.max(0, until - asyncScheduler.now()),
        );
        return subscription;
      });
    },
    get closeResult() {
      return closeResult;
    },
  };
}

export interface PipelineHarness<S extends Store = MemoryStore> {
  readonly store: S;
  readonly worker: Worker;
  readonly telemetry: Telemetry;
  /** Adds jobs to `queue` at virtual `frame`. */
  enqueueAt(frame: number, queue: string, items: readonly EnqueueItem[]): void;
  /**
   * Starts the worker when subscribed and drains it at frame `until` (in-flight jobs get `drainTimeoutMs`, default
   * 0: aborted at once). Returns the worker's outcomes, which complete when it closes.
   */
  run(options: { readonly until: number; readonly drainTimeoutMs?: number }): Observable<Outcome>;
  /** Set once the drain at `until` has finished. */
  readonly closeResult: CloseResult | undefined;
}

/** A short string for an outcome, handy in marble `values` maps: `"completed:<data>"`. */
export function describeOutcome(outcome: Outcome): string {
  return `${outcome.kind}:${typeof outcome.job.data === 'string' ? outcome.job.data : JSON.stringify(outcome.job.data)}`;
}

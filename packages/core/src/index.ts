/**
 * `@sluice/core`: demand-driven job pipelines on RxJS.
 *
 * The operators are usable on their own; `definePipeline` composes them and `Worker` runs the result
 * against a `Store` (`MemoryStore` here, `RedisStore` in `@sluice/redis`).
 */
export * from './model/errors';
export * from './model/job';
export * from './model/outcome';
export * from './store/store';
export * from './model/handler';
export * from './runtime/demand';
export * from './runtime/limiter';
export * from './runtime/lease-clock';
export * from './model/backoff';
export * from './runtime/cron';
export * from './model/validation';
export * from './runtime/logger';
export * from './runtime/telemetry';
export * from './runtime/in-flight';
export * from './store/queue';
export * from './runtime/pipeline';
export * from './runtime/worker';
export * from './store/memory-store';
export * from './operators/source';
export * from './operators/rate-limit';
export * from './operators/validate';
export * from './operators/batch';
export * from './operators/adaptive-batch';
export * from './operators/process-jobs';
export * from './operators/settle';
export * from './operators/fan-out';

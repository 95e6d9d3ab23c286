/**
 * `@sluice/core`: demand-driven job pipelines on RxJS.
 *
 * The operators are usable on their own; `definePipeline` composes them and `Worker` runs the result
 * against a `Store` (`MemoryStore` here, `RedisStore` in `@sluice/redis`).
 */
export * from './errors';
export * from './job';
export * from './outcome';
export * from './store';
export * from './handler';
export * from './demand';
export * from './limiter';
export * from './lease-clock';
export * from './backoff';
export * from './cron';
export * from './validation';
export * from './logger';
export * from './telemetry';
export * from './in-flight';
export * from './queue';
export * from './pipeline';
export * from './worker';
export * from './memory/memory-store';
export * from './operators/source';
export * from './operators/rate-limit';
export * from './operators/validate';
export * from './operators/batch';
export * from './operators/adaptive-batch';
export * from './operators/process-jobs';
export * from './operators/settle';
export * from './operators/fan-out';

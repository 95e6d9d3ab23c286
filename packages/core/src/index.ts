/**
 * `@sluice/core`: demand-driven job pipelines on RxJS.
 *
 * The public surface, by layer:
 * - the model: jobs, reservations, handlers and their results, outcomes, errors, backoff;
 * - the store contract, the in-memory store, and the producer's `Queue`;
 * - the operators a pipeline is composed of, each usable on its own;
 * - the runtime: `pipeline` / `definePipeline`, `Worker`, the demand channel, logging and telemetry.
 *
 * What other packages of this repository share beyond that (store helpers, clocks, the concurrency
 * loop) is in `@sluice/core/internal`, with no stability promise.
 */

// The model
export {
  ErrorCode,
  SluiceError,
  InvalidArgumentError,
  InvalidDemandError,
  PayloadValidationError,
  PayloadTooLargeError,
  PayloadNotSerializableError,
  JobTimeoutError,
  JobAbortedError,
  PermanentError,
  StoreClosedError,
  StoreError,
  WorkerStateError,
  UnreachableCaseError,
  BufferOverflowError,
  QueueBusyError,
  toErrorInfo,
} from './model/errors';
export type { SchemaViolation, AbortCause, ErrorInfo } from './model/errors';
export { JobState, JOB_STATES, MAX_PRIORITY } from './model/job';
export {
  DEFAULT_RETENTION,
  DEFAULT_DEAD_RETENTION,
  DEFAULT_MAX_ATTEMPTS,
  MAX_ATTEMPT_ERRORS,
  DEFAULT_HISTORY_MINUTES,
  MAX_JOB_LOG_LINES,
  MAX_LOG_LINE_CHARS,
  MAX_PROGRESS_BYTES,
} from './model/limits';
export type {
  Retention,
  UniqueOptions,
  JobOptions,
  NewJob,
  AttemptError,
  Job,
  Lease,
  ReservedJob,
  JobRecord,
  JobUpdate,
  TraceContext,
} from './model/job';
export { parseTraceparent, partitionName, parsePartitionName, MAX_PARTITIONS } from './model/validation';
export type { Traceparent, PartitionName } from './model/validation';
export { withJobs } from './model/reservation';
export type { LimitGrant, StartGate, Reservation } from './model/reservation';
export { failed, perJob, isFailure, isPerJob, isSnooze, isCancel, isRetryAfter } from './model/handler';
export type {
  Snooze,
  Cancel,
  RetryAfter,
  FlowControl,
  JobContext,
  LimitContext,
  HandlerReturn,
  Handler,
  BatchHandler,
  JobFailure,
  PerJobResults,
} from './model/handler';
export { OutcomeKind } from './model/outcome';
export type {
  Handled,
  UnusedUnits,
  HandledStatus,
  Settlement,
  SettlementBase,
  SettlementKind,
  SettleResult,
  Outcome,
  OutcomeBase,
} from './model/outcome';
export { exponential, fixed } from './model/backoff';
export type { BackoffPolicy, ExponentialBackoffConfig } from './model/backoff';
export {
  compileSchema,
  DEFAULT_MAX_PAYLOAD_BYTES,
  MAX_GROUP_LENGTH,
  MAX_GROUP_WEIGHT,
} from './model/validation';
export type { PayloadValidator } from './model/validation';

// The store contract, the in-memory store, the producer's handle
export { ACTIVE_CAP_CHECK_MS } from './store/store';
export type {
  RateLimitSpec,
  GroupRateLimit,
  GroupRules,
  GroupInfo,
  ListGroupsOptions,
  FillSpec,
  LimitSlot,
  GrantLimitOptions,
  GrantedUnits,
  LimitGrantAnswer,
  PermitGrant,
  LimitPause,
  RateLimitNumbers,
  RebaseResult,
  ReserveOptions,
  RejectedJob,
  ReserveResult,
  ParkSpec,
  Handoff,
  HandoffChannel,
  EnqueueResult,
  LeaseRef,
  ExtendResult,
  RecoverResult,
  QueueSettings,
  JobCounts,
  QueueStats,
  MinuteBucket,
  JobEvent,
  JobProgressEvent,
  ListOptions,
  CancelResult,
  ObliterateOptions,
  ObliterateResult,
  WorkerPipelineInfo,
  WorkerInfo,
  ScheduleSpec,
  QueueConfig,
  QueueConfigPatch,
  QueueConfigChange,
  Store,
} from './store/store';
export { MemoryStore } from './store/memory-store';
export { PartitionedStore } from './store/partitioned-store';
export type { PartitionedStoreOptions } from './store/partitioned-store';
export type { MemoryStoreConfig } from './store/memory-store';
export { Queue, JobFailedError, MAX_LIST_LIMIT } from './store/queue';
export type { QueueOptions, BulkItem, ListQuery } from './store/queue';

// Operators
export { source } from './operators/source';
export type { SourceConfig, IdlePolling } from './operators/source';
export { validate } from './operators/validate';
export type { Checked } from './operators/validate';
export { timeStarts } from './operators/time-starts';
export type { AlsoRateLimit, TimeStartsConfig, PipelineRateLimit } from './operators/time-starts';
export { processJobs } from './operators/process-jobs';
export type { RunConfig, ProcessConfig } from './operators/process-jobs';
export { processBatches, adaptiveBatches } from './operators/process-batches';
export type { AdaptiveBatchesConfig } from './operators/process-batches';
export { batchJobs, chunkJobs } from './operators/batch-jobs';
export { batch } from './operators/batch';
export type { BatchConfig } from './operators/batch';
export { adaptiveBatch } from './operators/adaptive-batch';
export type { AdaptiveBatchConfig, AdaptiveBatchOverflow } from './operators/adaptive-batch';
export { settle } from './operators/settle';
export type { SettleConfig } from './operators/settle';
export { rateLimit } from './operators/rate-limit';
export type { RateLimitConfig } from './operators/rate-limit';
export { fanOut } from './operators/fan-out';
export type {
  FanOutOverflow,
  FanOutConfig,
  FanOutSubscriberConfig,
  FanOutStats,
  FanOutSubscriber,
  FanOut,
} from './operators/fan-out';

// The runtime
export { pipeline } from './runtime/pipeline';
export type { PipelineContext, PipelineGraph, PipelineSpec, PipelineDefinition } from './runtime/pipeline';
export { definePipeline } from './runtime/define-pipeline';
export type {
  SizeTimeBatch,
  AdaptiveBatch,
  BatchSpec,
  SingleJobPipelineConfig,
  BatchPipelineConfig,
  PipelineConfig,
} from './runtime/define-pipeline';
export { Worker } from './runtime/worker';
export type {
  WorkerConfig,
  CloseOptions,
  CloseResult,
  PipelineStatus,
  PipelineHandle,
} from './runtime/worker';
export { HelperThreads, helperThreads } from './runtime/helper-threads';
export type {
  HelperThreadsPolicy,
  HelperThreadsMode,
  HelperThreadsOptions,
  HelperThreadsLoad,
} from './runtime/helper-threads';
export { Demand } from './runtime/demand';
export type { DemandConfig } from './runtime/demand';
export { InFlight, type Held } from './runtime/in-flight';
export { SlidingWindowLimiter, maxInAnyWindow } from './runtime/limiter';
export type { SlidingWindowConfig, Grant, Slot, SlotPlan } from './runtime/limiter';
export { parseCron } from './runtime/cron';
export type { CronExpression } from './runtime/cron';
export { createLogger, silentLogger } from './runtime/logger';
export type { Logger } from './runtime/logger';
export { Telemetry } from './runtime/telemetry';
export type { StartTimingKind, TelemetryEvent, TelemetryEventType } from './runtime/telemetry';

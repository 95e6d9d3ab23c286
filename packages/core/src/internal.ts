/**
 * `@sluice/core/internal`: what the other packages of this repository share with the core beyond
 * its public API — helpers for store implementations, the start-timing parts, clocks and loops.
 * No stability promise: these change with the core.
 */
export { StoreText, fillTemplate, leaseExpiredError, boundAttemptErrors } from './model/limits';
export type { TemplateValues } from './model/limits';
export {
  assertGroupName,
  assertGroupWeight,
  assertGrantUnits,
  assertListOptions,
  assertPermitArgs,
  assertQueueName,
  assertRetention,
  assertTraceContext,
  assertValid,
  encodeJobUpdate,
  encodePayload,
  validateNewJob,
} from './model/validation';
export { applyConfigPatch, assertConfigPatch } from './store/queue-config';
export { settleCalls, toSettlement } from './operators/settle';
export { concurrencyLoop, eachJob, joinUnits } from './operators/concurrency-loop';
export type { LoopConfig, Overflow, StartRun } from './operators/concurrency-loop';
export {
  leadSlots,
  maxRateMargin,
  maxSlotLead,
  groupRateMargin,
  rateMargin,
  timingLimit,
  stableNow,
  startTiming,
  storeLimit,
  withMargin,
} from './operators/time-starts';
export { GrantsAhead } from './runtime/grants-ahead';
export type { GrantsAheadConfig } from './runtime/grants-ahead';
export { runPipeline } from './runtime/run-pipeline';
export { HeldMark } from './runtime/in-flight';
export type { PipelineRun } from './runtime/run-pipeline';
export { LeaseClock, localSlop, preciseNow } from './runtime/lease-clock';
export { LimiterRegistry, MARGIN_HOLD_MS } from './runtime/limiter';
export type { AbortKind, PendingAbort } from './runtime/in-flight';
export { instrumentStore } from './runtime/telemetry';

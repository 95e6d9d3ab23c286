/**
 * `@sluice/dashboard`: a web UI and JSON API for Sluice queues, mountable as a plain `(req, res)`
 * handler; Prometheus metrics; and bridges from Sluice telemetry to `diagnostics_channel` and
 * OpenTelemetry.
 */
export { createDashboard } from './dashboard';
export type { DashboardHandler, DashboardOptions } from './dashboard';
export { startDashboardServer } from './server';
export type { DashboardServer, DashboardServerOptions } from './server';
export { DEFAULT_METRICS_TOP_GROUPS, METRIC_NAMES, createMetrics } from './metrics';
export { DEFAULT_GROUP_SCAN_LIMIT, compareBusiest, scanGroups } from './groups';
export type { GroupScan } from './groups';
export type { Metrics, MetricsOptions, MetricsRegistry } from './metrics';
export { DIAGNOSTICS_CHANNELS, publishToDiagnosticsChannel } from './diagnostics-channel';
// The OpenTelemetry bridge lives in @sluice/opentelemetry (a worker can use it without the dashboard);
// re-exported here for code that imported it from this package.
export { bridgeToOpenTelemetry } from '@sluice/opentelemetry';
export type {
  OpenTelemetryBridgeOptions,
  SpanAttributeValue,
  SpanLike,
  TracerLike,
} from '@sluice/opentelemetry';
export type { DashboardAuth } from './auth';
export { CSRF_COOKIE, CSRF_HEADER } from './csrf';
export type { CsrfOptions } from './csrf';
export type { LiveUpdatesOptions } from './live-updates';
export { ApiErrorCode } from './http';
export type { ApiErrorBody } from './http';
export type { LimitPauseView, StartTimingView } from './rate-limits';
export type {
  BulkActionView,
  RateLimitDetailView,
  BulkJobResult,
  GroupLimitView,
  GroupListView,
  GroupView,
  JobListView,
  OverviewView,
  QueueDetailView,
  RetentionInForce,
  RetentionView,
  SessionView,
} from './api';
export type {
  JobDetailView,
  JobSummaryView,
  QueueSummaryView,
  RateLimitView,
  RedactedJob,
  Redactor,
  ScheduleView,
  ThroughputView,
  WorkerPipelineView,
  WorkerView,
} from './views';

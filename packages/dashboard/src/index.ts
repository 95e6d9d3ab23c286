/**
 * `@sluice/dashboard`: a web UI and JSON API for Sluice queues, mountable as a plain `(req, res)`
 * handler; Prometheus metrics; and bridges from Sluice telemetry to `diagnostics_channel` and
 * OpenTelemetry.
 */
export * from './dashboard';
export * from './server';
export * from './metrics';
export * from './diagnostics-channel';
export * from './opentelemetry';
export type { DashboardAuth } from './auth';
export { CSRF_COOKIE, CSRF_HEADER, type CsrfOptions } from './csrf';
export type { LiveUpdatesOptions } from './live-updates';
export { ApiErrorCode, type ApiErrorBody } from './http';
export type { SessionView, OverviewView, QueueDetailView, JobListView } from './api';
export type {
  Redactor,
  RedactedJob,
  JobSummaryView,
  JobDetailView,
  QueueSummaryView,
  RateLimitView,
  ScheduleView,
  ThroughputView,
  WorkerView,
  WorkerPipelineView,
} from './views';

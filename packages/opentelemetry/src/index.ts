/**
 * `@sluice/opentelemetry`: spans from Sluice telemetry for OpenTelemetry, for a worker or producer
 * process that does not serve the dashboard. `@opentelemetry/api` is an optional peer dependency.
 */
export { bridgeToOpenTelemetry } from './bridge';
export type { OpenTelemetryBridgeOptions, SpanAttributeValue, SpanLike, TracerLike } from './bridge';

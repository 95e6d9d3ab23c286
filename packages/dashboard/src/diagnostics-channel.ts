import diagnosticsChannel, { type Channel } from 'node:diagnostics_channel';
import type { Subscription } from 'rxjs';
import type { Telemetry, TelemetryEventType } from '@sluice/core';

/** Every telemetry event type; a missing or unknown key fails to compile when core's union changes. */
const EVENT_TYPE_SET: Readonly<Record<TelemetryEventType, true>> = {
  enqueue: true,
  reserve: true,
  'rate-limited': true,
  rejected: true,
  start: true,
  'start-timing': true,
  stop: true,
  exception: true,
  'settle-refused': true,
  demand: true,
  action: true,
};
const EVENT_TYPES = Object.keys(EVENT_TYPE_SET) as TelemetryEventType[];

/** The channel name of each event type: `sluice:<type>`. */
export const DIAGNOSTICS_CHANNELS: Readonly<Record<TelemetryEventType, string>> = Object.fromEntries(
  EVENT_TYPES.map((type) => [type, `sluice:${type}`]),
) as Record<TelemetryEventType, string>;

/**
 * Publishes every telemetry event on Node's `diagnostics_channel`, one channel per event type
 * (`sluice:start`, `sluice:stop`, `sluice:exception`, … see {@link DIAGNOSTICS_CHANNELS}), so APM
 * agents and your own code can listen without a reference to the `Telemetry` hub. The message is the
 * event object itself (see `TelemetryEvent` in `@sluice/core`); treat it as read-only. Nothing is
 * published on a channel nobody subscribes to. Unsubscribe the returned subscription to stop.
 *
 * ## Example
 * ```ts
 * import diagnosticsChannel from 'node:diagnostics_channel';
 * import { Telemetry, Worker } from '@sluice/core';
 * import { publishToDiagnosticsChannel } from '@sluice/dashboard';
 *
 * const telemetry = new Telemetry();
 * const bridge = publishToDiagnosticsChannel(telemetry);
 * new Worker({ store, telemetry, pipelines: [emails] }).start();
 *
 * // anywhere else in the process, e.g. in an APM plugin:
 * diagnosticsChannel.subscribe('sluice:exception', (event) => report(event));
 *
 * // on shutdown
 * bridge.unsubscribe();
 * ```
 */
export function publishToDiagnosticsChannel(telemetry: Telemetry): Subscription {
  const channels = new Map<string, Channel>();
  for (const type of EVENT_TYPES) channels.set(type, diagnosticsChannel.channel(`sluice:${type}`));
  return telemetry.events$.subscribe((event) => {
    const channel = channels.get(event.type);
    if (channel?.hasSubscribers) channel.publish(event);
  });
}

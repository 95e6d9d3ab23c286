import type * as OtelApi from '@opentelemetry/api';
import { Subscription } from 'rxjs';
import {
  InvalidArgumentError,
  parseTraceparent,
  type Telemetry,
  type TelemetryEvent,
  type TraceContext,
} from '@sluice/core';

/** Span attribute values the bridge sets. */
export type SpanAttributeValue = string | number | boolean;

/**
 * The part of an OpenTelemetry `Span` the bridge uses; a real `Span` from `@opentelemetry/api` fits.
 * Declared here so this package's types do not require `@opentelemetry/api` to be installed.
 */
export interface SpanLike {
  setAttribute(key: string, value: SpanAttributeValue): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: { name: string; message: string; stack?: string }, time?: number): void;
  end(endTime?: number): void;
}

/** An OpenTelemetry `TraceState` (vendor entries of a span context). */
export interface TraceStateLike {
  set(key: string, value: string): TraceStateLike;
  unset(key: string): TraceStateLike;
  get(key: string): string | undefined;
  serialize(): string;
}

/** A remote span a process span is parented or linked to (an OpenTelemetry `SpanContext`). */
export interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: TraceStateLike;
}

/** The part of an OpenTelemetry `Tracer` the bridge uses; a real `Tracer` fits. */
export interface TracerLike {
  startSpan(
    name: string,
    options?: {
      kind?: number;
      attributes?: Record<string, SpanAttributeValue>;
      startTime?: number;
      root?: boolean;
      links?: { context: SpanContextLike; attributes?: Record<string, SpanAttributeValue> }[];
    },
    /** The parent: an OpenTelemetry `Context` holding the producer's span context. */
    context?: unknown,
  ): SpanLike;
}

export interface OpenTelemetryBridgeOptions {
  /**
   * The tracer to make spans with. Default: `trace.getTracer('@sluice/opentelemetry')` from
   * `@opentelemetry/api`, loaded when the bridge starts (it is an optional peer dependency: install it
   * to use the bridge without passing a tracer).
   */
  readonly tracer?: TracerLike;
  /** Make `send <queue>` spans for enqueues. Default `true`. */
  readonly producerSpans?: boolean;
  /**
   * Most `process` spans open at once. Past it the oldest is ended, marked `sluice.incomplete`, so a
   * job whose outcome never arrives (its process died) cannot leak memory. Default `10_000`.
   */
  readonly maxOpenSpans?: number;
  /**
   * What a `process` span of one job does with the trace context its producer gave
   * (`JobOptions.trace`): `'parent'` (default) makes it a child of the producer's span, in the
   * producer's trace; `'link'` starts a new trace linked to it. A span of a batch is always a new
   * trace linked to the context of each of its jobs. Parenting needs `@opentelemetry/api` (to make
   * the context); without it the span is linked instead.
   */
  readonly producerContext?: 'parent' | 'link';
}

/** OpenTelemetry's `SpanKind` and `SpanStatusCode` values (fixed by the specification). */
const SPAN_KIND_PRODUCER = 3;
const SPAN_KIND_CONSUMER = 4;
const STATUS_ERROR = 2;

interface OpenProcessSpan {
  readonly span: SpanLike;
  readonly keys: readonly string[];
  readonly remaining: Set<string>;
  readonly batch: boolean;
  failed: boolean;
}

/**
 * Turns telemetry into OpenTelemetry spans, following the messaging semantic conventions:
 *
 * - `process <queue>` (kind `CONSUMER`) from a `start` event to the `stop` of its job — or of every
 *   job, when the handler took a batch — with `messaging.system = "sluice"`,
 *   `messaging.destination.name`, `messaging.operation.type = "process"`,
 *   `messaging.consumer.group.name` (the pipeline), and `messaging.message.id` (one job) or
 *   `messaging.batch.message_count` (a batch). An `exception` event is recorded on the span and sets
 *   its status to `ERROR` (with `error.type`); so does a dead-lettered outcome or a refused settle.
 * - `send <queue>` (kind `PRODUCER`) for each `enqueue` event, spanning the store call, with
 *   `messaging.operation.type = "send"` and `messaging.batch.message_count` for bulk adds.
 *
 * Spans take their times from the events (`at`: the store's clock for starts and outcomes), so they
 * line up across processes. A job added with a trace context (`JobOptions.trace`, e.g. from
 * `propagation.inject`) continues its producer's trace: the `process` span of that job is a child of
 * the producer's span (or, with `producerContext: 'link'`, a new trace linked to it); a batch's span
 * is linked to every job's producer. Jobs without one get root spans. Unsubscribe the returned
 * subscription to stop; spans still open are then ended.
 *
 * ## Example
 * ```ts
 * import { NodeSDK } from '@opentelemetry/sdk-node';
 * import { Telemetry, Worker } from '@sluice/core';
 * import { bridgeToOpenTelemetry } from '@sluice/opentelemetry';
 *
 * new NodeSDK({ serviceName: 'mailer' }).start(); // registers the global tracer provider
 * const telemetry = new Telemetry();
 * const bridge = bridgeToOpenTelemetry(telemetry); // or { tracer: trace.getTracer('mailer') }
 * const worker = new Worker({ store, telemetry, pipelines: [emails] }).start();
 *
 * process.on('SIGTERM', async () => {
 *   await worker.close();
 *   bridge.unsubscribe();
 * });
 * ```
 */
export function bridgeToOpenTelemetry(
  telemetry: Telemetry,
  options: OpenTelemetryBridgeOptions = {},
): Subscription {
  const tracer = options.tracer ?? defaultTracer();
  const producerSpans = options.producerSpans ?? true;
  const parentFromProducer = (options.producerContext ?? 'parent') === 'parent';
  const maxOpen = options.maxOpenSpans ?? 10_000;
  if (!Number.isInteger(maxOpen) || maxOpen < 1) {
    throw new InvalidArgumentError(`maxOpenSpans must be an integer ≥ 1, got ${maxOpen}`);
  }
  const open = new Map<string, OpenProcessSpan>();
  const keyOf = (queue: string, jobId: string): string => `${queue}\u0000${jobId}`;

  const endEntry = (entry: OpenProcessSpan, at?: number): void => {
    for (const key of entry.keys) if (open.get(key) === entry) open.delete(key);
    entry.span.end(at);
  };

  const fail = (entry: OpenProcessSpan, message: string): void => {
    entry.failed = true;
    entry.span.setStatus({ code: STATUS_ERROR, message });
  };

  const onStart = (event: Extract<TelemetryEvent, { type: 'start' }>): void => {
    const single = event.jobIds.length === 1;
    const attributes: Record<string, SpanAttributeValue> = {
      ...messagingAttributes(event.queue, 'process'),
      'messaging.consumer.group.name': event.pipeline,
      'sluice.pipeline': event.pipeline,
      'sluice.attempt': event.attempt,
      'sluice.wait_ms': event.waitMs,
    };
    if (single) attributes['messaging.message.id'] = event.jobIds[0] ?? '';
    else attributes['messaging.batch.message_count'] = event.jobIds.length;
    const producers = (event.traces ?? []).map((t) => (t ? remoteSpanContext(t) : undefined));
    const links = producers.flatMap((context) => (context ? [{ context }] : []));
    const parent = single && parentFromProducer && producers[0] ? contextWithParent(producers[0]) : undefined;
    const span = tracer.startSpan(
      `process ${event.queue}`,
      {
        kind: SPAN_KIND_CONSUMER,
        attributes,
        startTime: event.at,
        ...(parent === undefined ? { root: true } : {}),
        ...(parent === undefined && links.length > 0 ? { links } : {}),
      },
      parent,
    );
    const keys = event.jobIds.map((id) => keyOf(event.queue, id));
    const entry: OpenProcessSpan = { span, keys, remaining: new Set(keys), batch: !single, failed: false };
    for (const key of keys) {
      const previous = open.get(key);
      if (previous) endEntry(previous);
      open.set(key, entry);
    }
    while (open.size > maxOpen) {
      const oldest = open.values().next().value;
      if (!oldest) break;
      oldest.span.setAttribute('sluice.incomplete', true);
      endEntry(oldest);
    }
  };

  const settleOne = (queue: string, jobId: string, at: number, update: (entry: OpenProcessSpan) => void) => {
    const key = keyOf(queue, jobId);
    const entry = open.get(key);
    if (!entry) return;
    update(entry);
    entry.remaining.delete(key);
    open.delete(key);
    if (entry.remaining.size === 0) endEntry(entry, at);
  };

  const subscription = telemetry.events$.subscribe((event) => {
    switch (event.type) {
      case 'start':
        onStart(event);
        break;
      case 'exception': {
        const entry = open.get(keyOf(event.queue, event.jobId));
        if (!entry) break;
        const { name, message, stack } = event.error;
        entry.span.recordException({ name, message, ...(stack === undefined ? {} : { stack }) }, event.at);
        entry.span.setAttribute('error.type', name);
        fail(entry, `${name}: ${message}`);
        break;
      }
      case 'stop':
        settleOne(event.queue, event.jobId, event.at, (entry) => {
          if (!entry.batch) entry.span.setAttribute('sluice.outcome', event.kind);
          if (event.kind === 'dead' && !entry.failed) fail(entry, 'dead-lettered');
        });
        break;
      case 'settle-refused':
        settleOne(event.queue, event.jobId, event.at, (entry) => {
          fail(entry, `settle refused: ${event.reason}`);
        });
        break;
      case 'enqueue':
        if (producerSpans) {
          tracer
            .startSpan(`send ${event.queue}`, {
              kind: SPAN_KIND_PRODUCER,
              attributes: {
                ...messagingAttributes(event.queue, 'send'),
                ...(event.count > 1 ? { 'messaging.batch.message_count': event.count } : {}),
                'sluice.duplicates': event.duplicates,
              },
              startTime: event.at - Math.max(0, event.durationMs),
            })
            .end(event.at);
        }
        break;
      case 'start-timing':
      case 'reserve':
      case 'rate-limited':
      case 'rejected':
      case 'demand':
      case 'action':
        break;
    }
  });
  return new Subscription(() => {
    subscription.unsubscribe();
    for (const entry of new Set(open.values())) {
      entry.span.setAttribute('sluice.incomplete', true);
      endEntry(entry);
    }
  });
}

function messagingAttributes(
  queue: string,
  operation: 'process' | 'send',
): Record<string, SpanAttributeValue> {
  return {
    'messaging.system': 'sluice',
    'messaging.destination.name': queue,
    'messaging.operation.type': operation,
    'messaging.operation.name': operation,
  };
}

/** The producer's span as a remote span context; `undefined` for a malformed traceparent. */
function remoteSpanContext(trace: TraceContext): SpanContextLike | undefined {
  const parsed = parseTraceparent(trace.traceparent);
  if (!parsed) return undefined;
  const traceState = trace.tracestate === undefined ? undefined : new TraceStateEntries(trace.tracestate);
  return {
    traceId: parsed.traceId,
    spanId: parsed.parentId,
    traceFlags: parsed.flags,
    isRemote: true,
    ...(traceState === undefined ? {} : { traceState }),
  };
}

/** A W3C `tracestate` as an immutable list of `key=value` entries, newest first. */
class TraceStateEntries implements TraceStateLike {
  private readonly entries: readonly (readonly [string, string])[];
  constructor(header: string | readonly (readonly [string, string])[]) {
    this.entries =
      typeof header === 'string'
        ? header
            .split(',')
            .map((member) => member.trim())
            .filter((member) => member.includes('='))
            .map((member): [string, string] => {
              const eq = member.indexOf('=');
              return [member.slice(0, eq), member.slice(eq + 1)];
            })
        : header;
  }
  get(key: string): string | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
  set(key: string, value: string): TraceStateLike {
    return new TraceStateEntries([[key, value], ...this.entries.filter(([k]) => k !== key)]);
  }
  unset(key: string): TraceStateLike {
    return new TraceStateEntries(this.entries.filter(([k]) => k !== key));
  }
  serialize(): string {
    return this.entries.map(([k, v]) => `${k}=${v}`).join(',');
  }
}

/** A context whose active span is the producer's (needs `@opentelemetry/api`). */
function contextWithParent(parent: SpanContextLike): unknown {
  const api = optionalApi();
  if (!api) return undefined;
  return api.trace.setSpanContext(api.ROOT_CONTEXT, parent);
}

let loadedApi: typeof OtelApi | null | undefined;
function optionalApi(): typeof OtelApi | undefined {
  if (loadedApi === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional peer, loaded only when used
      loadedApi = require('@opentelemetry/api') as typeof OtelApi;
    } catch {
      loadedApi = null;
    }
  }
  return loadedApi ?? undefined;
}

function defaultTracer(): TracerLike {
  let api: typeof OtelApi;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional peer, loaded only when used
    api = require('@opentelemetry/api') as typeof OtelApi;
  } catch (err) {
    throw new InvalidArgumentError(
      'bridgeToOpenTelemetry needs @opentelemetry/api: install it, or pass { tracer }',
      { cause: err },
    );
  }
  return api.trace.getTracer('@sluice/opentelemetry');
}

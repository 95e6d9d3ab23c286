import {
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { MemoryStore, Telemetry, type TelemetryEvent } from '@sluice/core';
import { bridgeToOpenTelemetry } from '@sluice/opentelemetry';
import { startEmailWorker, waitFor } from './support';

/** A span that keeps everything it is told. */
class RecordedSpan implements Span {
  readonly attributes: Record<string, unknown> = {};
  readonly exceptions: { exception: Exception; time?: TimeInput }[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  endTime: TimeInput | undefined;
  ended = false;

  constructor(
    public name: string,
    readonly options: SpanOptions,
    /** The parent context the span was started in, if one was given. */
    readonly context?: Context,
  ) {
    Object.assign(this.attributes, options.attributes ?? {});
  }

  spanContext(): SpanContext {
    return { traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '1', traceFlags: 1 };
  }
  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(_link: Link): this {
    return this;
  }
  addLinks(_links: Link[]): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(name: string): this {
    this.name = name;
    return this;
  }
  end(endTime?: TimeInput): void {
    if (this.ended) throw new Error(`span ${this.name} ended twice`);
    this.ended = true;
    this.endTime = endTime;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(exception: Exception, time?: TimeInput): void {
    this.exceptions.push(time === undefined ? { exception } : { exception, time });
  }
}

/** An in-memory tracer provider: every span started is kept in `spans`. */
class MemoryTracerProvider implements TracerProvider {
  readonly spans: RecordedSpan[] = [];

  getTracer(): Tracer {
    const startSpan = (name: string, options: SpanOptions = {}, context?: Context): Span => {
      const span = new RecordedSpan(name, options, context);
      this.spans.push(span);
      return span;
    };
    const startActiveSpan = (name: string, ...rest: unknown[]): unknown => {
      const fn = rest[rest.length - 1] as (span: Span) => unknown;
      return fn(startSpan(name, (rest.length > 1 ? rest[0] : {}) as SpanOptions));
    };
    return { startSpan, startActiveSpan };
  }
}

const base = { queue: 'emails', pipeline: 'send', attempt: 1, waitMs: 3 };

describe('bridgeToOpenTelemetry', () => {
  let provider: MemoryTracerProvider;
  let telemetry: Telemetry;

  beforeEach(() => {
    provider = new MemoryTracerProvider();
    telemetry = new Telemetry();
  });

  const emit = (event: TelemetryEvent) => {
    telemetry.emit(event);
  };
  const named = (name: string) => provider.spans.filter((s) => s.name === name);

  it('makes a CONSUMER span "process <queue>" from start to stop, with messaging attributes', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    emit({ type: 'start', at: 1000, jobIds: ['7'], jobs: 1, ...base });
    expect(provider.spans).toHaveLength(1);
    const span = provider.spans[0]!;
    expect(span.ended).toBe(false);
    emit({
      type: 'stop',
      queue: 'emails',
      at: 1040,
      pipeline: 'send',
      jobId: '7',
      kind: 'completed',
      durationMs: 40,
    });
    expect(span).toMatchObject({ name: 'process emails', ended: true, endTime: 1040 });
    expect(span.options).toMatchObject({ kind: SpanKind.CONSUMER, startTime: 1000, root: true });
    expect(span.attributes).toEqual({
      'messaging.system': 'sluice',
      'messaging.destination.name': 'emails',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.consumer.group.name': 'send',
      'messaging.message.id': '7',
      'sluice.pipeline': 'send',
      'sluice.attempt': 1,
      'sluice.wait_ms': 3,
      'sluice.outcome': 'completed',
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    bridge.unsubscribe();
  });

  it('records an exception on the span and marks it as an error', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    emit({ type: 'start', at: 1, jobIds: ['8'], jobs: 1, ...base });
    const error = { name: 'TypeError', message: 'bad input', stack: 'TypeError: bad input\n    at handler' };
    emit({ type: 'exception', queue: 'emails', at: 5, pipeline: 'send', jobId: '8', error, durationMs: 4 });
    emit({
      type: 'stop',
      queue: 'emails',
      at: 6,
      pipeline: 'send',
      jobId: '8',
      kind: 'retrying',
      durationMs: 4,
    });
    const span = provider.spans[0]!;
    expect(span.ended).toBe(true);
    expect(span.exceptions).toEqual([{ exception: error, time: 5 }]);
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError: bad input' });
    expect(span.attributes['error.type']).toBe('TypeError');
    expect(span.attributes['sluice.outcome']).toBe('retrying');
    bridge.unsubscribe();
  });

  it('makes one span per batch, ended when the last job of the batch settles', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    emit({ type: 'start', at: 10, jobIds: ['a', 'b', 'c'], jobs: 3, ...base });
    const span = provider.spans[0]!;
    expect(span.attributes['messaging.batch.message_count']).toBe(3);
    expect(span.attributes).not.toHaveProperty('messaging.message.id');
    for (const id of ['a', 'b']) {
      emit({
        type: 'stop',
        queue: 'emails',
        at: 20,
        pipeline: 'send',
        jobId: id,
        kind: 'completed',
        durationMs: 9,
      });
    }
    expect(span.ended).toBe(false);
    emit({
      type: 'stop',
      queue: 'emails',
      at: 21,
      pipeline: 'send',
      jobId: 'c',
      kind: 'completed',
      durationMs: 9,
    });
    expect(span).toMatchObject({ ended: true, endTime: 21 });
    expect(provider.spans).toHaveLength(1);
    bridge.unsubscribe();
  });

  it('marks dead-lettered jobs and refused settles as errors', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    emit({ type: 'start', at: 1, jobIds: ['d'], jobs: 1, ...base });
    emit({ type: 'stop', queue: 'emails', at: 2, pipeline: 'send', jobId: 'd', kind: 'dead', durationMs: 1 });
    emit({ type: 'start', at: 3, jobIds: ['r'], jobs: 1, ...base });
    emit({ type: 'settle-refused', queue: 'emails', at: 4, jobId: 'r', reason: 'lease-lost' });
    const [dead, refused] = provider.spans;
    expect(dead?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'dead-lettered' });
    expect(refused?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'settle refused: lease-lost' });
    expect(refused?.ended).toBe(true);
    bridge.unsubscribe();
  });

  it('makes a PRODUCER span "send <queue>" for each enqueue, spanning the store call', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    emit({ type: 'enqueue', queue: 'emails', at: 100, count: 3, duplicates: 1, durationMs: 4 });
    emit({ type: 'enqueue', queue: 'emails', at: 200, count: 1, duplicates: 0, durationMs: 1 });
    const [bulk, single] = named('send emails');
    expect(bulk?.options).toMatchObject({ kind: SpanKind.PRODUCER, startTime: 96 });
    expect(bulk).toMatchObject({ ended: true, endTime: 100 });
    expect(bulk?.attributes).toEqual({
      'messaging.system': 'sluice',
      'messaging.destination.name': 'emails',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.batch.message_count': 3,
      'sluice.duplicates': 1,
    });
    expect(single?.attributes).not.toHaveProperty('messaging.batch.message_count');
    bridge.unsubscribe();

    const quiet = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer(), producerSpans: false });
    emit({ type: 'enqueue', queue: 'emails', at: 300, count: 1, duplicates: 0, durationMs: 1 });
    expect(named('send emails')).toHaveLength(2);
    quiet.unsubscribe();
  });

  it('bounds open spans, and ends the open ones when unsubscribed', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer(), maxOpenSpans: 2 });
    for (const id of ['1', '2', '3']) emit({ type: 'start', at: 1, jobIds: [id], jobs: 1, ...base });
    const [first, second, third] = provider.spans;
    expect(first).toMatchObject({
      ended: true,
      attributes: expect.objectContaining({ 'sluice.incomplete': true }),
    });
    expect(second?.ended).toBe(false);
    bridge.unsubscribe();
    expect(second?.ended).toBe(true);
    expect(third?.ended).toBe(true);
    expect(telemetry.observed).toBe(false);
    expect(() => bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer(), maxOpenSpans: 0 })).toThrow(
      /maxOpenSpans/,
    );
  });

  it("continues the producer's trace: a job's span is its child, a batch's span links to each", () => {
    const bridge = bridgeToOpenTelemetry(telemetry, { tracer: provider.getTracer() });
    const producer = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'rojo=00f067aa0ba902b7',
    };
    const other = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' };
    emit({ type: 'start', at: 1, jobIds: ['1'], jobs: 1, traces: [producer], ...base });
    emit({
      type: 'start',
      at: 2,
      jobIds: ['2', '3', '4'],
      jobs: 3,
      traces: [producer, null, other],
      ...base,
    });
    emit({ type: 'start', at: 3, jobIds: ['5'], jobs: 1, ...base });
    const [single, batch, plain] = provider.spans;

    const parent = trace.getSpanContext(single!.context!);
    expect(parent).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
    });
    expect(parent?.traceState?.get('rojo')).toBe('00f067aa0ba902b7');
    expect(single!.options.root).toBeUndefined();

    expect(batch!.options.root).toBe(true);
    expect(batch!.context).toBeUndefined();
    expect(
      batch!.options.links?.map((l) => [l.context.traceId, l.context.spanId, l.context.traceFlags]),
    ).toEqual([
      ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1],
      ['0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', 0],
    ]);

    expect(plain!.options.root).toBe(true);
    expect(plain!.options.links).toBeUndefined();
    expect(plain!.context).toBeUndefined();
    bridge.unsubscribe();
  });

  it('links instead of parenting when asked to', () => {
    const bridge = bridgeToOpenTelemetry(telemetry, {
      tracer: provider.getTracer(),
      producerContext: 'link',
    });
    const producer = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    emit({ type: 'start', at: 1, jobIds: ['1'], jobs: 1, traces: [producer], ...base });
    const [span] = provider.spans;
    expect(span!.context).toBeUndefined();
    expect(span!.options.root).toBe(true);
    expect(span!.options.links?.[0]?.context).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    bridge.unsubscribe();
  });

  it("parents a real worker's job span to the span that added the job", async () => {
    const store = new MemoryStore();
    const fixture = startEmailWorker(store);
    const bridge = bridgeToOpenTelemetry(fixture.telemetry, { tracer: provider.getTracer() });
    try {
      const traceparent = '00-11111111111111111111111111111111-2222222222222222-01';
      await fixture.queue.add({ to: 'ok@example.com' }, { trace: { traceparent } });
      await waitFor(() => named('process emails').some((s) => s.ended));
      const [span] = named('process emails');
      expect(trace.getSpanContext(span!.context!)).toMatchObject({
        traceId: '11111111111111111111111111111111',
        spanId: '2222222222222222',
      });
    } finally {
      bridge.unsubscribe();
      await fixture.stop();
      await store.close();
    }
  });

  it('uses the global tracer provider by default, with a real worker', async () => {
    trace.setGlobalTracerProvider(provider);
    const store = new MemoryStore();
    const fixture = startEmailWorker(store);
    const bridge = bridgeToOpenTelemetry(fixture.telemetry);
    try {
      await fixture.queue.addBulk([
        { data: { to: 'ok@example.com' } },
        { data: { to: 'fails@example.com', fail: true } },
      ]);
      await waitFor(() => named('process emails').filter((s) => s.ended).length === 2);
      const spans = named('process emails');
      const failed = spans.find((s) => s.attributes['sluice.outcome'] === 'dead')!;
      const ok = spans.find((s) => s.attributes['sluice.outcome'] === 'completed')!;
      expect(ok.status.code).toBe(SpanStatusCode.UNSET);
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed.exceptions[0]?.exception).toMatchObject({ name: 'PermanentError' });
      for (const span of spans) {
        expect(span.attributes).toMatchObject({
          'messaging.system': 'sluice',
          'messaging.destination.name': 'emails',
          'messaging.operation.type': 'process',
          'messaging.message.id': expect.any(String),
        });
        expect(typeof span.options.startTime).toBe('number');
        expect(span.endTime as number).toBeGreaterThanOrEqual(span.options.startTime as number);
      }
    } finally {
      bridge.unsubscribe();
      await fixture.stop();
      await store.close();
      trace.disable();
    }
  });
});

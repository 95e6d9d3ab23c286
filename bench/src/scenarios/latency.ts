import { sleep } from '../clock';
import { Redis } from 'ioredis';
import { enqueueSteady, openProducer, type Producer } from '../producers';
import type { Measurement, RunContext, Scenario, ScenarioRun } from '../scenario';
import { percentile } from '../stats';
import { WorkerProcess, withWorkers, type System } from '../worker-process';
import { hopKey, type HopDelivery, type HopSpec } from '../workers/hop-worker';

/** How long the started worker sits with an empty queue before the producer begins (it goes idle). */
const IDLE_MS = 1000;

/** What a latency run measures: adds for `warmMs + durationMs`, percentiles of the last `durationMs`. */
interface Window {
  /** Jobs enqueued in the first `warmMs` are left out. */
  readonly warmMs: number;
  readonly durationMs: number;
}

/**
 * The window of the light and busy runs (and the floors): a new worker process's first seconds,
 * `durationMs` of adds of which the first `warmupMs` are left out.
 */
const fresh = (ctx: RunContext): Window => ({
  warmMs: ctx.profile.latency.warmupMs,
  durationMs: ctx.profile.latency.durationMs - ctx.profile.latency.warmupMs,
});

/** The steady run's window: as long as the light run's, after `steadyWarmupMs` at the same rate. */
const steady = (ctx: RunContext): Window => ({
  warmMs: ctx.profile.latency.steadyWarmupMs,
  durationMs: ctx.profile.latency.durationMs - ctx.profile.latency.warmupMs,
});

/**
 * A worker process waits, idle, on an empty queue; the parent adds jobs one at a time at a steady
 * rate, each carrying the producer's clock; the handler subtracts it from its own clock at its start.
 */
async function latency(
  ctx: RunContext,
  system: System,
  perSecond: number,
  window: Window,
): Promise<Measurement> {
  const p = ctx.profile.latency;
  const worker = await WorkerProcess.fork(
    system,
    {
      url: ctx.target.url,
      prefix: ctx.prefix,
      queue: ctx.queue,
      concurrency: p.concurrency,
      mode: { kind: 'single' },
      handler: { kind: 'noop' },
      expect: addsIn(perSecond, window),
      recordLatency: true,
    },
    ctx.cpuProfileDir === undefined ? {} : { cpuProfileDir: ctx.cpuProfileDir },
  );
  return measure(worker, perSecond, window, () =>
    openProducer(system, ctx.target.url, ctx.prefix, ctx.queue),
  );
}

/** Jobs a run adds: the rate over the warm-up and the measured window. */
const addsIn = (perSecond: number, window: Window): number =>
  Math.round((perSecond * (window.warmMs + window.durationMs)) / 1000);

/**
 * The floor of the same measurement on this machine: no job system, one bare command per job from
 * the parent to another process (`workers/hop-worker.ts`) on the same Redis, at the same rate, timed
 * by the same clocks: a `PUBLISH` to a subscriber, or an `RPUSH` to a list the other process waits on
 * with `BLPOP`. Every job start of either system takes at least one such path (an add reaches Redis
 * from one process, a job reaches a worker in another), so neither system's percentiles can be lower
 * than the floor's of the path it takes, whatever its code does.
 */
async function floor(ctx: RunContext, perSecond: number, delivery: HopDelivery): Promise<Measurement> {
  const window = fresh(ctx);
  const spec: HopSpec = {
    url: ctx.target.url,
    prefix: ctx.prefix,
    queue: ctx.queue,
    concurrency: 1,
    mode: { kind: 'single' },
    handler: { kind: 'noop' },
    expect: addsIn(perSecond, window),
    recordLatency: true,
    delivery,
  };
  const worker = await WorkerProcess.fork('sluice', spec, { script: 'hop-worker.js' });
  return measure(worker, perSecond, window, async (): Promise<Producer> => {
    const client = new Redis(ctx.target.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    const key = hopKey(ctx.prefix, ctx.queue);
    return {
      addBulk: () => Promise.reject(new Error('the latency floor adds one at a time')),
      add: async (payload) => {
        const message = JSON.stringify(payload);
        if (delivery === 'publish') await client.publish(key, message);
        else await client.rpush(key, message);
      },
      close: async () => {
        await client.quit();
      },
    };
  });
}

/**
 * Starts `worker` idle, adds at `perSecond` for the window's warm-up and duration, and reads the
 * latencies of the jobs added after the warm-up.
 */
async function measure(
  worker: WorkerProcess,
  perSecond: number,
  window: Window,
  open: () => Promise<Producer>,
): Promise<Measurement> {
  const totalMs = window.warmMs + window.durationMs;
  return withWorkers([worker], async () => {
    const producer = await open();
    try {
      worker.start();
      await sleep(IDLE_MS);
      const produced = await enqueueSteady(producer, perSecond, totalMs);
      const report = await worker.done(totalMs + 60_000);
      await worker.stop();
      const first = report.enqueuedAt.reduce((a, b) => Math.min(a, b), Infinity);
      const measured = report.latencies.filter(
        (_, i) => (report.enqueuedAt[i] ?? 0) >= first + window.warmMs,
      );
      return {
        p50: percentile(measured, 50),
        p95: percentile(measured, 95),
        p99: percentile(measured, 99),
        max: percentile(measured, 100),
        producerRate: produced.rate,
      };
    } finally {
      await producer.close();
    }
  });
}

/** The light run and its variants: `busy` at the busy rate, `steady` after a long warm-up. */
type Variant = 'busy' | 'steady';

/** Both systems' runs of one variant (ids `sluice`, `bullmq`, or `sluice-<variant>`, `bullmq-<variant>`). */
const runsOf = (variant?: Variant): ScenarioRun[] =>
  (['sluice', 'bullmq'] as const).map((system) => ({
    id: variant ? `${system}-${variant}` : system,
    system,
    run: (ctx) => {
      const p = ctx.profile.latency;
      const perSecond = variant === 'busy' ? p.busyPerSecond : p.perSecond;
      return latency(ctx, system, perSecond, variant === 'steady' ? steady(ctx) : fresh(ctx));
    },
  }));

const runs: readonly ScenarioRun[] = [
  ...runsOf(),
  ...runsOf('busy'),
  ...runsOf('steady'),
  { id: 'floor', system: 'sluice', run: (ctx) => floor(ctx, ctx.profile.latency.perSecond, 'publish') },
  { id: 'floor-list', system: 'sluice', run: (ctx) => floor(ctx, ctx.profile.latency.perSecond, 'list') },
];

/**
 * A row of the light run (`latency.<key>`), or of the busy or the steady one
 * (`latency.<key>-busy`, `latency.<key>-steady`).
 */
const row = (key: string, metric: string, run?: Variant) =>
  ({
    id: `latency.${key}${run ? `-${run}` : ''}`,
    metric,
    unit: 'ms',
    better: 'lower',
    sluice: { run: run ? `sluice-${run}` : 'sluice', key },
    bullmq: { run: run ? `bullmq-${run}` : 'bullmq', key },
  }) as const;

/**
 * A row of a floor (no job system) against BullMQ's light run: the ratio says how far below BullMQ's
 * figure this machine lets a system go that delivers a job that way.
 */
const floorRow = (key: string, list = false) =>
  ({
    id: `latency.floor${list ? '-list' : ''}-${key}`,
    metric: list
      ? `floor: a bare RPUSH to a list another process waits on (BLPOP), ${key} (Sluice column; BullMQ column: its enqueue to start)`
      : `floor: a bare PUBLISH to another process, ${key} (Sluice column; BullMQ column: its enqueue to start)`,
    unit: 'ms',
    better: 'lower',
    sluice: { run: list ? 'floor-list' : 'floor', key },
    bullmq: { run: 'bullmq', key },
    note:
      'The floor rows measure no job system: the parent sends each payload with one bare command, a ' +
      '`PUBLISH` to a subscriber or an `RPUSH` to a list waited on with `BLPOP`, to another process, on ' +
      'the same Redis, at the light rate, timed by the same clocks. Every job start takes at least one ' +
      "such path, so a floor's ratio to BullMQ is the lowest ratio a job system delivering that way " +
      'could reach on this machine.',
  }) as const;

export const latencyScenario: Scenario = {
  id: 'latency',
  title: 'Latency',
  describe: (profile) => {
    const p = profile.latency;
    return (
      `One worker process (concurrency ${p.concurrency}, no-op handler) is started on an empty queue and ` +
      `left idle for ${IDLE_MS} ms; then the parent adds ${p.perSecond} jobs/s one at a time (\`Queue.add\`, ` +
      `not awaited before the next is due) for ${p.durationMs / 1000} s; a second run adds ` +
      `${p.busyPerSecond.toLocaleString('en')} jobs/s the same way. Each payload carries the ` +
      `producer's clock (the machine's monotonic clock mapped to epoch ms, \`src/clock.ts\`) read just before its add; the handler ` +
      `reads the same clock when it starts (same machine). Jobs added in the first ${p.warmupMs} ms are ` +
      `left out for both systems. Percentiles by nearest rank; the median over rounds is reported. ` +
      `The floor runs add nothing to a queue: the parent sends each payload with a bare \`PUBLISH\` ` +
      `(floor) or \`RPUSH\` to a list (floor-list) at the light rate, and another process, subscribed ` +
      `or waiting with \`BLPOP\`, reads the clock when it arrives. ` +
      `The steady run is the light run of a long-running worker: it adds at ${p.perSecond} jobs/s for ` +
      `${p.steadyWarmupMs / 1000} s, left out, then measures the next ${(p.durationMs - p.warmupMs) / 1000} s; the ` +
      `light run's window is a new worker process's first seconds, while the JIT still compiles its code.`
    );
  },
  runs,
  rows: [
    row('p50', 'enqueue to start, p50'),
    row('p95', 'enqueue to start, p95'),
    row('p99', 'enqueue to start, p99'),
    row('max', 'enqueue to start, max'),
    {
      id: 'latency.producer-rate',
      metric: 'adds issued by the producer',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice', key: 'producerRate' },
      bullmq: { run: 'bullmq', key: 'producerRate' },
    },
    floorRow('p50'),
    floorRow('p99'),
    floorRow('p50', true),
    floorRow('p99', true),
    row('p50', 'busy: enqueue to start, p50', 'busy'),
    row('p95', 'busy: enqueue to start, p95', 'busy'),
    row('p99', 'busy: enqueue to start, p99', 'busy'),
    row('max', 'busy: enqueue to start, max', 'busy'),
    {
      id: 'latency.producer-rate-busy',
      metric: 'busy: adds issued by the producer',
      unit: 'jobs/s',
      better: 'higher',
      sluice: { run: 'sluice-busy', key: 'producerRate' },
      bullmq: { run: 'bullmq-busy', key: 'producerRate' },
    },
    row('p50', 'steady: enqueue to start, p50', 'steady'),
    row('p95', 'steady: enqueue to start, p95', 'steady'),
    row('p99', 'steady: enqueue to start, p99', 'steady'),
    row('max', 'steady: enqueue to start, max', 'steady'),
  ],
};

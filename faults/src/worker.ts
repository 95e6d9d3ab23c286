/**
 * The fault suite's worker process: one `Worker` with one pipeline on a `RedisStore`, started by a test
 * with `child_process.fork(faults/dist/worker.js, [JSON WorkerProgramConfig])`.
 *
 * Every handler start, abort, end and every acknowledged outcome goes to this process's ledger file
 * (see `protocol.ts`); the test reconciles the ledgers with the store. What a handler does is chosen
 * by the job's payload (`JobData.mode`): complete after a while, throw, hang, exit the process, throw
 * an uncaught exception, or report on a `__proto__` payload.
 *
 * With `holdStart` it connects, reports `connected` and waits for a `start` message before starting the
 * worker (so a test can break Redis in between). On SIGTERM it drains (`worker.close({ timeoutMs: closeTimeoutMs })`), closes the store, reports
 * `closed` and exits 0. It reports its RSS and CPU time every `sampleEveryMs`, and on a `probe`
 * message. It exits when the parent goes away.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  definePipeline,
  fixed,
  JobAbortedError,
  JobTimeoutError,
  Worker,
  type JobContext,
  type Logger,
  type ReservedJob,
} from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { LedgerWriter } from './ledger-writer';
import { countCommands, readConfig, sampleResources, send, toConnection } from './program';
import type { JobData, ParentMessage, ProtoReport, WorkerProgramConfig } from './protocol';

const config = readConfig() as WorkerProgramConfig;
const ledger = new LedgerWriter(
  join(config.ledgerDir, `${config.name}-${String(process.pid)}.log`),
  config.ledgerMode ?? 'sync',
);

const verbose = process.env['FAULTS_LOG'] === '1';
const logTo =
  (level: string) =>
  (message: string, meta?: Record<string, unknown>): void => {
    const text = JSON.stringify(meta ?? {});
    ledger.write({ tag: 'L', level, message, meta: text });
    if (verbose)
      process.stderr.write(`[${config.name} ${String(process.pid)}] ${level} ${message} ${text}\n`);
  };
const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: logTo('warn'),
  error: logTo('error'),
};

function reasonOf(reason: unknown): string {
  if (reason instanceof JobAbortedError) return reason.abortCause;
  if (reason instanceof JobTimeoutError) return 'timeout';
  return reason instanceof Error ? reason.name : String(reason);
}

function payloadOf(job: ReservedJob<JobData>): JobData {
  const data: unknown = job.data;
  return typeof data === 'object' && data !== null ? data : {};
}

function protoReport(data: object): ProtoReport {
  const probe: Record<string, unknown> = {};
  return {
    plainObjectPolluted: String(probe['polluted']),
    prototypeHasPolluted: 'polluted' in Object.prototype,
    ownProtoKey: Object.prototype.hasOwnProperty.call(data, '__proto__'),
    prototypeIntact: Object.getPrototypeOf(data) === Object.prototype,
  };
}

const forever = (): Promise<never> =>
  new Promise<never>(() => {
    // never settles
  });

async function handle(job: ReservedJob<JobData>, { signal }: JobContext): Promise<unknown> {
  ledger.write({ tag: 'S', id: job.id, attempt: job.attempt, at: Date.now() });
  signal.addEventListener(
    'abort',
    () => {
      ledger.write({
        tag: 'X',
        id: job.id,
        attempt: job.attempt,
        at: Date.now(),
        reason: reasonOf(signal.reason),
      });
    },
    { once: true },
  );
  const data = payloadOf(job);
  switch (data.mode) {
    case 'throw':
      throw new Error(`poison job ${job.id} fails on every attempt`);
    case 'hang':
      return forever();
    case 'exit':
      return process.exit(3);
    case 'uncaught':
      setTimeout(() => {
        throw new Error(`uncaught exception from the handler of job ${job.id}`);
      }, 0);
      return forever();
    case 'proto':
      ledger.write({ tag: 'E', id: job.id, attempt: job.attempt, at: Date.now() });
      return protoReport(job.data);
    case 'big':
      ledger.write({ tag: 'E', id: job.id, attempt: job.attempt, at: Date.now() });
      return { bytes: typeof data.blob === 'string' ? data.blob.length : -1 };
    case 'ok':
    case undefined:
    default: {
      const ms = data.ms ?? config.workMs ?? 0;
      if (ms > 0) await sleep(ms, undefined, { signal });
      ledger.write({ tag: 'E', id: job.id, attempt: job.attempt, at: Date.now() });
      return { by: process.pid };
    }
  }
}

async function main(): Promise<void> {
  const store = await RedisStore.connect({
    connection: toConnection(config.connection),
    prefix: config.prefix,
    logger,
    ...(config.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: config.connectTimeoutMs }),
  });
  const commands = countCommands(store.client);
  const pipeline = definePipeline<JobData>({
    queue: config.queue,
    concurrency: config.concurrency,
    leaseMs: config.leaseMs,
    ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
    ...(config.backoffMs === undefined ? {} : { backoff: fixed(config.backoffMs) }),
    handler: handle,
  });
  const worker = new Worker({
    store,
    pipelines: [pipeline],
    logger,
    ...(config.recoverEveryMs === undefined ? {} : { recoverEveryMs: config.recoverEveryMs }),
  });
  worker.outcomes$.subscribe((o) => {
    ledger.write({ tag: 'A', id: o.job.id, outcome: o.kind, at: Date.now(), attempt: o.job.attempt });
  });

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    ledger.write({ tag: 'T', at: Date.now() });
    void (async () => {
      const result = await worker.close({ timeoutMs: config.closeTimeoutMs ?? 5000 });
      ledger.write({ tag: 'C', at: Date.now(), drained: result.drained, abandoned: result.abandoned });
      await store.close();
      ledger.close();
      await send({ type: 'closed', drained: result.drained, abandoned: result.abandoned });
      process.exit(0);
    })();
  });
  process.on('message', (message: unknown) => {
    if ((message as Partial<ParentMessage> | null)?.type === 'probe') {
      void send({ type: 'probe', sample: sampleResources(commands) });
    }
  });
  process.on('disconnect', () => {
    ledger.flush();
    process.exit(0);
  });
  const sampler = setInterval(() => {
    void send({ type: 'sample', sample: sampleResources(commands) });
  }, config.sampleEveryMs ?? 500);
  sampler.unref();

  if (config.holdStart) {
    await new Promise<void>((resolve) => {
      process.on('message', (message: unknown) => {
        if ((message as Partial<ParentMessage> | null)?.type === 'start') resolve();
      });
      void send({ type: 'connected', pid: process.pid });
    });
  }
  worker.start();
  await send({ type: 'ready', pid: process.pid });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  ledger.close();
  process.exit(1);
});

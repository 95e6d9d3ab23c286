import { TestScheduler } from 'rxjs/testing';
import type { Logger, ReservedJob, Store } from '@sluice/core';

/** A TestScheduler whose assertions use Jest's deep equality. */
export function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).toEqual(expected);
  });
}

/** A leased job for operator tests that need no store: attempt 1 of 5, lease token `<id>.1`. */
export function reservedJob<T = string>(
  id: string,
  data: T,
  overrides: Partial<ReservedJob<T>> = {},
): ReservedJob<T> {
  return {
    id,
    queue: 'q',
    name: 'q',
    data,
    attempt: 1,
    maxAttempts: 5,
    priority: 0,
    createdAt: 0,
    runAt: 0,
    lease: { token: `${id}.1`, expiresAt: 30_000, startedAt: 0 },
    ...overrides,
  };
}

/**
 * A `Store` for operator tests: the given methods, and every other one throwing, so a test notices a
 * call it did not expect.
 */
export function stubStore(methods: Partial<Store>): Store {
  const unexpected = (name: string) => (): never => {
    throw new Error(`unexpected store call: ${name}`);
  };
  return {
    kind: 'stub',
    enqueue: unexpected('enqueue'),
    reserve: unexpected('reserve'),
    settle: unexpected('settle'),
    extendLeases: unexpected('extendLeases'),
    recoverExpired: unexpected('recoverExpired'),
    wakeups: unexpected('wakeups'),
    cancellations: unexpected('cancellations'),
    settings: unexpected('settings'),
    events: unexpected('events'),
    queueConfig: unexpected('queueConfig'),
    pause: unexpected('pause'),
    resume: unexpected('resume'),
    setConcurrency: unexpected('setConcurrency'),
    cancel: unexpected('cancel'),
    getJob: unexpected('getJob'),
    listJobs: unexpected('listJobs'),
    retryJobs: unexpected('retryJobs'),
    promoteJob: unexpected('promoteJob'),
    removeJob: unexpected('removeJob'),
    purge: unexpected('purge'),
    stats: unexpected('stats'),
    history: unexpected('history'),
    queues: unexpected('queues'),
    getQueueConfig: unexpected('getQueueConfig'),
    setQueueConfig: unexpected('setQueueConfig'),
    close: unexpected('close'),
    ...methods,
  };
}

/** One call a {@link recordingLogger} received. */
export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly meta: Record<string, unknown> | undefined;
}

/** A logger that keeps every call, in order. */
export function recordingLogger(): { readonly logger: Logger; readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (message: string, meta?: Record<string, unknown>): void => {
      entries.push({ level, message, meta });
    };
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries };
}

export { maxInAnyWindow } from '@sluice/core';

/**
 * Every error Sluice throws on purpose is a {@link SluiceError} with a stable string `code`, so callers
 * can branch on `err.code` without `instanceof` across package copies.
 */
export const ErrorCode = {
  InvalidArgument: 'ERR_SLUICE_INVALID_ARGUMENT',
  InvalidDemand: 'ERR_SLUICE_INVALID_DEMAND',
  PayloadInvalid: 'ERR_SLUICE_PAYLOAD_INVALID',
  PayloadTooLarge: 'ERR_SLUICE_PAYLOAD_TOO_LARGE',
  PayloadNotSerializable: 'ERR_SLUICE_PAYLOAD_NOT_SERIALIZABLE',
  JobTimeout: 'ERR_SLUICE_JOB_TIMEOUT',
  JobAborted: 'ERR_SLUICE_JOB_ABORTED',
  Permanent: 'ERR_SLUICE_PERMANENT',
  StoreClosed: 'ERR_SLUICE_STORE_CLOSED',
  Store: 'ERR_SLUICE_STORE',
  /** A Redis script refused its arguments or answered something that cannot be read. */
  Script: 'ERR_SLUICE_SCRIPT',
  /** `Queue.waitForResult`: the job ended dead or cancelled instead of completing. */
  JobFailed: 'ERR_SLUICE_JOB_FAILED',
  WorkerState: 'ERR_SLUICE_WORKER_STATE',
  Unreachable: 'ERR_SLUICE_UNREACHABLE',
  BufferOverflow: 'ERR_SLUICE_BUFFER_OVERFLOW',
  /** `obliterate` without `force` found jobs of the queue running. Nothing was deleted. */
  QueueBusy: 'ERR_SLUICE_QUEUE_BUSY',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error raised by Sluice. */
export class SluiceError extends Error {
  override name: string = 'SluiceError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A caller passed an argument outside its documented range. */
export class InvalidArgumentError extends SluiceError {
  override name = 'InvalidArgumentError' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidArgument, message, options);
  }
}

/** `request(n)` with `n <= 0` or a non-integer `n` (Reactive Streams rule 3.9). */
export class InvalidDemandError extends SluiceError {
  override name = 'InvalidDemandError' as const;
  readonly requested: number;
  constructor(requested: number) {
    super(ErrorCode.InvalidDemand, `demand must be a positive integer, got ${String(requested)}`);
    this.requested = requested;
  }
}

/** One violation reported by the JSON-schema validator. */
export interface SchemaViolation {
  /** JSON pointer to the offending value, `""` for the root. */
  readonly path: string;
  readonly message: string;
  readonly keyword: string;
}

/** A payload did not match its queue's JSON schema. Nothing was stored. */
export class PayloadValidationError extends SluiceError {
  override name = 'PayloadValidationError' as const;
  readonly queue: string;
  readonly violations: readonly SchemaViolation[];
  constructor(queue: string, violations: readonly SchemaViolation[]) {
    super(
      ErrorCode.PayloadInvalid,
      `payload for queue "${queue}" failed its schema: ${violations
        .map((v) => `${v.path || '/'} ${v.message}`)
        .join('; ')}`,
    );
    this.queue = queue;
    this.violations = violations;
  }
}

/** A payload's JSON encoding is larger than the configured limit. Nothing was stored. */
export class PayloadTooLargeError extends SluiceError {
  override name = 'PayloadTooLargeError' as const;
  readonly queue: string;
  readonly bytes: number;
  readonly limitBytes: number;
  constructor(queue: string, bytes: number, limitBytes: number) {
    super(
      ErrorCode.PayloadTooLarge,
      `payload for queue "${queue}" is ${bytes} bytes, above the limit of ${limitBytes} bytes`,
    );
    this.queue = queue;
    this.bytes = bytes;
    this.limitBytes = limitBytes;
  }
}

/** A payload cannot be encoded as JSON (a cycle, a BigInt, a function, `undefined` at the root). */
export class PayloadNotSerializableError extends SluiceError {
  override name = 'PayloadNotSerializableError' as const;
  readonly queue: string;
  constructor(queue: string, options?: { cause?: unknown }) {
    super(ErrorCode.PayloadNotSerializable, `payload for queue "${queue}" is not JSON-serializable`, options);
    this.queue = queue;
  }
}

/** A handler ran longer than its job's timeout; its `AbortSignal` was fired with this reason. */
export class JobTimeoutError extends SluiceError {
  override name = 'JobTimeoutError' as const;
  readonly jobId: string;
  readonly timeoutMs: number;
  constructor(jobId: string, timeoutMs: number) {
    super(ErrorCode.JobTimeout, `job ${jobId} timed out after ${timeoutMs} ms`);
    this.jobId = jobId;
    this.timeoutMs = timeoutMs;
  }
}

/** Why a running job's `AbortSignal` fired, other than a timeout. */
export type AbortCause = 'cancelled' | 'shutdown' | 'lease-lost';

/** The reason given to a handler's `AbortSignal` when a job is cancelled, shut down or loses its lease. */
export class JobAbortedError extends SluiceError {
  override name = 'JobAbortedError' as const;
  readonly jobId: string;
  readonly abortCause: AbortCause;
  constructor(jobId: string, cause: AbortCause, detail?: string) {
    super(ErrorCode.JobAborted, `job ${jobId} aborted (${cause})${detail ? `: ${detail}` : ''}`);
    this.jobId = jobId;
    this.abortCause = cause;
  }
}

/**
 * Throw this from a handler for a failure that retrying cannot fix (a hard bounce, a 4xx answer):
 * the job goes straight to the dead-letter queue whatever attempts it has left.
 *
 * @example
 * ```ts
 * if (res.status === 400) throw new PermanentError(`provider refused: ${await res.text()}`);
 * ```
 */
export class PermanentError extends SluiceError {
  override name = 'PermanentError' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Permanent, message, options);
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends SluiceError {
  override name = 'StoreClosedError' as const;
  constructor(store: string) {
    super(ErrorCode.StoreClosed, `${store} is closed`);
  }
}

/** A store operation failed (connection refused, script error, malformed reply). */
export class StoreError extends SluiceError {
  override name = 'StoreError' as const;
  readonly queue: string | undefined;
  constructor(message: string, options?: { cause?: unknown; queue?: string }) {
    super(ErrorCode.Store, message, options);
    this.queue = options?.queue;
  }
}

/**
 * `obliterate` refused: jobs of the queue are running (leased to workers) and `force` was not given.
 * Nothing was deleted.
 */
export class QueueBusyError extends SluiceError {
  override name = 'QueueBusyError' as const;
  readonly queue: string;
  /** Jobs of the queue running when it refused. */
  readonly running: number;
  constructor(queue: string, running: number) {
    super(
      ErrorCode.QueueBusy,
      `queue "${queue}" has ${running} running job${running === 1 ? '' : 's'}: nothing was deleted ` +
        '(stop its workers first, or force it: running jobs then lose their leases)',
    );
    this.queue = queue;
    this.running = running;
  }
}

/** A worker method was called in a state that does not allow it (`start()` twice, `start()` after close). */
export class WorkerStateError extends SluiceError {
  override name = 'WorkerStateError' as const;
  constructor(message: string) {
    super(ErrorCode.WorkerState, message);
  }
}

/** Ends an exhaustive `switch`: the compiler proves the default branch unreachable. */
export class UnreachableCaseError extends SluiceError {
  override name = 'UnreachableCaseError' as const;
  constructor(value: never) {
    super(ErrorCode.Unreachable, `unreachable case: ${JSON.stringify(value)}`);
  }
}

/** A plain, serialisable description of an error, as stored with a job's attempts. */
export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
}

/** Turns anything thrown into an {@link ErrorInfo}. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      ...(error.stack === undefined ? {} : { stack: error.stack }),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'NonError', message: typeof error === 'string' ? error : safeStringify(error) };
}

/** `JSON.stringify` as it really behaves: `undefined` for `undefined`, functions and symbols. */
const stringify = JSON.stringify as (value: unknown) => string | undefined;

function safeStringify(value: unknown): string {
  try {
    return stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A bounded buffer of a concurrency stage (`processJobs`, `processBatches`, `adaptiveBatches`,
 * `adaptiveBatch`) received an item while `maxBuffered` items were already waiting and its overflow
 * policy is `'error'`. Inside a pipeline the bound is the in-flight budget, so this means a broken
 * invariant; on its own, the bound does not fit the load (raise `maxBuffered`, add concurrency, or
 * choose a dropping overflow).
 */
export class BufferOverflowError extends SluiceError {
  override name = 'BufferOverflowError' as const;
  /** The operator whose buffer overflowed. */
  readonly operator: string;
  /** The bound that was exceeded. */
  readonly maxBuffered: number;
  constructor(operator: string, maxBuffered: number) {
    super(
      ErrorCode.BufferOverflow,
      `${operator}: ${maxBuffered} items already buffered while every slot was busy (overflow: 'error')`,
    );
    this.operator = operator;
    this.maxBuffered = maxBuffered;
  }
}

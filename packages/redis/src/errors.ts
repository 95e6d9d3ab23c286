import { ErrorCode, SluiceError, StoreError } from '@sluice/core';

/** Negative codes a Lua script returns instead of a result. Each script header lists the ones it uses. */
export const ScriptErrorCode = {
  /** The script did not understand its arguments: a client of another version called it. */
  BadArguments: -2,
} as const;
export type ScriptErrorCode = (typeof ScriptErrorCode)[keyof typeof ScriptErrorCode];

/**
 * A Lua script refused its call (it returned `-2`: malformed arguments, or an unknown negative code),
 * answered something its header does not document (a malformed reply), or could not be loaded or
 * called as this package expects. Code `ERR_SLUICE_SCRIPT`: a version mismatch or a bug, not an outage
 * (connection failures are `StoreError`s).
 */
export class RedisScriptError extends SluiceError {
  override name = 'RedisScriptError' as const;
  /** The script: its versioned name (`sluice:reserve:1a2b3c4d5e6f`) once loaded, else its file or name. */
  readonly script: string;
  readonly queue: string | undefined;
  /** The negative code the script returned, if it returned one. */
  readonly scriptCode: number | undefined;
  constructor(
    script: string,
    message: string,
    options: { queue?: string; scriptCode?: number; cause?: unknown } = {},
  ) {
    super(
      ErrorCode.Script,
      `${script}: ${message}`,
      'cause' in options ? { cause: options.cause } : undefined,
    );
    this.script = script;
    this.queue = options.queue;
    this.scriptCode = options.scriptCode;
  }
}

/**
 * An add was written on its master but fewer replicas than `durableAdds.replicas` acknowledged it
 * within `durableAdds.timeoutMs` (`WAIT`): the jobs exist, but a failover now could lose them. Adding
 * them again with the same ids (or unique keys) is answered as a duplicate where they survived.
 */
export class NotReplicatedError extends StoreError {
  /** Replicas that acknowledged the write in time. */
  readonly acknowledged: number;
  /** Replicas asked for. */
  readonly wanted: number;
  /** Ids of the jobs the call added (or found already there), in the order given. */
  readonly ids: readonly string[];
  constructor(
    queue: string,
    acknowledged: number,
    wanted: number,
    timeoutMs: number,
    ids: readonly string[],
  ) {
    super(
      `redis: ${ids.length} job(s) added to "${queue}" but acknowledged by ${acknowledged} of ${wanted} replica(s) within ${timeoutMs} ms; a failover now could lose them`,
      { queue },
    );
    this.acknowledged = acknowledged;
    this.wanted = wanted;
    this.ids = ids;
  }
}

/** What a script call was about, for error messages. */
export interface ScriptContext {
  readonly script: string;
  readonly queue: string;
  readonly limit?: { readonly key: string; readonly allowed: number; readonly periodMs: number };
}

/** The one place negative Lua codes become errors. */
export function scriptError(code: number, context: ScriptContext): SluiceError {
  switch (code) {
    case ScriptErrorCode.BadArguments:
      return new RedisScriptError(
        context.script,
        'the script refused its arguments (are two versions of @sluice/redis sharing scripts?)',
        { queue: context.queue, scriptCode: code },
      );
  }
  return new RedisScriptError(context.script, `unknown error code ${code}`, {
    queue: context.queue,
    scriptCode: code,
  });
}

/** Errors of our own pass through; anything else (connection, protocol) becomes a `StoreError`. */
export function toStoreError(error: unknown, queue?: string): SluiceError {
  if (error instanceof SluiceError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StoreError(`redis: ${message}`, { cause: error, ...(queue === undefined ? {} : { queue }) });
}

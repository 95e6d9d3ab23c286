import { connect } from 'node:net';

/**
 * A tiny one-shot RESP2 client used by the harness itself (readiness probes, CLUSTER INFO) so that
 * probing a server that is not up yet does not go through a client library's reconnect logic.
 */

export type RespValue = string | number | null | RespError | RespValue[];

export class RespError extends Error {
  override readonly name = 'RespError';
}

const INCOMPLETE: unique symbol = Symbol('incomplete');
type Incomplete = typeof INCOMPLETE;

function encode(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

/** Parses one reply starting at `offset`; returns it and the offset after it, or INCOMPLETE. */
function parse(buffer: Buffer, offset: number): [RespValue, number] | Incomplete {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd === -1) return INCOMPLETE;
  const type = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return [line, next];
    case '-':
      return [new RespError(line), next];
    case ':':
      return [Number(line), next];
    case '$': {
      const length = Number(line);
      if (length < 0) return [null, next];
      if (buffer.length < next + length + 2) return INCOMPLETE;
      return [buffer.toString('utf8', next, next + length), next + length + 2];
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: RespValue[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, position);
        if (item === INCOMPLETE) return INCOMPLETE;
        items.push(item[0]);
        position = item[1];
      }
      return [items, position];
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/**
 * Connects to `host:port`, sends `commands` pipelined, resolves with one reply per command (error
 * replies are returned as `RespError` values, not thrown) and closes the connection. Rejects on
 * connection errors and when no full answer arrived within `timeoutMs`.
 */
export function sendCommands(
  host: string,
  port: number,
  commands: readonly (readonly string[])[],
  timeoutMs = 1_000,
): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffer = Buffer.alloc(0);
    const finish = (error: Error | undefined, replies?: RespValue[]): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      if (error) reject(error);
      else resolve(replies ?? []);
    };
    const timer = setTimeout(() => {
      finish(new Error(`no answer from redis at ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      socket.write(commands.map(encode).join(''));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const replies: RespValue[] = [];
      let offset = 0;
      try {
        while (replies.length < commands.length) {
          const parsed = parse(buffer, offset);
          if (parsed === INCOMPLETE) return;
          replies.push(parsed[0]);
          offset = parsed[1];
        }
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      finish(undefined, replies);
    });
    socket.on('error', (error) => {
      finish(error);
    });
    socket.on('close', () => {
      finish(new Error(`redis at ${host}:${port} closed the connection`));
    });
  });
}

/** `sendCommands` for a single command. */
export async function sendCommand(
  host: string,
  port: number,
  args: readonly string[],
  timeoutMs?: number,
): Promise<RespValue> {
  const [reply] = await sendCommands(host, port, [args], timeoutMs);
  return reply ?? null;
}

import { Redis } from 'ioredis';
import { StoreError, type Store } from '@sluice/core';
import { deleteKeysWithPrefix } from './delete-prefix';
import { RedisStore } from './redis-store';

/** How long {@link openDemoStore} waits for Redis before giving up. */
const CONNECT_BUDGET_MS = 1500;

/**
 * Opens a {@link RedisStore} for a short-lived program (the demo, a script): it rejects within about
 * 1.5 s when no Redis answers at `url`, leaving no timer or reconnect loop behind, and `dispose()`
 * deletes every key under `prefix` and closes the connections.
 *
 * ## Example
 * ```ts
 * const { store, dispose } = await openDemoStore('redis://127.0.0.1:6379', `demo:${Date.now()}`);
 * try {
 *   await new Queue(store, 'emails').add({ to: 'ada@example.com' });
 * } finally {
 *   await dispose();
 * }
 * ```
 */
export async function openDemoStore(
  url: string,
  prefix: string,
): Promise<{ store: Store; readonly dispose: () => Promise<void> }> {
  const client = new Redis(url, {
    protocol: 2, // as the store's own connections (see connection.ts)
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    // No reconnect loop while we do not know whether anyone answers.
    retryStrategy: () => null,
    // The PING below is the check; ioredis' own ready check would re-arm a 2 s disconnect timer when
    // it fails on a connection we are abandoning.
    enableReadyCheck: false,
  });
  // The call's own error ("Connection is closed.") hides the cause; the connection saw it.
  let connectionError: Error | undefined;
  client.on('error', (error: unknown) => {
    connectionError ??= error instanceof Error ? error : new Error(String(error));
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new StoreError(`no answer within ${CONNECT_BUDGET_MS} ms`));
        }, CONNECT_BUDGET_MS);
        timer.unref();
      }),
    ]);
  } catch (error) {
    client.disconnect();
    // disconnect() half-closes and waits up to 2 s for the peer; a peer that never answers gets none.
    (client.stream as typeof client.stream | undefined)?.destroy();
    const cause = connectionError ?? error;
    throw new StoreError(`could not reach Redis: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  // Connected: from now on behave like a long-lived client and reconnect after a blip.
  client.options.retryStrategy = (times: number) => Math.min(times * 50, 2000);
  const store = new RedisStore({ connection: client, prefix });
  try {
    await store.ready();
  } catch (error) {
    await store.close();
    client.disconnect();
    throw error;
  }
  let disposed: Promise<void> | undefined;
  return {
    store,
    dispose: () => {
      disposed ??= (async () => {
        try {
          await store.close();
          await deleteKeysWithPrefix(client, store.keys.prefix);
        } finally {
          await client.quit().catch(() => undefined);
          client.disconnect();
        }
      })();
      return disposed;
    },
  };
}

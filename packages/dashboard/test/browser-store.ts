import type { Store } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix } from '@sluice/testing';

export interface BrowserTestStore {
  readonly store: Store;
  /** Closes the store and deletes every key it wrote. */
  cleanup(): Promise<void>;
}

/**
 * The store the browser tests run on: a `RedisStore` on the test Redis under a fresh key prefix.
 * To run them on the in-memory store instead, return `{ store: new MemoryStore(), cleanup: … }` here;
 * nothing else changes.
 */
export async function createBrowserTestStore(redisUrl: string): Promise<BrowserTestStore> {
  const store = await RedisStore.connect({ url: redisUrl, prefix: uniquePrefix('dashboard-ui') });
  return {
    store,
    cleanup: async () => {
      await deleteKeysWithPrefix(store.client, store.keys.prefix);
      await store.close();
    },
  };
}

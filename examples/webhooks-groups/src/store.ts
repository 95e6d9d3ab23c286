import { MemoryStore, type Store } from '@sluice/core';
import { openDemoStore } from '@sluice/redis';

export interface OpenedStore {
  readonly store: Store;
  /** What the store is, for the program's first line of output. */
  readonly name: string;
  /** Deletes what this run wrote and closes the store. */
  readonly dispose: () => Promise<void>;
}

/**
 * Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`) under a fresh key prefix, or, when no Redis
 * answers within about 1.5 s, the in-memory store: the same API in one process, nothing durable.
 */
export async function openStore(example: string): Promise<OpenedStore> {
  const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  try {
    const redis = await openDemoStore(url, `sluice-examples:${example}:${Date.now().toString(36)}`);
    return { store: redis.store, name: `Redis at ${url}`, dispose: () => redis.dispose() };
  } catch (error) {
    console.log(`No Redis answered at ${url} (${error instanceof Error ? error.message : String(error)}).`);
    console.log(
      'Falling back to the in-memory store (one process, nothing durable); set REDIS_URL to use a Redis.',
    );
    const store = new MemoryStore();
    return { store, name: 'the in-memory store', dispose: () => store.close() };
  }
}

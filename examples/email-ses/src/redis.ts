import { openDemoStore } from '@sluice/redis';

/**
 * Opens Redis at `url` with every key under `prefix` (`dispose()` deletes them), or exits with a
 * clear message when nothing answers: this example's processes share their queues through Redis,
 * so there is no in-memory fallback.
 */
export async function openRedisOrExit(url: string, prefix: string): ReturnType<typeof openDemoStore> {
  try {
    return await openDemoStore(url, prefix);
  } catch (error) {
    console.error(`No Redis answered at ${url} (${error instanceof Error ? error.message : String(error)}).`);
    console.error(
      'Start one (`docker run -p 6379:6379 redis:7` or `redis-server`), or set REDIS_URL to one.',
    );
    process.exit(1);
  }
}

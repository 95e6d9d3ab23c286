import { firstValueFrom } from 'rxjs';
import type { Store } from '@sluice/core';

/**
 * Resolves once the pub/sub subscriptions a test made on `queue` of `store` are in place, so a
 * message published next reaches them (a fixed sleep was a guess, and a loaded machine outran it).
 * The settings stream gives its first value only once its own subscription is confirmed (the Redis
 * store reads the settings after that, so no change in between is missed), and the channels of one
 * queue share a subscriber connection (on a Cluster, their slot's), whose subscriptions are confirmed
 * in the order they were made. A store without pub/sub answers at once.
 */
export async function subscribed(store: Store, queue: string): Promise<void> {
  await firstValueFrom(store.settings(queue));
}

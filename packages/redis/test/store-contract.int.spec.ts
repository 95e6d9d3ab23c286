import { defineStoreContract } from '@sluice/testing';
import { storeFixture, useRedisWithAdmin } from './helpers';

/**
 * The behavioural suite every store passes, on one Redis node. The suite's durations are literal
 * milliseconds in the "must still be pending" direction (a 100 ms lease must not have expired before
 * the next call), so scaling them up would not make those steps safer; and the "must have happened"
 * waits already hold at scale 1, because the store's clock has millisecond resolution and a sleep
 * never ends early.
 */
describe('RedisStore on one node', () => {
  const redis = useRedisWithAdmin();
  defineStoreContract('RedisStore', () => storeFixture(redis.admin, { url: redis.url }, 'contract'), {
    timeScale: 1,
  });
});

import { definePartitionContract } from '@sluice/testing';
import { storeFixture, useRedisWithAdmin } from './helpers';

describe('partitioned queues on one Redis node', () => {
  const redis = useRedisWithAdmin();
  definePartitionContract('RedisStore', () => storeFixture(redis.admin, { url: redis.url }, 'partitions'));
});

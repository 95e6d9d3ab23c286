import { useCleanup } from './support/harness';
import { redisRestartScenario } from './scenarios/redis-restart';

describe('Redis restart', () => {
  useCleanup();
  const common = {
    jobs: 20_000,
    produced: 5000,
    workers: 3,
    concurrency: 10,
    workMs: 2,
    leaseMs: 3000,
    downMs: 1000,
    record: true,
    timeoutMs: 180_000,
  };
  redisRestartScenario({ ...common, appendfsync: 'always' });
  redisRestartScenario({ ...common, appendfsync: 'everysec' });
});

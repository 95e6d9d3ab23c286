import { useCleanup } from './support/harness';
import { redisRestartScenario } from './scenarios/redis-restart';

describe('Redis restart (CI subset)', () => {
  useCleanup();
  redisRestartScenario({
    appendfsync: 'always',
    jobs: 4000,
    produced: 1000,
    workers: 2,
    concurrency: 10,
    workMs: 2,
    leaseMs: 3000,
    downMs: 1000,
    record: false,
    timeoutMs: 90_000,
  });
});

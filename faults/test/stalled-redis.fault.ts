import { useCleanup } from './support/harness';
import { stalledRedisScenario } from './scenarios/stalled-redis';

describe('stalled Redis', () => {
  useCleanup();
  stalledRedisScenario({
    jobs: 10_000,
    workers: 4,
    concurrency: 10,
    workMs: 20,
    leaseMs: 2000,
    stallMs: 6000,
    record: true,
    timeoutMs: 120_000,
  });
});

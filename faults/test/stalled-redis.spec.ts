import { useCleanup } from './support/harness';
import { stalledRedisScenario } from './scenarios/stalled-redis';

describe('stalled Redis (CI subset)', () => {
  useCleanup();
  stalledRedisScenario({
    jobs: 3000,
    workers: 3,
    concurrency: 10,
    workMs: 20,
    leaseMs: 1500,
    stallMs: 4000,
    record: false,
    timeoutMs: 60_000,
  });
});

import { useCleanup } from './support/harness';
import { drainReserveInFlightScenario, drainTimeoutScenario, gracefulDrainScenario } from './scenarios/drain';

describe('graceful drain', () => {
  useCleanup();
  gracefulDrainScenario({
    rounds: 8,
    jobs: 20_000,
    concurrency: 8,
    closeTimeoutMs: 5000,
    record: true,
    timeoutMs: 120_000,
  });
  drainReserveInFlightScenario({ jobs: 5, record: false, timeoutMs: 60_000 });
  drainTimeoutScenario({
    slowJobs: 5,
    otherJobs: 200,
    closeTimeoutMs: 2000,
    leaseMs: 3000,
    record: true,
    timeoutMs: 60_000,
  });
});

import { useCleanup } from './support/harness';
import { drainReserveInFlightScenario, drainTimeoutScenario, gracefulDrainScenario } from './scenarios/drain';

describe('graceful drain (CI subset)', () => {
  useCleanup();
  gracefulDrainScenario({
    rounds: 3,
    jobs: 6000,
    concurrency: 8,
    closeTimeoutMs: 5000,
    record: false,
    timeoutMs: 60_000,
  });
  drainReserveInFlightScenario({ jobs: 5, record: false, timeoutMs: 60_000 });
  drainTimeoutScenario({
    slowJobs: 3,
    otherJobs: 20,
    closeTimeoutMs: 1000,
    leaseMs: 2000,
    record: false,
    timeoutMs: 60_000,
  });
});

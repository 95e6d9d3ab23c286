import { useCleanup } from './support/harness';
import { poisonScenario, storedSchemaOutageScenario } from './scenarios/poison';

describe('poison jobs and bad data (CI subset)', () => {
  useCleanup();
  poisonScenario({
    normalJobs: 300,
    workers: 2,
    concurrency: 5,
    leaseMs: 1500,
    mainLeaseMs: 6000,
    record: false,
    timeoutMs: 90_000,
  });
  storedSchemaOutageScenario({ timeoutMs: 60_000 });
});

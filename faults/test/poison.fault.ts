import { useCleanup } from './support/harness';
import { poisonScenario, storedSchemaOutageScenario } from './scenarios/poison';

describe('poison jobs and bad data', () => {
  useCleanup();
  poisonScenario({
    normalJobs: 2000,
    workers: 2,
    concurrency: 10,
    leaseMs: 1500,
    mainLeaseMs: 6000,
    record: true,
    timeoutMs: 120_000,
  });
  storedSchemaOutageScenario({ timeoutMs: 60_000 });
});

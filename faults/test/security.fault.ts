import { useCleanup } from './support/harness';
import { aclScenario, tlsScenario } from './scenarios/security';

describe('security', () => {
  useCleanup();
  aclScenario({ jobs: 5000, workers: 2, record: true, timeoutMs: 60_000 });
  tlsScenario({ jobs: 5000, workers: 2, record: true, timeoutMs: 60_000 });
});

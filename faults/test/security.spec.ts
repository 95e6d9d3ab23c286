import { useCleanup } from './support/harness';
import { aclScenario, tlsScenario } from './scenarios/security';

describe('security (CI subset)', () => {
  useCleanup();
  aclScenario({ jobs: 500, workers: 2, record: false, timeoutMs: 60_000 });
  tlsScenario({ jobs: 500, workers: 2, record: false, timeoutMs: 60_000 });
});

import { useCleanup } from './support/harness';
import { loadScenario } from './scenarios/load';

describe('load (CI subset)', () => {
  useCleanup();
  loadScenario({
    jobs: 100_000,
    workers: 4,
    concurrency: 100,
    rssBoundMiB: 300,
    record: false,
    timeoutMs: 120_000,
  });
});

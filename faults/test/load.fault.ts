import { useCleanup } from './support/harness';
import { loadScenario } from './scenarios/load';

describe('load', () => {
  useCleanup();
  loadScenario({
    jobs: 1_000_000,
    workers: 4,
    concurrency: 100,
    rssBoundMiB: 300,
    record: true,
    timeoutMs: 600_000,
  });
});

import { useCleanup } from './support/harness';
import { fuzzScenario } from './scenarios/fuzz';

describe('fuzz of Queue.add and the schema', () => {
  useCleanup();
  fuzzScenario({ runs: 3000, bulkRuns: 500, record: true, timeoutMs: 300_000 });
});

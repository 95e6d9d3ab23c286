import { useCleanup } from './support/harness';
import { fuzzScenario } from './scenarios/fuzz';

describe('fuzz of Queue.add and the schema (CI subset)', () => {
  useCleanup();
  fuzzScenario({ runs: 300, bulkRuns: 100, record: false, timeoutMs: 60_000 });
});

import { useCleanup } from './support/harness';
import { workerCrashScenario } from './scenarios/worker-crashes';

const params = {
  jobs: 3000,
  workers: 3,
  concurrency: 10,
  kills: 3,
  workMs: 40,
  leaseMs: 2000,
  record: false,
  timeoutMs: 60_000,
};

describe('worker crashes (CI subset)', () => {
  useCleanup();
  workerCrashScenario(params);
});

describe('worker crashes on a 3-master Redis Cluster (CI subset)', () => {
  useCleanup();
  workerCrashScenario({ ...params, cluster: true });
});

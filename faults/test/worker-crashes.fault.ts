import { useCleanup } from './support/harness';
import { workerCrashScenario } from './scenarios/worker-crashes';

const params = {
  jobs: 20_000,
  workers: 4,
  concurrency: 10,
  kills: 10,
  workMs: 40,
  leaseMs: 2000,
  record: true,
  timeoutMs: 180_000,
};

describe('worker crashes', () => {
  useCleanup();
  workerCrashScenario(params);
});

describe('worker crashes on a 3-master Redis Cluster', () => {
  useCleanup();
  workerCrashScenario({ ...params, cluster: true });
});

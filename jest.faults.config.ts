import type { Config } from 'jest';

/**
 * The fault, load and bad-input suite (`faults/`): real `redis-server` processes and real worker
 * processes on loopback, faults injected, then every job reconciled with the store.
 *
 * - `faults/test/*.fault.ts`: the full scenarios (`npm run test:faults`); they write `faults/RESULTS.md`.
 * - `faults/test/*.spec.ts`: a shorter subset of the same scenarios, for `npm test`.
 *
 * Transform and module mapping are those of `jest.config.ts`. The global setup builds the workspace
 * as that one does (skipped with `SLUICE_SKIP_BUILD=1`) and then always builds `faults/` (incremental:
 * a second or two when nothing changed), because the worker processes run from `faults/dist`.
 * One test file at a time: each scenario loads both cores with its own Redis and workers.
 */
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/faults'],
  testMatch: ['<rootDir>/faults/test/**/*.spec.ts', '<rootDir>/faults/test/**/*.fault.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleNameMapper: {
    '^@sluice/(core|testing|redis|dashboard|cli)$': '<rootDir>/packages/$1/src/index.ts',
    '^@sluice/core/internal$': '<rootDir>/packages/core/src/internal.ts',
  },
  globalSetup: '<rootDir>/faults/test/global-setup.ts',
  testTimeout: 600_000,
  maxWorkers: 1,
};

export default config;

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from 'jest';

/**
 * One Jest run covers every workspace. Tests import packages by their published names
 * (`@sluice/core`), mapped here to the TypeScript sources so no build is needed to run them;
 * `npm test` still type-checks and builds everything first.
 *
 * - `*.spec.ts` are unit and marble tests (no network).
 * - `*.int.spec.ts` talk to a real Redis found or started by `@sluice/testing`.
 */
const config: Config = {
  testEnvironment: 'node',
  // Folders that hold tests; a checkout may not have all of them yet.
  roots: ['packages', 'examples', 'bench', 'faults']
    .filter((d) => existsSync(join(__dirname, d)))
    .map((d) => `<rootDir>/${d}`),
  testMatch: ['**/test/**/*.spec.ts'],
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
    '^@sluice/(core|testing|redis|opentelemetry|dashboard|cli)$': '<rootDir>/packages/$1/src/index.ts',
    '^@sluice/core/internal$': '<rootDir>/packages/core/src/internal.ts',
  },
  globalSetup: '<rootDir>/jest.global-setup.ts',
  testTimeout: 30_000,
  // CI machines have two cores; integration tests spawn their own Redis servers and workers.
  maxWorkers: process.env['CI'] ? 2 : '50%',
};

export default config;

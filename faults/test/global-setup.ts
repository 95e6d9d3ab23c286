import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import buildWorkspace from '../../jest.global-setup';

/**
 * Builds what the fault suite runs: the workspace as `jest.global-setup.ts` does (skipped with
 * `SLUICE_SKIP_BUILD=1`, when `npm run test:faults` has just run `tsc --build`), then `faults/` itself,
 * always, since the root solution does not build it and its worker programs run from `faults/dist`.
 */
export default function globalSetup(): void {
  buildWorkspace();
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-b', join(__dirname, '..', 'tsconfig.json')],
    {
      cwd: join(__dirname, '..', '..'),
      stdio: 'inherit',
    },
  );
}

import { execFileSync } from 'node:child_process';

/**
 * Builds the workspace (`tsc --build`, incremental: a second or two when nothing changed) before any
 * test runs, because integration tests start real worker processes from the compiled packages.
 * `npm test` has already built; set `SLUICE_SKIP_BUILD=1` to skip it when running Jest by hand.
 */
export default function globalSetup(): void {
  if (process.env['SLUICE_SKIP_BUILD'] === '1') return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--build'], {
    cwd: __dirname,
    stdio: 'inherit',
  });
}

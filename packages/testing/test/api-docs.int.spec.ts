import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const REPO_ROOT = resolve(__dirname, '../../..');

/** `npm run docs` builds the API reference from the TSDoc; this converts every package the same way. */
describe('the API reference (TypeDoc)', () => {
  it('converts every package without errors', async () => {
    const { code, output } = await new Promise<{ code: number; output: string }>((done) => {
      execFile(
        process.execPath,
        [resolve(REPO_ROOT, 'node_modules/typedoc/bin/typedoc'), '--emit', 'none'],
        { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
        (error, stdout, stderr) => {
          done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        },
      );
    });
    expect({ code, errors: output.split('\n').filter((l) => /\[error\]/.test(l)) }).toEqual({
      code: 0,
      errors: [],
    });
    for (const name of ['core', 'redis', 'testing', 'opentelemetry', 'dashboard', 'cli']) {
      expect(output).toContain(`Converting project at ./packages/${name}`);
    }
    expect(output).toMatch(/Found 0 errors/);
  }, 180_000);
});

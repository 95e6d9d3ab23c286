/**
 * Summarises the V8 CPU profiles written by `npm run bench -- --cpu-prof DIR`: for each worker
 * process, only the measured span (from `start` to the last expected job), how much of it the process
 * was idle, in GC, and where the rest went, by function and by package.
 *
 * ```
 * node bench/dist/profile-summary.js DIR/throughput-sluice-1 [--top 25]
 * ```
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface Window {
  readonly pid: number;
  readonly fromUs: number;
  readonly toUs: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly spanMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly functions: readonly { readonly name: string; readonly ms: number }[];
  readonly packages: readonly { readonly name: string; readonly ms: number }[];
}

/** `node_modules/<pkg>` or `packages/<pkg>` or `bench`, `node:internal`, `(native)`. */
function packageOf(url: string): string {
  if (url === '') return '(native / V8)';
  if (url.startsWith('node:')) return 'node (internals)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1]) return nm[1];
  const pkg = /\/packages\/([^/]+)\//.exec(url);
  if (pkg?.[1]) return `@sluice/${pkg[1]}`;
  if (url.includes('/bench/')) return 'bench';
  return url;
}

function shortUrl(url: string): string {
  const i = url.search(/(node_modules|packages|bench)\//);
  return i >= 0 ? url.slice(i) : url;
}

/** Self time per function and per package within `[fromUs, toUs]` (the whole profile without a window). */
export function summarise(file: string, profile: CpuProfile, window?: Window, top = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let t = profile.startTime;
  let span = 0;
  let idle = 0;
  let gc = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.fromUs || t > window.toUs)) return;
    span += delta;
    const frame = byId.get(id)?.callFrame;
    const name = frame?.functionName ?? '?';
    if (name === '(idle)') {
      idle += delta;
      return;
    }
    if (name === '(garbage collector)') gc += delta;
    const key = `${name || '(anonymous)'} ${frame ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + delta);
    const p = frame ? packageOf(frame.url) : '?';
    pkg.set(p, (pkg.get(p) ?? 0) + delta);
  });
  const sorted = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000 }));
  return {
    file,
    spanMs: span / 1000,
    idleMs: idle / 1000,
    gcMs: gc / 1000,
    functions: sorted(fn),
    packages: sorted(pkg),
  };
}

function summariseDir(dir: string, top: number): ProfileSummary[] {
  const files = readdirSync(dir);
  return files
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => {
      const profile = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
      const pid = f.split('.')[3];
      const windowFile = files.find((w) => w === `window-${pid ?? ''}.json`);
      const window = windowFile
        ? (JSON.parse(readFileSync(join(dir, windowFile), 'utf8')) as Window)
        : undefined;
      return summarise(join(dir, f), profile, window, top);
    });
}

function print(s: ProfileSummary): void {
  const pct = (ms: number): string => `${((100 * ms) / Math.max(1e-9, s.spanMs)).toFixed(1)}%`;
  const lines = [
    s.file,
    `  span ${s.spanMs.toFixed(0)} ms: idle ${s.idleMs.toFixed(0)} ms (${pct(s.idleMs)}), ` +
      `busy ${(s.spanMs - s.idleMs).toFixed(0)} ms, GC ${s.gcMs.toFixed(0)} ms (${pct(s.gcMs)})`,
    '  self time by package:',
    ...s.packages.map((p) => `    ${p.ms.toFixed(1).padStart(8)} ms ${pct(p.ms).padStart(6)}  ${p.name}`),
    '  self time by function:',
    ...s.functions.map((f) => `    ${f.ms.toFixed(1).padStart(8)} ms ${pct(f.ms).padStart(6)}  ${f.name}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 20;
  const dirs = args.filter((a, i) => !a.startsWith('--') && i !== topIndex + 1);
  if (dirs.length === 0) {
    process.stderr.write('usage: node bench/dist/profile-summary.js DIR... [--top N]\n');
    process.exit(2);
  }
  for (const d of dirs) {
    const dir = statSync(d).isDirectory() ? d : join(d, '..');
    for (const s of summariseDir(dir, top)) print(s);
  }
}

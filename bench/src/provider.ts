import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';

/**
 * How the provider process is scheduled: `real-time` (`SCHED_FIFO`: it runs as soon as a call
 * arrives), `higher` (nice −10: it runs before the workers when both wait for a core) or `normal`
 * (neither was permitted).
 */
export type ProviderPriority = 'real-time' | 'higher' | 'normal';

/**
 * A stand-in for a rate-limited third-party API (`workers/provider.ts`, a process of its own):
 * every handler of the rate-limit scenario POSTs to it once, and it timestamps each arrival on the
 * shared clock, as a provider counting calls would. It accepts every call, so both systems are
 * measured as they send, not as a provider would throttle them.
 *
 * A real provider has cores of its own; this one shares the machine's with the workers, Redis and
 * the producer, and would stamp a call when it next gets a core rather than when the call came. It
 * runs ahead of them where this process may set that (`priority`): real-time scheduling (`chrt`),
 * else nice −10. `BENCH_PROVIDER_PRIORITY=higher` or `normal` holds it at most there.
 */
export class Provider {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly priority: ProviderPriority,
  ) {}

  static async start(): Promise<Provider> {
    const child = fork(join(__dirname, 'workers', 'provider.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const most = process.env['BENCH_PROVIDER_PRIORITY'] ?? 'real-time';
    let priority: ProviderPriority = 'normal';
    if (child.pid !== undefined && most !== 'normal') {
      try {
        setPriority(child.pid, -10);
        priority = 'higher';
      } catch {
        // not permitted: normal priority
      }
      if (most === 'real-time') {
        const chrt = spawnSync('chrt', ['--fifo', '--pid', '10', String(child.pid)], { stdio: 'ignore' });
        if (chrt.status === 0) priority = 'real-time';
      }
    }
    const url = await new Promise<string>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => {
        reject(new Error(`provider exited (${code}) before it was ready`));
      });
      child.once('message', (m: { url: string }) => {
        resolve(m.url);
      });
    });
    child.removeAllListeners('exit');
    return new Provider(child, url, priority);
  }

  /** Stops the provider and resolves to its arrival times, in order. */
  close(): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('exit', (code) => {
        reject(new Error(`provider exited (${code}) before it reported its arrivals`));
      });
      this.child.once('message', (m: { arrivals: number[] }) => {
        this.child.removeAllListeners('exit');
        this.child.kill('SIGKILL');
        resolve(m.arrivals);
      });
      this.child.send({ type: 'arrivals' });
    });
  }
}

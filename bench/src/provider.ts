import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { priorityFromEnv, runAhead, type ProcessPriority } from '@sluice/testing';

/**
 * A stand-in for a rate-limited third-party API (`workers/provider.ts`, a process of its own):
 * every handler of the rate-limit scenario POSTs to it once, and it timestamps each arrival on the
 * shared clock, as a provider counting calls would. It accepts every call, so both systems are
 * measured as they send, not as a provider would throttle them.
 *
 * A real provider has cores of its own; this one shares the machine's with the workers, Redis and
 * the producer, and would stamp a call when it next gets a core rather than when the call came. It
 * runs ahead of them where this process may set that (`priority`; `runAhead` from `@sluice/testing`:
 * real-time scheduling, else nice −10). `BENCH_PROVIDER_PRIORITY=higher` or `normal` holds it at most
 * there.
 */
export class Provider {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly priority: ProcessPriority,
  ) {}

  static async start(): Promise<Provider> {
    const most = priorityFromEnv('BENCH_PROVIDER_PRIORITY'); // before the fork: a bad value leaves nothing running
    const child = fork(join(__dirname, 'workers', 'provider.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const priority = runAhead(child.pid, most);
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

import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { runInThisContext } from 'node:vm';

/**
 * Last-resort cleanup of redis-server processes started by the harness, for test runs that end without
 * calling `stop()` (crash, uncaught exception, Ctrl-C, forgotten `afterAll`):
 *
 * - on `process.on('exit')` every live process is SIGKILLed and its dir removed (synchronously);
 * - on SIGINT/SIGTERM/SIGHUP, when nobody else handles the signal, the same happens and the signal is
 *   re-raised so the process still dies the way it would have;
 * - each server also gets a detached watchdog (`/bin/sh` loop) that SIGKILLs it and removes its dir if
 *   this Node process disappears without running any handler (e.g. a SIGKILLed Jest worker). The
 *   watchdog is killed as soon as the server exits normally.
 *
 * Under Jest, test files see a sandboxed copy of `process` whose events never fire, and every test file
 * gets fresh module instances; so the hooks go on the real `process` and the registry lives there too
 * (one set of listeners per OS process, shared by all test files of a worker).
 */

interface Tracked {
  readonly pid: number;
  readonly dir: string;
}

interface Registry {
  readonly live: Map<number, Tracked>;
  hooksInstalled: boolean;
}

const REGISTRY = Symbol.for('@sluice/testing/redis/cleanup');
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The process object of the main context (Jest's sandbox only has a copy). */
function realProcess(): NodeJS.Process {
  try {
    const candidate = runInThisContext('process') as Partial<NodeJS.Process> | undefined;
    if (typeof candidate?.on === 'function' && candidate.pid === process.pid)
      return candidate as NodeJS.Process;
  } catch {
    // not available: fall back to the global
  }
  return process;
}

const host = realProcess();
const slots = host as unknown as Record<symbol, Registry | undefined>;
const registry: Registry = (slots[REGISTRY] ??= { live: new Map(), hooksInstalled: false });
const live = registry.live;

function killAllSync(): void {
  for (const { pid, dir } of live.values()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Only act when we are the sole handler; otherwise the other handler decides whether the process
  // exits (and then the 'exit' hook cleans up).
  if (host.listenerCount(signal) > 1) return;
  killAllSync();
  for (const s of SIGNALS) host.removeListener(s, onSignal);
  host.kill(host.pid, signal);
}

function installHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  host.on('exit', killAllSync);
  for (const signal of SIGNALS) host.on(signal, onSignal);
}

const WATCHDOG = `
parent=$1; child=$2; dir=$3
while kill -0 "$child" 2>/dev/null; do
  if ! kill -0 "$parent" 2>/dev/null; then
    kill -9 "$child" 2>/dev/null
    sleep 0.2
    rm -rf "$dir"
    exit 0
  fi
  sleep 1
done
`;

function startWatchdog(pid: number, dir: string): (() => void) | undefined {
  if (process.platform === 'win32') return undefined;
  try {
    const watchdog = spawn(
      '/bin/sh',
      ['-c', WATCHDOG, 'sluice-redis-watchdog', String(process.pid), String(pid), dir],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    watchdog.on('error', () => undefined);
    watchdog.unref();
    const watchdogPid = watchdog.pid;
    if (watchdogPid === undefined) return undefined;
    return () => {
      try {
        // The watchdog leads its own process group (detached): end it and its `sleep`.
        process.kill(-watchdogPid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
  } catch {
    return undefined;
  }
}

/**
 * Registers a live redis-server process. Returns the function to call once it has exited normally.
 */
export function track(pid: number, dir: string): () => void {
  installHooks();
  live.set(pid, { pid, dir });
  const stopWatchdog = startWatchdog(pid, dir);
  return () => {
    live.delete(pid);
    stopWatchdog?.();
  };
}

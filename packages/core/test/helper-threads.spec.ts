import { readdirSync } from 'node:fs';
import { Worker as Thread } from 'node:worker_threads';
import {
  definePipeline,
  HelperThreads,
  helperThreads,
  MemoryStore,
  silentLogger,
  Worker,
  type HelperThreadsLoad,
  type Logger,
} from '@sluice/core';
import { schedulingPolicy, startupThreads } from '../src/runtime/helper-threads';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

const tasks = (): number[] => readdirSync('/proc/self/task').map(Number);

/** Polls `check` until it holds (no timing is asserted: the bound only ends a broken run). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const LIGHT: HelperThreadsLoad = { eventLoop: 0.1, machineIdle: 0.9 };

/** A controller checking every 10 ms against a load the test sets. */
function controlled(options: { command?: string } = {}): {
  helpers: HelperThreads;
  setLoad: (load: HelperThreadsLoad) => void;
  checks: () => number;
} {
  let load: HelperThreadsLoad = LIGHT;
  let checks = 0;
  const helpers = new HelperThreads({
    checkEveryMs: 10,
    load: () => {
      checks++;
      return load;
    },
    ...(options.command === undefined ? {} : { command: options.command }),
  });
  return {
    helpers,
    setLoad: (l) => {
      load = l;
    },
    checks: () => checks,
  };
}

const policies = (): number[] => startupThreads().map(schedulingPolicy);

describe('HelperThreads', () => {
  // These tests move this process's own threads: they need Linux and the main thread, as CI has.
  beforeAll(() => {
    expect(process.platform).toBe('linux');
    expect(new HelperThreads().available).toBe(true);
  });

  it("finds the threads Node started before V8, not the application's", async () => {
    const before = startupThreads();
    expect(before.length).toBeGreaterThan(0);
    expect(before).not.toContain(process.pid);
    const old = new Set(tasks());
    const thread = new Thread('setTimeout(() => undefined, 2000)', { eval: true });
    await new Promise((resolve) => thread.once('online', resolve));
    try {
      const added = tasks().filter((t) => !old.has(t));
      expect(added.length).toBeGreaterThan(0);
      const after = startupThreads();
      for (const t of added) expect(after).not.toContain(t);
    } finally {
      await thread.terminate();
    }
  });

  it('runs them under SCHED_IDLE while the load is light and back under SCHED_OTHER when busy', async () => {
    const { helpers, setLoad, checks } = controlled();
    const release = helpers.acquire(silentLogger);
    try {
      // Nothing moves before the first check has measured.
      expect(helpers.mode).toBe('normal');
      expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);
      await until(() => helpers.mode === 'background', 'background');
      expect(policies().every((p) => p === SCHED_IDLE)).toBe(true);
      expect(schedulingPolicy(process.pid)).toBe(SCHED_OTHER);

      // A busy event loop: back to normal.
      setLoad({ eventLoop: 0.9, machineIdle: 0.9 });
      await until(() => helpers.mode === 'normal', 'normal (event loop)');
      expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);

      // Between the thresholds nothing moves.
      setLoad({ eventLoop: 0.5, machineIdle: 0.9 });
      const seen = checks();
      await until(() => checks() >= seen + 5, 'five checks');
      await helpers.settled();
      expect(helpers.mode).toBe('normal');

      setLoad(LIGHT);
      await until(() => helpers.mode === 'background', 'background again');

      // Busy cores elsewhere on the machine: back to normal too.
      setLoad({ eventLoop: 0.1, machineIdle: 0.2 });
      await until(() => helpers.mode === 'normal', 'normal (machine)');
      expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);
      setLoad(LIGHT);
      await until(() => helpers.mode === 'background', 'background a third time');
    } finally {
      release();
      await helpers.settled();
    }
    // The last release puts them back.
    expect(helpers.mode).toBe('normal');
    expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);
  });

  it('keeps them in the background until the last holder releases', async () => {
    const { helpers } = controlled();
    const first = helpers.acquire(silentLogger);
    const second = helpers.acquire(silentLogger);
    expect(helpers.holding).toBe(2);
    await until(() => helpers.mode === 'background', 'background');
    first();
    first(); // a second call of the same release changes nothing
    expect(helpers.holding).toBe(1);
    await helpers.settled();
    expect(helpers.mode).toBe('background');
    second();
    await helpers.settled();
    expect(helpers.holding).toBe(0);
    expect(helpers.mode).toBe('normal');
    expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);
  });

  it('without chrt leaves every thread alone and says so once', async () => {
    const debug = jest.fn();
    const logger: Logger = { ...silentLogger, debug };
    const { helpers, checks } = controlled({ command: '/nonexistent/chrt' });
    const release = helpers.acquire(logger);
    try {
      await until(() => checks() >= 5, 'five checks');
      await helpers.settled();
      expect(helpers.available).toBe(false);
      expect(helpers.mode).toBe('normal');
      expect(policies().every((p) => p === SCHED_OTHER)).toBe(true);
      const said = debug.mock.calls.filter(([m]) => m === 'helper threads left at their scheduling policy');
      expect(said).toHaveLength(1);
    } finally {
      release();
    }
  });

  it('is held by a worker with the adaptive policy (the default) while it runs, not with normal', async () => {
    const store = new MemoryStore();
    const pipelines = [definePipeline<string>({ queue: 'q', handler: () => undefined })];
    const held = helperThreads.holding;
    const adaptive = new Worker({ store, pipelines, logger: silentLogger }).start();
    expect(helperThreads.holding).toBe(held + 1);
    const normal = new Worker({ store, pipelines, logger: silentLogger, helperThreads: 'normal' }).start();
    expect(helperThreads.holding).toBe(held + 1);
    await normal.close();
    await adaptive.close();
    expect(helperThreads.holding).toBe(held);
    await store.close();
  });
});

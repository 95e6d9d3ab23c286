import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { AHEAD_NICE, AHEAD_RT_PRIORITY, parseProcessPriority, priorityFromEnv, runAhead } from '../src';

/** A process's nice value, real-time priority and scheduling policy, as the kernel has them. */
function scheduling(pid: number): { nice: number; rtPriority: number; policy: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from field 3 (state) on.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { nice: Number(rest[19 - 3]), rtPriority: Number(rest[40 - 3]), policy: Number(rest[41 - 3]) };
}

const SCHED_OTHER = 0;
const SCHED_FIFO = 1;

describe('runAhead', () => {
  let children: ChildProcess[] = [];
  const idle = (): number => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    children.push(child);
    return child.pid!;
  };
  // Each child is gone before the next test (and before the file ends): killed, and its exit seen.
  afterEach(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            child.once('exit', () => {
              resolve();
            });
            child.kill('SIGKILL');
          }),
      ),
    );
    children = [];
  });

  it('reports how the kernel now schedules the process, real time where permitted', () => {
    const pid = idle();
    const priority = runAhead(pid);
    const now = scheduling(pid);
    if (priority === 'real-time') {
      expect(now).toMatchObject({ policy: SCHED_FIFO, rtPriority: AHEAD_RT_PRIORITY });
    } else {
      expect(now.policy).toBe(SCHED_OTHER);
      expect(now.nice).toBe(priority === 'higher' ? AHEAD_NICE : 0);
    }
  });

  it('goes no further than `most`', () => {
    const higher = idle();
    const got = runAhead(higher, 'higher');
    expect(got).not.toBe('real-time');
    expect(scheduling(higher)).toMatchObject({
      policy: SCHED_OTHER,
      nice: got === 'higher' ? AHEAD_NICE : 0,
    });
    const normal = idle();
    expect(runAhead(normal, 'normal')).toBe('normal');
    expect(scheduling(normal)).toMatchObject({ policy: SCHED_OTHER, nice: 0 });
  });

  it('reads how far to go from an environment variable, and leaves a child that did not start alone', () => {
    try {
      process.env.SLUICE_TEST_PRIORITY_SETTING = 'normal';
      expect(priorityFromEnv('SLUICE_TEST_PRIORITY_SETTING')).toBe('normal');
      process.env.SLUICE_TEST_PRIORITY_SETTING = '';
      expect(priorityFromEnv('SLUICE_TEST_PRIORITY_SETTING')).toBe('real-time');
      process.env.SLUICE_TEST_PRIORITY_SETTING = 'fast';
      expect(() => priorityFromEnv('SLUICE_TEST_PRIORITY_SETTING')).toThrow(
        'SLUICE_TEST_PRIORITY_SETTING must be real-time, higher or normal, not "fast"',
      );
    } finally {
      delete process.env.SLUICE_TEST_PRIORITY_SETTING;
    }
    expect(priorityFromEnv('SLUICE_TEST_PRIORITY_SETTING')).toBe('real-time');
    expect(runAhead(undefined)).toBe('normal');
  });

  it('reads a priority setting, and refuses anything else', () => {
    expect(parseProcessPriority(undefined, 'X')).toBe('real-time');
    expect(parseProcessPriority('higher', 'X')).toBe('higher');
    expect(parseProcessPriority('normal', 'X')).toBe('normal');
    expect(() => parseProcessPriority('fast', 'SLUICE_PROVIDER_PRIORITY')).toThrow(
      'SLUICE_PROVIDER_PRIORITY must be real-time, higher or normal, not "fast"',
    );
  });
});

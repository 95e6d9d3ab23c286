import { spawnSync } from 'node:child_process';
import { setPriority } from 'node:os';

/**
 * How a process is scheduled after {@link runAhead}: `real-time` (`SCHED_FIFO` at
 * {@link AHEAD_RT_PRIORITY}: it runs as soon as it has work), `higher` (nice {@link AHEAD_NICE}: it
 * runs before normal processes when both wait for a core) or `normal` (neither was permitted, or
 * `most` held it there).
 */
export type ProcessPriority = 'real-time' | 'higher' | 'normal';

/** The nice value {@link runAhead} sets (lower runs first; -20 to 19). */
export const AHEAD_NICE = -10;

/** The `SCHED_FIFO` priority {@link runAhead} sets (1 to 99; any real-time process runs before every normal one). */
export const AHEAD_RT_PRIORITY = 10;

/**
 * Runs process `pid` ahead of the others on this machine, as far as this process is permitted and
 * `most` allows: real-time scheduling (`chrt --fifo`, Linux, root or `CAP_SYS_NICE`), else nice
 * {@link AHEAD_NICE}. For a process that stands in for a remote service in a test, such as a
 * provider timestamping arrivals: on its own machine it would not wait for a core the code under
 * test holds, and a stamp taken when it next gets one is late by however long that was. Keep such
 * a process light: a real-time process that spins holds a core (Linux leaves others 5% of it).
 * Returns how the process is scheduled now (`normal` for a child that did not start: `pid` undefined).
 */
export function runAhead(pid: number | undefined, most: ProcessPriority = 'real-time'): ProcessPriority {
  if (pid === undefined || most === 'normal') return 'normal';
  let priority: ProcessPriority = 'normal';
  try {
    setPriority(pid, AHEAD_NICE);
    priority = 'higher';
  } catch {
    // not permitted: normal priority
  }
  if (most === 'real-time') {
    const chrt = spawnSync('chrt', ['--fifo', '--pid', String(AHEAD_RT_PRIORITY), String(pid)], {
      stdio: 'ignore',
    });
    if (chrt.status === 0) priority = 'real-time';
  }
  return priority;
}

/** A priority setting (`name` says where it came from): a {@link ProcessPriority}, or undefined or empty for `real-time`. */
export function parseProcessPriority(value: string | undefined, name: string): ProcessPriority {
  if (value === undefined || value === '') return 'real-time';
  if (value === 'real-time' || value === 'higher' || value === 'normal') return value;
  throw new Error(`${name} must be real-time, higher or normal, not ${JSON.stringify(value)}`);
}

/**
 * How far {@link runAhead} may go by the environment variable `variable` (a {@link ProcessPriority};
 * `real-time` when unset or empty). Read it before starting the process: a bad value is refused
 * with the variable's name while there is nothing to clean up.
 */
export function priorityFromEnv(variable: string): ProcessPriority {
  return parseProcessPriority(process.env[variable], variable);
}

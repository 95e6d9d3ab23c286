import type { SchedulerLike, Unsubscribable } from 'rxjs';

/** A scheduler whose clock is further than this (a year) from the wall clock keeps virtual time. */
const WALL_CLOCK_SLACK_MS = 365 * 24 * 3_600_000;

const immediate: (task: () => void) => Unsubscribable =
  typeof setImmediate === 'function'
    ? (task) => {
        const handle = setImmediate(task);
        return {
          unsubscribe: () => {
            clearImmediate(handle);
          },
        };
      }
    : (task) => {
        const handle = setTimeout(task, 0);
        return {
          unsubscribe: () => {
            clearTimeout(handle);
          },
        };
      };

/**
 * Runs `task` at the end of the current turn of the event loop: after the callbacks and microtasks
 * already queued, and the ones they queue, have run (Node's `setImmediate`), so whatever a burst of
 * I/O and promise callbacks produces is there when it runs. A scheduler whose clock is not the wall
 * clock keeps virtual time (a `TestScheduler`, or `asyncScheduler` inside `TestScheduler.run`):
 * there `task` is a task of that scheduler at the current time, after the ones already due.
 */
export function afterTurn(scheduler: SchedulerLike, task: () => void): Unsubscribable {
  if (Math.abs(scheduler.now() - Date.now()) > WALL_CLOCK_SLACK_MS) return scheduler.schedule(task);
  return immediate(task);
}

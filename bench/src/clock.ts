/** The machine's monotonic clock in milliseconds: the same clock in every process. */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Epoch milliseconds minus the monotonic clock, read where `Date.now()` turns to the next
 * millisecond (the earliest of three such reads: a read delayed by the scheduler only makes the
 * difference smaller). Both clocks are the system's, so every process finds the same offset to
 * within microseconds.
 */
function epochOffset(): number {
  let best = -Infinity;
  for (let i = 0; i < 3; i++) {
    const from = Date.now();
    let epoch = from;
    let mono = 0;
    while (epoch === from) {
      epoch = Date.now();
      mono = monotonicMs();
    }
    best = Math.max(best, epoch - mono);
  }
  return best;
}

const OFFSET = epochOffset();

/**
 * Wall-clock time in epoch milliseconds with sub-millisecond resolution, the same in every process
 * of a benchmark (producer and workers, all on one machine): a timestamp taken by the producer and
 * carried in a job's payload can be subtracted from one taken by a worker, and compared with store
 * times (Redis `TIME`). It is the monotonic clock plus an offset found at start (`epochOffset`).
 * `performance.timeOrigin + performance.now()` is not: a process's time origin was seen 6 ms off
 * the others' (1 process in 6), enough to make a latency of a few tenths of a millisecond negative.
 * `Date.now()` is this clock rounded down to whole milliseconds, too coarse for latencies of a
 * millisecond or two.
 */
export function now(): number {
  return monotonicMs() + OFFSET;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `promise`, or a rejection with `message` once `ms` have passed first. The timer is cleared either
 * way: a pending one would keep the process (a Jest worker, a benchmark) alive after its work.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(message));
      }, ms);
    }),
  ]).finally(() => {
    clearTimeout(timer);
  });
}

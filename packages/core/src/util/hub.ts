import { Observable, type Subscriber } from 'rxjs';

/**
 * A hot stream for values emitted once per job to a few subscribers: what a `Subject` does for the
 * worker's outcome streams, without the garbage a `Subject` makes per value. RxJS's `Subject.next`
 * makes a closure (its error context) and walks its subscribers with `for…of` (an iterator and its
 * results) for every value; with one subscriber on a worker's `outcomes$` that was about 230 of the
 * 1,640 bytes a batch worker allocated per job (V8's sampling heap profiler, jobs in batches of
 * 100). This one walks an array that is copied when a subscriber comes or goes.
 *
 * What it keeps of a `Subject`:
 * - hot: a subscriber sees the values emitted after it subscribed;
 * - one that subscribes during an emission does not see that value, and one that unsubscribes
 *   during it sees no more (its `Subscriber` is closed);
 * - a subscriber that throws does not stop the others (RxJS's `Subscriber` reports it);
 * - `complete()` completes every subscriber, and any later one at once; `next` after it does
 *   nothing.
 */
export class Hub<T> {
  private subscribers: readonly Subscriber<T>[] = [];
  private stopped = false;

  /** The stream itself, to hand out. */
  readonly observable: Observable<T> = new Observable<T>((subscriber) => {
    if (this.stopped) {
      subscriber.complete();
      return undefined;
    }
    this.subscribers = [...this.subscribers, subscriber];
    return () => {
      this.subscribers = this.subscribers.filter((s) => s !== subscriber);
    };
  });

  /** Whether anyone is subscribed (the emitter can skip making a value no one would see). */
  get observed(): boolean {
    return this.subscribers.length > 0;
  }

  next(value: T): void {
    const subscribers = this.subscribers;
    for (let i = 0; i < subscribers.length; i++) (subscribers[i] as Subscriber<T>).next(value);
  }

  complete(): void {
    if (this.stopped) return;
    this.stopped = true;
    const subscribers = this.subscribers;
    this.subscribers = [];
    for (const subscriber of subscribers) subscriber.complete();
  }
}

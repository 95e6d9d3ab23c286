import { filter, map } from 'rxjs';
import { fanOut, type FanOutSubscriber, type Worker } from '@sluice/core';
import { EVENT_QUEUE, type AppEvent } from './event';
import type { SimulatedSocket } from './socket';

/**
 * Pushes every event the database has stored to websocket clients. Each client gets its own buffer
 * of `bufferSize` events that drops the oldest when the client falls behind: a slow browser sees the
 * latest events, never slows the database writer, and never makes this process hold more than
 * `bufferSize` events for it.
 */
export function startLiveFeed(
  worker: Worker,
  sockets: readonly SimulatedSocket[],
  bufferSize: number,
): FanOutSubscriber[] {
  const feed = fanOut<AppEvent>();
  const subscribers = sockets.map((socket) =>
    feed.attach((event) => socket.send(event), { bufferSize, overflow: 'drop-oldest', name: socket.name }),
  );
  // The primary path: every event the pipeline wrote. It ends when the worker closes.
  worker
    .pipeline<AppEvent>(EVENT_QUEUE)
    .outcomes$.pipe(
      filter((outcome) => outcome.kind === 'completed'),
      map((outcome) => outcome.job.data),
      feed.tap,
    )
    .subscribe();
  return subscribers;
}

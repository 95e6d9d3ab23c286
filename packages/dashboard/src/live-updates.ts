import type { IncomingMessage, ServerResponse } from 'node:http';
import { catchError, EMPTY, map, merge, type Observable, share, skip, Subject, filter } from 'rxjs';
import type { Logger, Store } from '@sluice/core';

export interface LiveUpdatesOptions {
  /** Changes within this window are sent as one message. Default `250`. */
  readonly coalesceMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream. Default `15_000`. */
  readonly heartbeatMs?: number;
}

/**
 * Server-Sent Events that tell the UI *when* to refresh, not *what* changed: the UI re-reads the view
 * it shows through the ordinary JSON API, so there is one data path and one place for auth and
 * redaction. A queue "changed" when one of its jobs settled (`store.events`), its settings changed
 * (`store.settings`: pause, concurrency), jobs were added (`store.wakeups`), a running job reported
 * progress or log lines (`store.jobUpdates`), or this dashboard ran an action on it. Changes are coalesced (`coalesceMs`) into one `change` message listing the queues.
 *
 * The store subscriptions are shared: however many browsers watch a queue, the dashboard holds one
 * subscription per queue, dropped when the last browser goes away.
 */
export class LiveUpdates {
  private readonly perQueue = new Map<string, Observable<string>>();
  private readonly local = new Subject<string>();
  private readonly streams = new Set<ServerResponse>();
  private readonly coalesceMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    options: LiveUpdatesOptions = {},
  ) {
    this.coalesceMs = options.coalesceMs ?? 250;
    this.heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  /** Tells every stream watching `queue` that it changed (used after this dashboard's own actions). */
  notify(queue: string): void {
    this.local.next(queue);
  }

  /** Number of open streams. */
  get size(): number {
    return this.streams.size;
  }

  /** Turns the response into an event stream of changes to `queues`, until the client disconnects. */
  stream(req: IncomingMessage, res: ServerResponse, queues: readonly string[]): void {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write(`retry: 3000\nevent: ready\ndata: ${JSON.stringify({ queues })}\n\n`);
    this.streams.add(res);

    const pending = new Set<string>();
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      flushTimer = undefined;
      if (pending.size === 0) return;
      const changed = [...pending].sort();
      pending.clear();
      res.write(`event: change\ndata: ${JSON.stringify({ queues: changed })}\n\n`);
    };
    const watched = new Set(queues);
    const subscription = merge(
      ...queues.map((q) => this.changes(q)),
      this.local.pipe(filter((q) => watched.has(q))),
    ).subscribe((queue) => {
      pending.add(queue);
      flushTimer ??= setTimeout(flush, this.coalesceMs);
    });
    const heartbeat = setInterval(() => res.write(': ping\n\n'), this.heartbeatMs);
    heartbeat.unref();

    const cleanup = (): void => {
      subscription.unsubscribe();
      clearInterval(heartbeat);
      if (flushTimer) clearTimeout(flushTimer);
      this.streams.delete(res);
    };
    req.on('close', cleanup);
    res.on('close', cleanup);
    res.on('error', cleanup);
  }

  /** Ends every open stream (the dashboard is closing). */
  close(): void {
    for (const res of [...this.streams]) res.end();
    this.streams.clear();
    this.local.complete();
  }

  private changes(queue: string): Observable<string> {
    let changes$ = this.perQueue.get(queue);
    if (!changes$) {
      const quiet = (source: string) =>
        catchError((err: unknown) => {
          this.logger.debug('dashboard: live updates lost a store subscription', {
            queue,
            source,
            error: err instanceof Error ? err.message : String(err),
          });
          return EMPTY;
        });
      changes$ = merge(
        this.store.events(queue).pipe(quiet('events')),
        this.store.settings(queue).pipe(skip(1), quiet('settings')),
        this.store.wakeups(queue).pipe(quiet('wakeups')),
        // Progress and log reports of running jobs, so a job page follows its handler.
        this.store.jobUpdates ? this.store.jobUpdates(queue).pipe(quiet('jobUpdates')) : EMPTY,
      ).pipe(
        map(() => queue),
        share(),
      );
      this.perQueue.set(queue, changes$);
    }
    return changes$;
  }
}

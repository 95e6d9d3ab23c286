import type { Logger, RateLimitSpec, Store, Telemetry, TelemetryEvent } from '@sluice/core';
import { Subscription } from 'rxjs';

/** Most lateness samples kept per limit key (the percentiles are over these). */
const LATENESS_SAMPLES = 500;
/** Most pauses and hand-backs listed per limit key. */
const RECENT = 20;

/** A provider pause (`{ retryAfter }`): no unit of the limit was placed before `until`. */
export interface LimitPauseView {
  /** When this dashboard heard of it (its clock). */
  readonly at: number;
  /** Store time until which the limit was paused. */
  readonly until?: number;
  /** How long the pause was, as the worker that took part reported it. */
  readonly pauseMs?: number;
  /** `store`: heard on the store's pause channel (any process); `telemetry`: a worker on this hub. */
  readonly source: 'store' | 'telemetry';
}

/** How rate-limited starts ran against their slots, from the `start-timing` events this process saw. */
export interface StartTimingView {
  /** Since when this process has been counting (epoch ms). */
  readonly since: number;
  /** Units started. */
  readonly started: number;
  /** How late starts ran after their slot surely came, over the latest samples; `null` before any. */
  readonly lateMs: {
    readonly samples: number;
    readonly p50: number;
    readonly p95: number;
    readonly max: number;
  } | null;
  /** Units that missed their margin and were moved to a new slot. */
  readonly moved: number;
  /** Units that could not be placed and went back to the queue. */
  readonly handedBack: number;
  readonly recentHandBacks: readonly { readonly at: number; readonly reason?: string }[];
  /** Reserves the limit held back (`rate-limited` events). */
  readonly heldBack: number;
  /**
   * How late handlers' requests left after their slots (`ctx.limit.sent()`), over the latest
   * samples; `null` before any.
   */
  readonly sentLateMs: {
    readonly samples: number;
    readonly p50: number;
    readonly p95: number;
    readonly max: number;
  } | null;
  /** Requests that left later than the margin after their slots, moved in the log to when they left. */
  readonly corrected: number;
  /** The latest margin a worker asked the store for, and whether it is at its cap (`maxMarginMs`). */
  readonly margin: {
    readonly marginMs: number;
    readonly capped: boolean;
    readonly at: number;
    readonly pipeline: string;
  } | null;
  /**
   * The jobs the limit may grant ahead of their slots, as a worker last reported it (fewer, down to
   * 0, while jobs whose slots came wait for busy handlers); `null` before any change.
   */
  readonly ahead: { readonly jobs: number; readonly at: number; readonly pipeline: string } | null;
  /** The latest lead: how far ahead new slots go, and whether it is at its cap (`maxLeadMs`). */
  readonly lead: {
    readonly leadMs: number;
    readonly marginMs: number;
    readonly capped: boolean;
    readonly at: number;
    readonly pipeline: string;
  } | null;
}

interface KeyStats {
  started: number;
  late: number[];
  moved: number;
  handedBack: number;
  handBacks: { at: number; reason?: string }[];
  heldBack: number;
  lead: StartTimingView['lead'];
  sent: number[];
  corrected: number;
  margin: StartTimingView['margin'];
  ahead: StartTimingView['ahead'];
  pauses: LimitPauseView[];
}

/**
 * Watches rate limits for the dashboard: the `start-timing` and `rate-limited` events on its telemetry
 * hub (the workers of this process), and every process's provider pauses on the store's pause channel
 * (`store.limitPauses`), subscribed to once per limit key the first time the dashboard shows it.
 */
export class RateLimitMonitor {
  private readonly stats = new Map<string, KeyStats>();
  private readonly watched = new Set<string>();
  private readonly subscription = new Subscription();
  readonly since = Date.now();

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    readonly telemetry: Telemetry | undefined,
  ) {
    if (telemetry) {
      this.subscription.add(
        telemetry.events$.subscribe((event) => {
          this.record(event);
        }),
      );
    }
  }

  /** Starts listening to the store's pauses of `spec` (once per key). */
  watch(queue: string, spec: RateLimitSpec): void {
    const key = spec.key ?? queue;
    const id = idOf(queue, key);
    if (this.watched.has(id) || !this.store.limitPauses) return;
    this.watched.add(id);
    this.subscription.add(
      this.store.limitPauses(queue, { ...spec, key }).subscribe({
        next: (until) => {
          this.push(this.of(queue, key).pauses, { at: Date.now(), until, source: 'store' });
        },
        error: (err: unknown) => {
          this.watched.delete(id);
          this.logger.debug('dashboard: store.limitPauses() failed', {
            queue,
            key,
            error: err instanceof Error ? err.message : String(err),
          });
        },
      }),
    );
  }

  /** Keys of `queue` this process has seen events for. */
  keysSeen(queue: string): string[] {
    const prefix = `${queue}\u0000`;
    return [...this.stats.keys()].filter((id) => id.startsWith(prefix)).map((id) => id.slice(prefix.length));
  }

  /** Whether pauses can be heard from every process (the store has a pause channel). */
  get hearsStorePauses(): boolean {
    return this.store.limitPauses !== undefined;
  }

  pauses(queue: string, key: string): readonly LimitPauseView[] {
    return [...(this.stats.get(idOf(queue, key))?.pauses ?? [])].reverse();
  }

  /** Start timing of `key`, or `null` without a telemetry hub. */
  timing(queue: string, key: string): StartTimingView | null {
    if (!this.telemetry) return null;
    const s = this.stats.get(idOf(queue, key));
    const summary = (values: readonly number[] | undefined): StartTimingView['lateMs'] => {
      const sorted = [...(values ?? [])].sort((a, b) => a - b);
      return sorted.length === 0
        ? null
        : {
            samples: sorted.length,
            p50: percentile(sorted, 0.5),
            p95: percentile(sorted, 0.95),
            max: sorted[sorted.length - 1] ?? 0,
          };
    };
    return {
      since: this.since,
      started: s?.started ?? 0,
      lateMs: summary(s?.late),
      sentLateMs: summary(s?.sent),
      corrected: s?.corrected ?? 0,
      margin: s?.margin ?? null,
      ahead: s?.ahead ?? null,
      moved: s?.moved ?? 0,
      handedBack: s?.handedBack ?? 0,
      recentHandBacks: [...(s?.handBacks ?? [])].reverse(),
      heldBack: s?.heldBack ?? 0,
      lead: s?.lead ?? null,
    };
  }

  /** Whether the latest lead of `key` is at its cap. */
  leadCapped(queue: string, key: string): boolean {
    return this.stats.get(idOf(queue, key))?.lead?.capped ?? false;
  }

  /** Whether the latest margin of `key` is at its cap. */
  marginCapped(queue: string, key: string): boolean {
    return this.stats.get(idOf(queue, key))?.margin?.capped ?? false;
  }

  close(): void {
    this.subscription.unsubscribe();
  }

  private record(event: TelemetryEvent): void {
    if (event.type === 'rate-limited') {
      this.of(event.queue, event.key).heldBack++;
      return;
    }
    if (event.type !== 'start-timing') return;
    const s = this.of(event.queue, event.key);
    switch (event.kind) {
      case 'started':
        s.started++;
        if (s.late.length >= LATENESS_SAMPLES) s.late.shift();
        s.late.push(Math.max(0, event.lateMs));
        break;
      case 'moved':
        s.moved++;
        break;
      case 'handed-back':
        s.handedBack++;
        this.push(s.handBacks, {
          at: event.at,
          ...(event.reason === undefined ? {} : { reason: event.reason }),
        });
        break;
      case 'lead':
        s.lead = {
          leadMs: event.leadMs,
          marginMs: event.marginMs,
          capped: event.capped,
          at: event.at,
          pipeline: event.pipeline,
        };
        break;
      case 'sent':
        if (s.sent.length >= LATENESS_SAMPLES) s.sent.shift();
        s.sent.push(Math.max(0, event.lateMs));
        break;
      case 'corrected':
        s.corrected++;
        break;
      case 'margin':
        s.margin = {
          marginMs: event.marginMs,
          capped: event.marginCapped,
          at: event.at,
          pipeline: event.pipeline,
        };
        break;
      case 'ahead':
        s.ahead = { jobs: event.aheadJobs ?? 0, at: event.at, pipeline: event.pipeline };
        break;
      case 'paused':
        // Heard on the store's channel too when the store has one; listed from here otherwise.
        if (!this.hearsStorePauses) {
          this.push(s.pauses, {
            at: event.at,
            ...(event.pauseMs === undefined ? {} : { pauseMs: event.pauseMs }),
            source: 'telemetry',
          });
        }
        break;
    }
  }

  private of(queue: string, key: string): KeyStats {
    const id = idOf(queue, key);
    let s = this.stats.get(id);
    if (!s) {
      s = {
        started: 0,
        late: [],
        moved: 0,
        handedBack: 0,
        handBacks: [],
        heldBack: 0,
        lead: null,
        sent: [],
        corrected: 0,
        margin: null,
        ahead: null,
        pauses: [],
      };
      this.stats.set(id, s);
    }
    return s;
  }

  private push<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > RECENT) list.shift();
  }
}

function idOf(queue: string, key: string): string {
  return `${queue}\u0000${key}`;
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

import {
  BehaviorSubject,
  defer,
  filter,
  map,
  type Observable,
  type ObservableInput,
  switchMap,
  take,
  timer,
} from 'rxjs';
import type { Customer, Order, Shipment } from './order';

/** Ships one order (a carrier's API). */
export interface Shipper {
  /** Resolves with the shipment; should stop when `signal` fires. A promise works as well as an Observable. */
  ship(order: Order, customer: Customer, signal: AbortSignal): ObservableInput<Shipment>;
}

/**
 * A carrier that takes `latencyMs` per order and records every call. It runs on RxJS timers (so it
 * works in virtual time too). `hold()` makes shipments wait, once their latency is over, until
 * `release()`: tests and the demo decide when a long-running shipment ends.
 */
export class SimulatedShipper implements Shipper {
  /** Order ids in the order their shipments started (one entry per handler call). */
  readonly started: string[] = [];
  /** Completed shipments per order id: a count above 1 would be an order shipped twice. */
  readonly shipped = new Map<string, number>();
  /** Order ids whose shipment was aborted (timeout, cancellation, lost lease, shutdown). */
  readonly aborted: string[] = [];
  private readonly open = new BehaviorSubject(true);

  constructor(private readonly latencyMs: number) {}

  ship(order: Order, customer: Customer, signal: AbortSignal): Observable<Shipment> {
    return defer(() => {
      this.started.push(order.orderId);
      const onAbort = (): void => {
        this.aborted.push(order.orderId);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      return timer(this.latencyMs).pipe(
        switchMap(() => this.open.pipe(filter(Boolean), take(1))),
        map(() => {
          signal.removeEventListener('abort', onAbort);
          this.shipped.set(order.orderId, (this.shipped.get(order.orderId) ?? 0) + 1);
          return {
            orderId: order.orderId,
            trackingId: `TRK-${order.orderId.slice(2)}`,
            to: `${customer.name}, ${customer.city}`,
          };
        }),
      );
    });
  }

  /** Shipments wait, once their latency is over, until `release()`. */
  hold(): void {
    this.open.next(false);
  }

  release(): void {
    this.open.next(true);
  }

  /** Orders whose shipment started and has neither completed nor been aborted. */
  get running(): number {
    const done = [...this.shipped.values()].reduce((a, b) => a + b, 0);
    return this.started.length - done - this.aborted.length;
  }
}

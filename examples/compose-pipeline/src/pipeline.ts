import { catchError, first, from, map, mergeMap, type Observable, of, timeout } from 'rxjs';
import {
  PermanentError,
  pipeline,
  processJobs,
  withJobs,
  type PipelineDefinition,
  type PipelineSpec,
  type Reservation,
  type ReservedJob,
} from '@sluice/core';
import type { CustomerDirectory } from './customer-directory';
import { ORDER_QUEUE, type Customer, type EnrichedOrder, type Order, type Shipment } from './order';
import type { Shipper } from './shipper';

export interface OrderServices {
  readonly directory: CustomerDirectory;
  readonly shipper: Shipper;
}

/** The pipeline's settings (concurrency, leaseMs, backoff …); the queue is always `orders`. */
export type OrderPipelineOptions = Omit<PipelineSpec, 'queue'>;

/** Longest wait for the directory. A handler's `timeoutMs` does not cover a stage of your own. */
export const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * Ships orders. The worker leases them, keeps the leases alive, recovers them from dead workers and
 * writes every result back; this graph only says what happens in between:
 *
 * ```
 * reservations ─► addCustomers (ONE directory call per reservation) ─► processJobs (ship each order)
 * ```
 */
export function orderPipeline(
  { directory, shipper }: OrderServices,
  options: OrderPipelineOptions = {},
): PipelineDefinition<Order, Shipment> {
  return pipeline<Order, Shipment>(
    { queue: ORDER_QUEUE, concurrency: 10, ...options },
    (reservations$, ctx) =>
      reservations$.pipe(
        mergeMap((reservation) => addCustomers(directory, reservation)),
        processJobs((job, { signal }) => ship(shipper, job.data, signal), ctx),
      ),
  );
}

/**
 * The reservation's jobs, each with its customer, from one directory call. Emits exactly once,
 * whatever the directory does (answers late, twice, never, or fails): a job this stage lost would
 * hold its lease until the worker stops.
 */
export function addCustomers(
  directory: CustomerDirectory,
  reservation: Reservation<Order>,
): Observable<Reservation<EnrichedOrder>> {
  const ids = [...new Set(reservation.jobs.map((job) => job.data.customerId))];
  const enrich = (customer: (id: string) => Customer | null, lookupError: string | null) =>
    withJobs(
      reservation,
      reservation.jobs.map((job): ReservedJob<EnrichedOrder> => ({
        ...job,
        data: { ...job.data, customer: customer(job.data.customerId), lookupError },
      })),
    );
  return from(directory.lookup(ids)).pipe(
    timeout(LOOKUP_TIMEOUT_MS),
    first(),
    map((customers) => enrich((id) => customers.get(id) ?? null, null)),
    // A failed lookup fails its jobs in the handler (retried with backoff), rather than the stream.
    catchError((error: unknown) =>
      of(enrich(() => null, error instanceof Error ? error.message : String(error))),
    ),
  );
}

function ship(shipper: Shipper, order: EnrichedOrder, signal: AbortSignal): Observable<Shipment> {
  if (order.lookupError !== null) throw new Error(`customer lookup failed: ${order.lookupError}`);
  if (order.customer === null) throw new PermanentError(`unknown customer ${order.customerId}`);
  return from(shipper.ship(order, order.customer, signal));
}

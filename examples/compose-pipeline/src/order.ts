export const ORDER_QUEUE = 'orders';

/** What a producer adds: the order refers to its customer by id only. */
export interface Order {
  readonly orderId: string;
  readonly customerId: string;
  readonly sku: string;
}

export interface Customer {
  readonly id: string;
  readonly name: string;
  readonly city: string;
}

/** An order after the enrichment stage: its customer, or why there is none. */
export interface EnrichedOrder extends Order {
  /** `null` when the directory does not know the customer, or could not be asked (`lookupError`). */
  readonly customer: Customer | null;
  /** Set when the directory call failed: the job fails and is retried, it is never dropped. */
  readonly lookupError: string | null;
}

/** The shipper's answer: each order's result. */
export interface Shipment {
  readonly orderId: string;
  readonly trackingId: string;
  readonly to: string;
}

const NAMES = [
  'Ada',
  'Grace',
  'Alan',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'Ken',
  'Margaret',
  'Niklaus',
];
const CITIES = ['Lyon', 'Leeds', 'Turin', 'Ghent', 'Porto', 'Graz', 'Aarhus', 'Brno'];

/** `count` customers, `c-01` … */
export function makeCustomers(count: number): Customer[] {
  return Array.from({ length: count }, (_, i) => ({
    id: customerId(i),
    name: `${NAMES[i % NAMES.length] ?? 'Anon'} #${i + 1}`,
    city: CITIES[i % CITIES.length] ?? 'Nowhere',
  }));
}

/** Order `n` (`o-0001` …), from one of `customers` customers (round robin). */
export function makeOrder(n: number, customers: number): Order {
  return {
    orderId: `o-${String(n + 1).padStart(4, '0')}`,
    customerId: customerId(n % customers),
    sku: `sku-${(n * 7) % 13}`,
  };
}

function customerId(i: number): string {
  return `c-${String(i + 1).padStart(2, '0')}`;
}

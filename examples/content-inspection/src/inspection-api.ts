import { setTimeout as sleep } from 'node:timers/promises';
import type { Finding, Message } from './message';

/** The API refused a request: too many items, or too many requests in the last second. */
export class InspectionApiError extends Error {
  constructor(readonly status: 413 | 429) {
    super(`inspection API answered ${status}`);
  }
}

/** One request as the API saw it. */
export interface InspectionCall {
  /** When the request arrived (ms). */
  readonly at: number;
  readonly messageIds: readonly string[];
}

/**
 * A stand-in for a content-inspection API that allows 10 requests per sliding second of at most 100
 * items each, and takes about 100 ms per request whatever its size. It flags messages that mention
 * "forbidden".
 */
export class SimulatedInspectionApi {
  readonly calls: InspectionCall[] = [];
  /** Requests refused with 429 (too many in the last second). */
  rejected = 0;

  async inspect(messages: readonly Message[], signal?: AbortSignal): Promise<Finding[][]> {
    const at = Date.now();
    if (messages.length > 100) throw new InspectionApiError(413);
    if (this.calls.filter((c) => c.at > at - 1000).length >= 10) {
      this.rejected++;
      throw new InspectionApiError(429);
    }
    this.calls.push({ at, messageIds: messages.map((m) => m.id) });
    await sleep(80 + Math.random() * 40, undefined, { signal });
    return messages.map((m) => (m.text.includes('forbidden') ? [{ messageId: m.id, label: 'policy' }] : []));
  }
}

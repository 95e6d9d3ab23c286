import { PermanentError, type Snooze } from '@sluice/core';
import type { Email } from './email';

/**
 * Sends one email through the provider's HTTP API and turns its answer into what a Sluice handler
 * returns: a message id when sent, `{ snooze }` when the provider says we are too fast (no attempt
 * spent), a `PermanentError` for a hard bounce (dead-lettered at once), and a plain error for
 * transient failures (retried with backoff).
 */
export async function sendEmail(
  providerUrl: string,
  email: Email,
  signal: AbortSignal,
): Promise<string | Snooze> {
  const res = await fetch(`${providerUrl}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(email),
    signal,
  });
  const body = await res.text();
  switch (res.status) {
    case 200:
      return (JSON.parse(body) as { messageId: string }).messageId;
    case 429:
      return { snooze: 1000 };
    case 400:
      throw new PermanentError(`hard bounce: ${email.to}`);
    default:
      throw new Error(`provider answered ${res.status}`);
  }
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '@sluice/core';
import { ApiErrorCode, HttpError, isEncrypted, parseCookies } from './http';

/** The cookie holding the CSRF nonce. */
export const CSRF_COOKIE = 'sluice_csrf';
/** The header every state-changing request must carry. */
export const CSRF_HEADER = 'x-csrf-token';

export interface CsrfOptions {
  /**
   * Key that signs tokens. Default: random per dashboard instance, so tokens die with the process and
   * the UI fetches a new one. Give every replica the same secret when a load balancer spreads one
   * browser's requests over several processes.
   */
  readonly secret?: string | Uint8Array;
  /** Add `Secure` to the cookie. Default: only when the request came over TLS. */
  readonly secureCookie?: boolean;
}

/**
 * CSRF protection by signed double-submit: `issue` sets a random nonce in an `HttpOnly`,
 * `SameSite=Strict` cookie and returns `HMAC(secret, nonce)` in the JSON body; a state-changing request
 * must send that token in the `X-CSRF-Token` header along with the cookie. Another site can neither
 * read the token (same-origin policy) nor make the browser send the cookie (`SameSite=Strict`), and a
 * sibling subdomain that plants its own cookie cannot compute the matching signature. Requests a
 * browser labels `Sec-Fetch-Site: cross-site` are refused outright.
 *
 * The cookie has no `Path`, so it defaults to the API's directory (`/<base>/api`): two dashboards under
 * different prefixes on one host keep separate cookies.
 */
export class CsrfGuard {
  private readonly secret: Buffer;
  private readonly secureCookie: boolean | undefined;

  constructor(options: CsrfOptions = {}) {
    if (options.secret !== undefined && options.secret.length < 16) {
      throw new InvalidArgumentError('csrf.secret must be at least 16 bytes long');
    }
    this.secret =
      options.secret === undefined
        ? randomBytes(32)
        : typeof options.secret === 'string'
          ? Buffer.from(options.secret, 'utf8')
          : Buffer.from(options.secret);
    this.secureCookie = options.secureCookie;
  }

  /** Returns the token for this browser, setting a fresh nonce cookie unless it already has one. */
  issue(req: IncomingMessage, res: ServerResponse): string {
    let nonce = parseCookies(req.headers.cookie).get(CSRF_COOKIE);
    if (nonce === undefined || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = randomBytes(32).toString('base64url');
      const secure = this.secureCookie ?? isEncrypted(req);
      res.appendHeader(
        'Set-Cookie',
        `${CSRF_COOKIE}=${nonce}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`,
      );
    }
    return this.sign(nonce);
  }

  /** Throws a 403 {@link HttpError} unless the request carries a token matching its cookie. */
  verify(req: IncomingMessage): void {
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      throw refused('cross-site requests cannot change anything');
    }
    const header = req.headers[CSRF_HEADER];
    const token = Array.isArray(header) ? undefined : header;
    const nonce = parseCookies(req.headers.cookie).get(CSRF_COOKIE);
    if (!token) throw refused(`the ${CSRF_HEADER} header is missing; fetch one from GET api/session`);
    if (!nonce) throw refused(`the ${CSRF_COOKIE} cookie is missing; fetch one from GET api/session`);
    const expected = Buffer.from(this.sign(nonce));
    const given = Buffer.from(token);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw refused('the CSRF token does not match its cookie; fetch a new one from GET api/session');
    }
  }

  private sign(nonce: string): string {
    return createHmac('sha256', this.secret).update(nonce).digest('base64url');
  }
}

function refused(message: string): HttpError {
  return new HttpError(403, ApiErrorCode.Csrf, message);
}

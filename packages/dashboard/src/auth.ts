import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InvalidArgumentError } from '@sluice/core';
import { ApiErrorCode, HttpError } from './http';

/**
 * Who may use the dashboard's API and metrics. A request passes when it carries the bearer `token`,
 * or when `authorize` returns `true`; with neither set, every request passes (keep such a dashboard on
 * a private network). The UI's own files (HTML, JS, CSS) are public: they hold no data.
 */
export interface DashboardAuth {
  /** A shared secret sent as `Authorization: Bearer <token>`; the UI asks for it and keeps it in sessionStorage. */
  readonly token?: string;
  /**
   * Decides for requests without the token: check your app's session cookie, an SSO proxy header, a
   * client certificate… A throw counts as a refusal.
   */
  readonly authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
}

/** Checks requests against a {@link DashboardAuth}; compares tokens in constant time. */
export class Authenticator {
  private readonly tokenDigest: Buffer | undefined;
  private readonly authorize: DashboardAuth['authorize'];

  constructor(auth: DashboardAuth | undefined) {
    if (auth?.token !== undefined && (typeof auth.token !== 'string' || auth.token.length === 0)) {
      throw new InvalidArgumentError('auth.token must be a non-empty string');
    }
    this.tokenDigest = auth?.token === undefined ? undefined : digest(auth.token);
    this.authorize = auth?.authorize;
  }

  /** Whether any check is configured. */
  get enabled(): boolean {
    return this.tokenDigest !== undefined || this.authorize !== undefined;
  }

  /** How the UI should sign in when refused. */
  get login(): 'token' | 'external' {
    return this.tokenDigest ? 'token' : 'external';
  }

  /** Resolves when the request may proceed; rejects with a 401 {@link HttpError} otherwise. */
  async check(req: IncomingMessage): Promise<void> {
    if (!this.enabled) return;
    if (this.tokenDigest) {
      const presented = bearerToken(req);
      if (presented !== undefined && timingSafeEqual(digest(presented), this.tokenDigest)) return;
    }
    if (this.authorize) {
      let allowed = false;
      try {
        // Only a real `true` passes: a hook written in JavaScript that returns a truthy object does not.
        const verdict: unknown = await this.authorize(req);
        allowed = verdict === true;
      } catch {
        allowed = false;
      }
      if (allowed) return;
    }
    throw new HttpError(
      401,
      ApiErrorCode.Unauthorized,
      this.tokenDigest ? 'a valid bearer token is required' : 'you are not authorised to use this dashboard',
      this.tokenDigest ? { 'WWW-Authenticate': 'Bearer realm="sluice"' } : {},
      { login: this.login },
    );
  }
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Hashing first makes the comparison constant-time whatever the lengths. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

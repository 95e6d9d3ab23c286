import type { IncomingMessage, ServerResponse } from 'node:http';

/** Machine-readable reasons an API request was refused, sent as `error.code`. */
export const ApiErrorCode = {
  BadRequest: 'bad_request',
  InvalidQueue: 'invalid_queue',
  InvalidId: 'invalid_id',
  InvalidState: 'invalid_state',
  InvalidPagination: 'invalid_pagination',
  Unauthorized: 'unauthorized',
  ReadOnly: 'read_only',
  Csrf: 'csrf',
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  Conflict: 'conflict',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  NotSupported: 'not_supported',
  Internal: 'internal',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** The JSON body of every error response: `{ "error": { status, code, message } }`. */
export interface ApiErrorBody {
  readonly error: {
    readonly status: number;
    readonly code: ApiErrorCode;
    readonly message: string;
    /** On 401: how the UI can sign in (`token`: ask for the bearer token; `external`: the host app decides). */
    readonly login?: 'token' | 'external';
  };
}

/** An error that becomes an HTTP response as is; anything else thrown becomes a 500. */
export class HttpError extends Error {
  override name = 'HttpError' as const;
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

export const badRequest = (code: ApiErrorCode, message: string): HttpError =>
  new HttpError(400, code, message);
export const notFound = (message: string): HttpError => new HttpError(404, ApiErrorCode.NotFound, message);
export const conflict = (message: string): HttpError => new HttpError(409, ApiErrorCode.Conflict, message);

/**
 * The policy for the UI document: scripts and styles only from the dashboard's own files (no inline
 * code at all), data only from its own API, and no framing by any other page.
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The policy for everything else (JSON, metrics, assets): nothing may run, nothing may frame it. */
export const API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox";

/** Headers every response carries, set before anything else so error responses have them too. */
export function setSecurityHeaders(res: ServerResponse, csp: string = API_CONTENT_SECURITY_POLICY): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

/** Sends `body` as JSON, never cached. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  const body: ApiErrorBody = {
    error: { status: error.status, code: error.code, message: error.message, ...error.extra },
  };
  sendJson(res, error.status, body);
}

/** Sends plain text (404 pages outside the API, metrics). */
export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** Methods that change state: each one needs the CSRF token. */
export function isStateChanging(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

/** Largest JSON body an action accepts. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * Reads a JSON object body. Accepts a body a framework already parsed (`req.body`, as Express's
 * `express.json()` leaves it), reads the raw stream otherwise, and treats a consumed stream or an
 * empty body as `{}`. Only `application/json` is accepted.
 */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parsed = (req as { body?: unknown }).body;
  if (parsed !== undefined && parsed !== null && typeof parsed === 'object' && !Buffer.isBuffer(parsed)) {
    return parsed as Record<string, unknown>;
  }
  if (req.readableEnded) return {};
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(
        413,
        ApiErrorCode.PayloadTooLarge,
        `the body is larger than ${MAX_BODY_BYTES} bytes`,
      );
    }
    chunks.push(buf);
  }
  if (size === 0) return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(415, ApiErrorCode.UnsupportedMediaType, 'send the body as application/json');
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badRequest(ApiErrorCode.BadRequest, 'the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(ApiErrorCode.BadRequest, 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** Parses the `Cookie` header into a map (first occurrence of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || cookies.has(name)) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      cookies.set(name, decodeURIComponent(raw));
    } catch {
      cookies.set(name, raw);
    }
  }
  return cookies;
}

/** Whether the request reached us over TLS (directly; a proxy's `X-Forwarded-Proto` is not trusted). */
export function isEncrypted(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

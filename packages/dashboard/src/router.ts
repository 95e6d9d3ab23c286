import { ApiErrorCode, badRequest, HttpError, notFound } from './http';

export type RouteParams = Readonly<Record<string, string>>;

interface Route<H> {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: H;
}

/** What a path resolved to: its handler and decoded `:params`. */
export interface RouteMatch<H> {
  readonly handler: H;
  readonly params: RouteParams;
}

/**
 * A small path router: patterns are `/`-separated literals and `:name` parameters, each parameter one
 * whole percent-decoded segment. A path that matches with another method is a 405 (with `Allow`), a
 * path that matches nothing a 404.
 */
export class Router<H> {
  private readonly routes: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): this {
    this.routes.push({ method, segments: pattern.split('/').slice(1), handler });
    return this;
  }

  /** The route for `method` and `path`; throws a 404, 405 or (undecodable segment) 400 {@link HttpError}. */
  match(method: string, path: string): RouteMatch<H> {
    const parts = path.split('/').slice(1);
    const allowed = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      const routeMethod = route.method;
      if (routeMethod === method || (method === 'HEAD' && routeMethod === 'GET')) {
        return { handler: route.handler, params };
      }
      allowed.add(routeMethod);
      if (routeMethod === 'GET') allowed.add('HEAD');
    }
    if (allowed.size > 0) {
      throw new HttpError(405, ApiErrorCode.MethodNotAllowed, `use ${[...allowed].join(' or ')} here`, {
        Allow: [...allowed].join(', '),
      });
    }
    throw notFound(`no such endpoint: ${method} ${path.slice(0, 200)}`);
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): RouteParams | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i] ?? '';
    const actual = parts[i] ?? '';
    if (expected.startsWith(':')) {
      if (actual === '') return undefined;
      params[expected.slice(1)] = decodeSegment(actual);
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(ApiErrorCode.BadRequest, 'the path holds an invalid percent-encoding');
  }
}

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { InvalidArgumentError } from '@sluice/core';

/**
 * The UI's files: hand-written HTML, one vanilla JS module and one stylesheet, shipped next to `src`
 * and `dist` in `ui/` and read at runtime, so the same path works from the TypeScript sources (tests)
 * and from the compiled package. No build step, no inline code (the CSP forbids it).
 */
export const UI_DIR = join(__dirname, '..', 'ui');

/** URL path (under the dashboard's base) → file in {@link UI_DIR}. */
const FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Serves the UI files, read once and kept in memory, with ETags for cheap revalidation. */
export class UiAssets {
  private readonly cache = new Map<string, Promise<Asset>>();

  constructor(private readonly dir: string = UI_DIR) {}

  /** Whether `path` is one of the UI's files. */
  has(path: string): boolean {
    return Object.hasOwn(FILES, path);
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const asset = await this.load(path);
    res.setHeader('ETag', asset.etag);
    // Not fingerprinted: browsers revalidate each time and get a 304 while the file is unchanged.
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Type', asset.type);
    if (req.headers['if-none-match'] === asset.etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.statusCode = 200;
    res.setHeader('Content-Length', asset.body.length);
    res.end(asset.body);
  }

  private load(path: string): Promise<Asset> {
    let asset = this.cache.get(path);
    if (!asset) {
      const entry = FILES[path];
      if (!entry) return Promise.reject(new InvalidArgumentError(`not a UI file: ${path}`));
      asset = readFile(join(this.dir, entry.file)).then((body) => ({
        body,
        type: entry.type,
        etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
      }));
      // A failed read (a broken install) is retried on the next request rather than cached.
      void asset.catch(() => this.cache.delete(path));
      this.cache.set(path, asset);
    }
    return asset;
  }
}

import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';

import type { RedisServerHandle } from './types';
import type * as Testcontainers from 'testcontainers';

/**
 * Docker engine detection without hanging: the places testcontainers looks at (DOCKER_HOST,
 * ~/.testcontainers.properties, the default and rootless sockets, the Windows pipe) are each sent a
 * `GET /_ping` with a short timeout. No candidate at all costs nothing (no import of testcontainers).
 */

export interface DockerCheckOptions {
  /** Overall budget for the check (default 2 000 ms). */
  readonly timeoutMs?: number;
  /** Environment to read DOCKER_HOST & co. from (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

interface Candidate {
  readonly request: RequestOptions;
  readonly tls: boolean;
}

function readProperties(): Record<string, string> {
  const file = join(homedir(), '.testcontainers.properties');
  const properties: Record<string, string> = {};
  if (!existsSync(file)) return properties;
  try {
    for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
      const match = /^\s*([\w.]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
      if (match?.[1] !== undefined && match[2] !== undefined) properties[match[1]] = match[2];
    }
  } catch {
    // unreadable: ignore
  }
  return properties;
}

function readCert(certPath: string, name: string): Buffer | undefined {
  try {
    return readFileSync(join(certPath, name));
  } catch {
    return undefined;
  }
}

function fromHost(
  host: string,
  tlsVerify: string | undefined,
  certPath: string | undefined,
): Candidate | undefined {
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    return undefined;
  }
  switch (url.protocol) {
    case 'unix:':
      return { request: { socketPath: url.pathname }, tls: false };
    case 'npipe:':
      return { request: { socketPath: url.pathname.replace(/\//g, '\\') }, tls: false };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = url.protocol === 'https:' || tlsVerify === '1';
      const request: RequestOptions & { ca?: Buffer; cert?: Buffer; key?: Buffer } = {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? (tls ? 2376 : 2375) : Number(url.port),
      };
      if (tls && certPath !== undefined) {
        const ca = readCert(certPath, 'ca.pem');
        const cert = readCert(certPath, 'cert.pem');
        const key = readCert(certPath, 'key.pem');
        if (ca) request.ca = ca;
        if (cert) request.cert = cert;
        if (key) request.key = key;
      }
      return { request, tls };
    }
    default:
      // ssh:// and friends are not supported by testcontainers' own strategies either.
      return undefined;
  }
}

function candidates(env: NodeJS.ProcessEnv): Candidate[] {
  const found: Candidate[] = [];
  const properties = readProperties();
  const tlsVerify = env['DOCKER_TLS_VERIFY'] ?? properties['docker.tls.verify'];
  const certPath = env['DOCKER_CERT_PATH'] ?? properties['docker.cert.path'];
  for (const host of [properties['tc.host'], env['DOCKER_HOST'] ?? properties['docker.host']]) {
    if (host === undefined || host === '') continue;
    const candidate = fromHost(host, tlsVerify, certPath);
    if (candidate) found.push(candidate);
  }
  if (process.platform === 'win32') {
    found.push({ request: { socketPath: '\\\\.\\pipe\\docker_engine' }, tls: false });
  } else {
    const sockets = ['/var/run/docker.sock', join(homedir(), '.docker', 'run', 'docker.sock')];
    const xdg = env['XDG_RUNTIME_DIR'];
    if (xdg !== undefined && xdg !== '') sockets.push(join(xdg, 'docker.sock'));
    sockets.push(join(homedir(), '.docker', 'desktop', 'docker.sock'));
    try {
      sockets.push(join('/run', 'user', String(userInfo().uid), 'docker.sock'));
    } catch {
      // no user info
    }
    for (const socketPath of sockets) {
      if (existsSync(socketPath)) found.push({ request: { socketPath }, tls: false });
    }
  }
  return found;
}

function ping(candidate: Candidate, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const send = candidate.tls ? httpsRequest : httpRequest;
    let settled = false;
    const settle = (value: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      resolve(value);
    };
    const request = send(
      { ...candidate.request, method: 'GET', path: '/_ping', agent: false },
      (response) => {
        response.resume();
        settle(response.statusCode === 200);
      },
    );
    const timer = setTimeout(() => {
      settle(false);
    }, timeoutMs);
    request.on('error', () => {
      settle(false);
    });
    request.end();
  }).catch(() => false);
}

const cache = new Map<string, Promise<boolean>>();

/** True when a Docker engine answers `/_ping` within the budget. Cached per set of candidates. */
export function isDockerAvailable(options: DockerCheckOptions = {}): Promise<boolean> {
  const found = candidates(options.env ?? process.env);
  if (found.length === 0) return Promise.resolve(false);
  const timeoutMs = options.timeoutMs ?? 2_000;
  const key = JSON.stringify(found.map((c) => [c.request.socketPath, c.request.host, c.request.port, c.tls]));
  let result = cache.get(key);
  if (!result) {
    result = Promise.all(found.map((c) => ping(c, timeoutMs))).then((answers) => answers.includes(true));
    cache.set(key, result);
  }
  return result;
}

export interface RedisContainerOptions {
  /** Image (default `$SLUICE_TEST_REDIS_IMAGE` or `redis:7`). */
  readonly image?: string;
  /** Startup budget including an image pull (default 120 000 ms). */
  readonly startTimeoutMs?: number;
}

/**
 * Starts `redis:7` with testcontainers, imported lazily: it is slow to load, needs Docker, and is an
 * optional peer dependency (`npm install --save-dev testcontainers` to use containers).
 */
export async function startRedisContainer(options: RedisContainerOptions = {}): Promise<RedisServerHandle> {
  let testcontainers: typeof Testcontainers;
  try {
    testcontainers = await import('testcontainers');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(
      'a Redis container needs the optional peer dependency testcontainers: npm install --save-dev testcontainers',
      { cause: error },
    );
  }
  const { GenericContainer, Wait } = testcontainers;
  const image = options.image ?? process.env['SLUICE_TEST_REDIS_IMAGE'] ?? 'redis:7';
  const container = await new GenericContainer(image)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
    .withWaitStrategy(
      Wait.forAll([Wait.forListeningPorts(), Wait.forLogMessage(/Ready to accept connections/)]),
    )
    .withStartupTimeout(options.startTimeoutMs ?? 120_000)
    .start();
  const host = container.getHost();
  const port = container.getMappedPort(6379);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let stopping: Promise<void> | undefined;
  return {
    url: `redis://${urlHost}:${port}`,
    host,
    port,
    source: 'container',
    owned: true,
    stop: () => {
      stopping ??= container.stop().then(() => undefined);
      return stopping;
    },
  };
}

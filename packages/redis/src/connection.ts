import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import StandaloneConnector from 'ioredis/built/connectors/StandaloneConnector';
import type { NetStream } from 'ioredis/built/types';
import type { Logger } from '@sluice/core';
import type { RedisClient } from './scripts';
import { checkServerVersion } from './server-version';

/**
 * How the store reaches Redis:
 *
 * - a URL: `redis://user:password@host:6379/0`, `rediss://…` for TLS;
 * - ioredis options: `{ host, port, username, password, tls: {…}, db, … }`;
 * - an existing ioredis `Redis` or `Cluster` client: used as is and never closed by the store;
 * - `{ cluster: { nodes, options } }`: a Redis Cluster from its startup nodes.
 *
 * The store opens its own extra connections (one for pub/sub, one per queue whose events are read) by
 * duplicating the main one, and closes those itself.
 *
 * ## Example
 * ```ts
 * new RedisStore({ connection: 'rediss://worker:s3cret@redis.internal:6380/0' });
 * new RedisStore({ connection: { host: 'redis.internal', username: 'worker', password, tls: { ca } } });
 * new RedisStore({ connection: existingIoredisClient }); // not closed by store.close()
 * new RedisStore({ connection: { cluster: { nodes: [{ host: '10.0.0.1', port: 7000 }] } } });
 * ```
 */
export type RedisConnection =
  | string
  | RedisOptions
  | Redis
  | Cluster
  | { readonly cluster: { readonly nodes: readonly ClusterNode[]; readonly options?: ClusterOptions } };

/**
 * ioredis' connector with one addition: a standing `'error'` listener on each socket. ioredis listens
 * with `once('error')`, and a TLS socket can emit a second error (a failed handshake followed by an
 * alert) that would then be unhandled and crash the process. The first error still reaches ioredis,
 * which reports and reconnects as usual.
 */
class GuardedConnector extends StandaloneConnector {
  // ioredis hands connectors its options untyped.
  constructor(options: unknown) {
    super(options as ConstructorParameters<typeof StandaloneConnector>[0]);
  }

  override async connect(onError: Parameters<StandaloneConnector['connect']>[0]): Promise<NetStream> {
    const stream = await super.connect(onError);
    stream.on('error', () => undefined);
    return stream;
  }
}

/**
 * Options of a connection the store opens. The store reads ioredis' classic reply shapes (ioredis 6's
 * default `replyMapping: 'legacy'`), so a `replyMapping` among the given options is left out.
 */
type StoreClientOptions = Omit<RedisOptions, 'replyMapping'>;

function storeClientOptions(options: RedisOptions | undefined): StoreClientOptions {
  // ioredis 5 has no `replyMapping`: the wider type lets this compile against both majors.
  const copy: RedisOptions & { replyMapping?: unknown } = { ...options };
  delete copy.replyMapping;
  return copy;
}

/**
 * Defaults for connections the store creates (given options win):
 * - `Connector`: {@link GuardedConnector};
 * - `maxRetriesPerRequest: 3`: while Redis is unreachable a call fails after a few reconnect attempts
 *   (the pipeline backs off and retries) instead of waiting for ever;
 * - `autoResendUnfulfilledCommands: false`: a command whose reply was lost with the connection is not
 *   sent again, so a reserve, settle or enqueue runs at most once per call (a lost reserve reply leaves
 *   leased jobs that lease recovery returns; a lost enqueue reply is an error the caller sees);
 * - `protocol: 2`: RESP2, as with ioredis 5 (ioredis 6 defaults to RESP3 and authenticates with HELLO,
 *   whose refusal of a missing password is a far less clear message than `NOAUTH Authentication
 *   required.`). ioredis 5 ignores the option.
 */
const CLIENT_DEFAULTS: StoreClientOptions = {
  protocol: 2,
  maxRetriesPerRequest: 3,
  autoResendUnfulfilledCommands: false,
  Connector: GuardedConnector,
};

function isClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function' &&
    typeof (value as { evalsha?: unknown }).evalsha === 'function'
  );
}

function isClusterSpec(value: RedisConnection): value is {
  readonly cluster: { readonly nodes: readonly ClusterNode[]; readonly options?: ClusterOptions };
} {
  return typeof value === 'object' && 'cluster' in value && typeof value.cluster === 'object';
}

/** The connections of one store: the main one and the extra ones it opens. */
export class Connections {
  readonly main: RedisClient;
  readonly cluster: boolean;
  private readonly ownsMain: boolean;
  private readonly owned = new Set<RedisClient>();
  private readonly logger: Logger;
  private lastWarning = 0;
  /** The latest connection error (a refused connection, a bad certificate, wrong credentials). */
  lastError: Error | undefined;

  constructor(connection: RedisConnection, logger: Logger) {
    this.logger = logger;
    if (isClient(connection)) {
      this.main = connection;
      this.ownsMain = false;
    } else if (typeof connection === 'string') {
      this.main = new Redis(connection, CLIENT_DEFAULTS);
      this.ownsMain = true;
    } else if (isClusterSpec(connection)) {
      const options = connection.cluster.options ?? {};
      this.main = new Cluster([...connection.cluster.nodes], {
        ...options,
        redisOptions: { ...CLIENT_DEFAULTS, ...storeClientOptions(options.redisOptions) },
      });
      this.ownsMain = true;
    } else {
      this.main = new Redis({ ...CLIENT_DEFAULTS, ...storeClientOptions(connection) });
      this.ownsMain = true;
    }
    this.cluster = this.main.isCluster;
    if (this.ownsMain) this.watch(this.main, 'main');
  }

  /**
   * A new connection like the main one (same address, credentials, TLS), owned by the store.
   * `blocking` connections (stream readers) get no command timeout.
   */
  duplicate(purpose: string, blocking = false): RedisClient {
    const client: RedisClient = this.main.isCluster
      ? (this.main as Cluster).duplicate([], {
          redisOptions: {
            ...storeClientOptions((this.main as Cluster).options.redisOptions),
            ...CLIENT_DEFAULTS,
            ...(blocking ? { commandTimeout: undefined, maxRetriesPerRequest: null } : {}),
          },
        })
      : (this.main as Redis).duplicate({
          ...CLIENT_DEFAULTS,
          lazyConnect: false,
          ...(blocking ? { commandTimeout: undefined, maxRetriesPerRequest: null } : {}),
        });
    this.owned.add(client);
    this.watch(client, purpose);
    return client;
  }

  /**
   * The connection the store's pub/sub listens on: like {@link duplicate}; on a Cluster, one whose
   * sharded subscriptions (`SSUBSCRIBE`) go to the master owning each channel's slot, over one
   * connection per master that holds a subscribed channel (ioredis' `shardedSubscribers`).
   */
  subscriber(): RedisClient {
    if (!this.main.isCluster) return this.duplicate('subscriber');
    const main = this.main as Cluster;
    const client = main.duplicate([], {
      shardedSubscribers: true,
      redisOptions: { ...storeClientOptions(main.options.redisOptions), ...CLIENT_DEFAULTS },
    });
    this.owned.add(client);
    this.watch(client, 'subscriber');
    return client;
  }

  /**
   * Closes one connection the store opened: at once for a blocking reader (nothing to flush, and a
   * pending `XREAD BLOCK` would hold a graceful QUIT back), else gracefully.
   */
  async release(client: RedisClient, immediately = false): Promise<void> {
    if (!this.owned.delete(client)) return;
    if (immediately) client.disconnect();
    else await quit(client);
  }

  /** Where the main connection points, for messages: `host:port` (or the socket path). */
  address(): string {
    if (this.main.isCluster) return 'the Redis Cluster';
    const { host, port, path } = (this.main as Redis).options;
    return path ?? `${host ?? '127.0.0.1'}:${String(port ?? 6379)}`;
  }

  /**
   * Resolves once the main connection answers, rejecting at once when the server is older than Redis
   * 7.0 (with its version and the minimum in the message), whether the store opened the connection or
   * was given it.
   */
  async checkServer(): Promise<void> {
    await checkServerVersion(this.main, this.address());
  }

  /** Closes every connection the store opened; leaves a client it was given alone. */
  async close(): Promise<void> {
    const owned = [...this.owned];
    this.owned.clear();
    await Promise.all(owned.map((c) => quit(c)));
    if (this.ownsMain) await quit(this.main);
  }

  /** Connection errors are expected while Redis restarts; log them at most once a second. */
  private watch(client: RedisClient, purpose: string): void {
    client.on('error', (error: unknown) => {
      this.lastError = error instanceof Error ? error : new Error(String(error));
      const now = Date.now();
      if (now - this.lastWarning < 1000) return;
      this.lastWarning = now;
      this.logger.warn('redis connection error', {
        connection: purpose,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }
}

async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    // Not connected (yet): nothing to flush; stop any reconnect loop now.
    client.disconnect();
    return;
  }
  try {
    await Promise.race([
      client.quit(),
      new Promise((resolve) => {
        setTimeout(resolve, 1000).unref();
      }),
    ]);
  } catch {
    // already closing or unreachable: disconnect below
  }
  client.disconnect();
}

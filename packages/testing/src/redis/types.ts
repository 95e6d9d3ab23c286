/** Where a Redis used by a test came from. */
export type RedisSource = 'env' | 'container' | 'spawned';

/** A Redis server a test can talk to. */
export interface RedisServerHandle {
  /** `redis://host:port` (with `:password@` when the harness set a `requirepass`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly source: RedisSource;
  /**
   * True when the harness started the server (container or process) and `stop()` tears it down.
   * False for a server given by `REDIS_URL`: `stop()` is then a no-op and the data is never flushed.
   */
  readonly owned: boolean;
  /** Tears down an owned server; idempotent; a no-op for servers the harness does not own. */
  stop(): Promise<void>;
}

/** A `redis-server` process started by the harness, with the controls fault tests need. */
export interface SpawnedRedis extends RedisServerHandle {
  readonly source: 'spawned';
  readonly owned: true;
  /** Pid of the current process (changes after `restart()`). */
  readonly pid: number;
  /** The server's private working directory (`--dir`): redis.conf, redis.log, AOF/RDB files. */
  readonly dir: string;
  /** Path of the server log inside `dir`. */
  readonly logFile: string;
  /** True while the process runs (also while paused). */
  readonly running: boolean;
  /** Sends `signal` (default `SIGKILL`) and waits until the process has exited. Keeps `dir`. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts the server again on the same port with the same dir and config, so an AOF/RDB is replayed.
   * If it is still running it is first shut down gracefully (SIGTERM). Resolves when it answers again
   * (not while it is still loading its data set).
   */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its socket open but stops answering. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
}

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** A Redis Cluster a test can talk to. */
export interface RedisClusterHandle {
  /** Addresses of the masters. */
  readonly nodes: readonly RedisNodeAddress[];
  readonly source: 'env' | 'spawned';
  /** True when the harness started the nodes; false for `REDIS_CLUSTER_NODES`. */
  readonly owned: boolean;
  /** The spawned node processes, in `nodes` order (empty for `REDIS_CLUSTER_NODES`). */
  readonly servers: readonly SpawnedRedis[];
  /**
   * The spawned replicas (`replicas` per master), each with the address of its master, as the Cluster
   * set them up: a replica promoted by a failover stays in this list.
   */
  readonly replicas: readonly { readonly server: SpawnedRedis; readonly master: RedisNodeAddress }[];
  /** Kills every spawned node and removes their dirs; idempotent; a no-op when not owned. */
  stop(): Promise<void>;
}

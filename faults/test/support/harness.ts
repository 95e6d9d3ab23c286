import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { Queue, type JobOptions, type QueueStats } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import {
  clusterStartupNodes,
  spawnRedis,
  spawnRedisCluster,
  uniquePrefix,
  type SpawnedRedis,
  type SpawnRedisOptions,
} from '@sluice/testing';
import type { ConnectionSpec, JobData, ProducerProgramConfig, WorkerProgramConfig } from '../../src/protocol';
import { toConnection } from '../../src/program';
import { killAllPrograms, spawnWorker, startProducer, type ProgramProcess } from './programs';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits for `promise` to settle, or `ms` at most, and leaves no timer behind: a timer still pending
 * when a test file ends keeps its Jest worker alive past the run, and Jest then force-exits it
 * ("A worker process has failed to exit gracefully").
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.then(noop, noop), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function noop(): void {
  // settled either way
}

/** Waits until `predicate` resolves true, checking every `everyMs`; false after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

export interface HarnessOptions extends SpawnRedisOptions {
  /** Names the key prefix and the ledger directory. */
  readonly label: string;
  /** How the test's own store and the programs connect. Default: the server's URL. */
  readonly connection?: (redis: SpawnedRedis) => ConnectionSpec;
  /**
   * A 3-master Redis Cluster of its own instead of one server (the store and the programs connect
   * to it; `redis` and `admin` are not available, `cluster` is the admin client).
   */
  readonly cluster?: boolean;
}

/** What a harness stops when it is disposed: its server, or every node of its Cluster. */
interface Servers {
  readonly single?: SpawnedRedis;
  stop(): Promise<void>;
}

/** Every harness not yet disposed, so `disposeAll` can clean up after a failed test. */
const open = new Set<Harness>();

/**
 * One fault test's world: its own `redis-server` (never the one on 6379), a key prefix, a ledger
 * directory, the test's own `RedisStore` and an admin client, and the programs it starts.
 * `dispose()` stops all of it.
 */
export class Harness {
  readonly prefix: string;
  readonly ledgerDir: string;
  readonly programs: ProgramProcess[] = [];
  private disposed = false;

  private constructor(
    private readonly servers: Servers,
    readonly connection: ConnectionSpec,
    readonly store: RedisStore,
    private readonly adminClient: Redis | Cluster,
    prefix: string,
    ledgerDir: string,
  ) {
    this.prefix = prefix;
    this.ledgerDir = ledgerDir;
    open.add(this);
  }

  /** The harness' own server (not on a Cluster harness). */
  get redis(): SpawnedRedis {
    if (!this.servers.single) throw new Error('a Cluster harness has no single server');
    return this.servers.single;
  }

  /** An admin client on the server (not on a Cluster harness: see `cluster`). */
  get admin(): Redis {
    if (this.adminClient instanceof Cluster) throw new Error('a Cluster harness has no single-server client');
    return this.adminClient;
  }

  /** An admin client on the Cluster (a Cluster harness only). */
  get cluster(): Cluster {
    if (!(this.adminClient instanceof Cluster)) throw new Error('not a Cluster harness');
    return this.adminClient;
  }

  static async start(options: HarnessOptions): Promise<Harness> {
    const { label, connection, cluster, ...redisOptions } = options;
    if (cluster) return Harness.startCluster(label);
    const redis = await spawnRedis(redisOptions);
    try {
      const spec = connection ? connection(redis) : redis.url;
      if (typeof spec !== 'string' && 'cluster' in spec)
        throw new Error('a Cluster harness: use cluster: true');
      const prefix = uniquePrefix(label);
      const store = await RedisStore.connect({ connection: toConnection(spec), prefix });
      const adminOptions = { maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false };
      const admin =
        typeof spec === 'string'
          ? new Redis(spec, adminOptions)
          : new Redis({ ...spec, ...(spec.tls ? { tls: { ...spec.tls } } : {}), ...adminOptions });
      admin.on('error', () => undefined);
      const ledgerDir = mkdtempSync(join(tmpdir(), `sluice-faults-${label}-`));
      return new Harness({ single: redis, stop: () => redis.stop() }, spec, store, admin, prefix, ledgerDir);
    } catch (error) {
      await redis.stop();
      throw error;
    }
  }

  private static async startCluster(label: string): Promise<Harness> {
    const nodes = await spawnRedisCluster();
    try {
      const startup = clusterStartupNodes(nodes);
      const spec: ConnectionSpec = { cluster: startup };
      const prefix = uniquePrefix(label);
      const store = await RedisStore.connect({ connection: { cluster: { nodes: startup } }, prefix });
      const admin = new Cluster(startup, { redisOptions: { maxRetriesPerRequest: 1 } });
      admin.on('error', () => undefined);
      const ledgerDir = mkdtempSync(join(tmpdir(), `sluice-faults-${label}-`));
      return new Harness({ stop: () => nodes.stop() }, spec, store, admin, prefix, ledgerDir);
    } catch (error) {
      await nodes.stop();
      throw error;
    }
  }

  /** A worker program's configuration on this harness; `overrides` win. */
  workerConfig(
    name: string,
    queue: string,
    overrides: Partial<WorkerProgramConfig> = {},
  ): WorkerProgramConfig {
    return {
      name,
      connection: this.connection,
      prefix: this.prefix,
      queue,
      ledgerDir: this.ledgerDir,
      concurrency: 10,
      leaseMs: 2000,
      ...overrides,
    };
  }

  async startWorker(
    name: string,
    queue: string,
    overrides: Partial<WorkerProgramConfig> = {},
  ): Promise<ProgramProcess> {
    const p = spawnWorker(name, this.workerConfig(name, queue, overrides));
    this.programs.push(p);
    await p.waitReady();
    return p;
  }

  async startProducer(
    name: string,
    queue: string,
    config: Pick<ProducerProgramConfig, 'idPrefix' | 'total' | 'batch' | 'everyMs'> & { data?: JobData },
  ): Promise<ProgramProcess> {
    const p = await startProducer(name, {
      name,
      connection: this.connection,
      prefix: this.prefix,
      queue,
      ledgerDir: this.ledgerDir,
      ...config,
    });
    this.programs.push(p);
    return p;
  }

  /**
   * Keeps every finished job record of the queue (the default keeps the newest 1,000), so the final
   * state of every job can be read back.
   */
  async keepAllRecords(queue: string): Promise<void> {
    await this.store.setQueueConfig(queue, { retention: { keep: 'count', count: 1_000_000_000 } });
  }

  /** Adds `count` jobs through the public `Queue`, in bulk calls of 10,000; returns their ids in order. */
  async enqueue(
    queue: string,
    count: number,
    data: (n: number) => JobData = (n) => ({ n }),
    options: JobOptions = {},
  ): Promise<string[]> {
    const q = new Queue<JobData>(this.store, queue);
    const ids: string[] = [];
    for (let start = 0; start < count; start += 10_000) {
      const items = [];
      for (let n = start; n < Math.min(count, start + 10_000); n++) items.push({ data: data(n), options });
      for (const r of await q.addBulk(items)) ids.push(r.id);
    }
    return ids;
  }

  /**
   * Waits until nothing of the queue is ready, scheduled or running and at least `expected` jobs have
   * finished; returns the last stats either way (the reconciliation then names what is missing).
   */
  async waitForQuiet(queue: string, expected: number, timeoutMs: number): Promise<QueueStats> {
    let last: QueueStats | undefined;
    await waitFor(
      async () => {
        last = await this.store.stats(queue).catch(() => last);
        if (!last) return false;
        const { ready, scheduled, running, completed, dead, cancelled } = last.counts;
        return ready + scheduled + running === 0 && completed + dead + cancelled >= expected;
      },
      timeoutMs,
      200,
    );
    return last ?? (await this.store.stats(queue));
  }

  /** SIGTERM every program still running (SIGKILL after `graceMs`). */
  async stopPrograms(graceMs = 10_000): Promise<void> {
    await Promise.all(this.programs.filter((p) => p.alive).map((p) => p.terminate(graceMs)));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    open.delete(this);
    await Promise.all(this.programs.filter((p) => p.alive).map((p) => p.kill()));
    await this.store.close().catch(() => undefined);
    // QUIT rather than disconnect: a client dropped without it keeps a timer alive for two seconds.
    await settledWithin(this.adminClient.quit(), 1000);
    this.adminClient.disconnect();
    await this.servers.stop();
    if (process.env['FAULTS_KEEP'] !== '1') rmSync(this.ledgerDir, { recursive: true, force: true });
  }
}

/** Disposes every harness a test left open and kills stray programs (for `afterEach`). */
export async function disposeAll(): Promise<void> {
  await Promise.all([...open].map((h) => h.dispose()));
  await killAllPrograms();
}

/** `afterEach` clean-up for a fault test file. */
export function useCleanup(): void {
  afterEach(async () => {
    await disposeAll();
  }, 60_000);
}

import { deleteKeysWithPrefix, RedisStore, type RedisClient } from '@sluice/redis';
import { spawnRedis, type SpawnedRedis } from '@sluice/testing';

/** Redis's own CPU time and per-command counters, read with `INFO`. */
export interface RedisCounters {
  /** `used_cpu_user + used_cpu_sys` of the server, seconds. */
  readonly cpuSeconds: number;
  /** `INFO commandstats`: calls and total µs per command (scripts show as `evalsha`). */
  readonly commands: Readonly<Record<string, { readonly calls: number; readonly usec: number }>>;
}

/**
 * The Redis a benchmark runs against, and the only code that touches it outside the two systems.
 *
 * By default it starts its own `redis-server` (`spawnRedis` from `@sluice/testing`: a free loopback
 * port, `save ""`, `appendonly no`), and between runs clears it with `FLUSHALL` and `CONFIG RESETSTAT`.
 * With `BENCH_REDIS_URL` it uses that server and never flushes it or resets its statistics: each run
 * has its own key prefix and only keys under that prefix are deleted afterwards.
 */
export class RedisTarget {
  private constructor(
    readonly url: string,
    /** True when this process started the server (and may flush it). */
    readonly owned: boolean,
    private readonly server: SpawnedRedis | undefined,
    private readonly adminStore: RedisStore,
  ) {}

  /** Starts a private server, or connects to `url` (never flushed) when given. */
  static async open(url?: string): Promise<RedisTarget> {
    const server =
      url === undefined ? await spawnRedis({ appendonly: false, config: { save: '' } }) : undefined;
    const target = server?.url ?? url ?? '';
    try {
      // A store opened only for its connection (`store.client`); it never writes a key.
      const admin = await RedisStore.connect({ url: target, prefix: 'sluice-bench-admin' });
      return new RedisTarget(target, server !== undefined, server, admin);
    } catch (error) {
      await server?.stop();
      throw error;
    }
  }

  private get client(): RedisClient {
    return this.adminStore.client;
  }

  /** `INFO <section>` as a map of fields. */
  async info(section: string): Promise<Map<string, string>> {
    const text = await this.client.info(section);
    const fields = new Map<string, string>();
    for (const line of text.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
    }
    return fields;
  }

  async version(): Promise<string> {
    return (await this.info('server')).get('redis_version') ?? 'unknown';
  }

  /** Every key matching `pattern` (`SCAN`, 1,000 at a time). */
  async keys(pattern: string): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  }

  /** `used_memory` in bytes. */
  async usedMemory(): Promise<number> {
    return Number((await this.info('memory')).get('used_memory'));
  }

  async counters(): Promise<RedisCounters> {
    const cpu = await this.info('cpu');
    const commands: Record<string, { calls: number; usec: number }> = {};
    for (const [key, value] of await this.info('commandstats')) {
      const calls = /calls=(\d+)/.exec(value);
      const usec = /usec=(\d+)/.exec(value);
      commands[key.replace(/^cmdstat_/, '')] = { calls: Number(calls?.[1]), usec: Number(usec?.[1]) };
    }
    return {
      cpuSeconds: Number(cpu.get('used_cpu_user')) + Number(cpu.get('used_cpu_sys')),
      commands,
    };
  }

  /**
   * Makes the server ready for the next run: on a private server `FLUSHALL` and `CONFIG RESETSTAT`;
   * on a `BENCH_REDIS_URL` server, deletes the keys under each of the run's prefixes (nothing else).
   */
  async reset(prefixes: readonly string[]): Promise<void> {
    if (this.owned) {
      await this.client.flushall();
      await this.client.config('RESETSTAT');
      return;
    }
    for (const prefix of prefixes) await deleteKeysWithPrefix(this.client, prefix);
  }

  /** Closes the admin connection and stops the server if this process started it. */
  async close(): Promise<void> {
    await this.adminStore.close();
    await this.server?.stop();
  }
}

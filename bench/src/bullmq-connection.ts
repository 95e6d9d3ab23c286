import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ connection options for a `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS).
 * BullMQ opens and configures its own ioredis connections from these (its blocking connection needs
 * `maxRetriesPerRequest: null`, which it sets itself).
 */
export function bullmqConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db > 0 ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * Finished-job retention of every BullMQ worker in the benchmarks: the newest 1,000 completed jobs,
 * as Sluice keeps by default (`DEFAULT_RETENTION`). Failed jobs are kept, as Sluice keeps its
 * dead-letter list (no job fails in these benchmarks). Set on the Worker, not on each job, so job
 * records do not carry it.
 */
export const BULLMQ_KEEP_COMPLETED = { count: 1000 } as const;

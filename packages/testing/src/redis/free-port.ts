import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** Offset Redis Cluster adds to a node's port for its cluster bus (unless `cluster-port` is set). */
export const CLUSTER_BUS_OFFSET = 10_000;

const MAX_PORT = 65_535;

function listenOnce(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(undefined);
      else reject(error);
    });
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => {
        resolve(bound);
      });
    });
  });
}

/** True when nothing listens on `host:port` right now (we could bind it). */
export async function isPortFree(port: number, host: string = LOOPBACK): Promise<boolean> {
  return (await listenOnce(port, host)) !== undefined;
}

/**
 * A port that was free a moment ago, chosen by the kernel (bind to port 0). The kernel does not hand
 * the same port to parallel callers, but someone may still grab it before we use it: callers retry
 * their start on EADDRINUSE.
 */
export async function getFreePort(host: string = LOOPBACK): Promise<number> {
  const port = await listenOnce(0, host);
  if (port === undefined) throw new Error(`could not bind an ephemeral port on ${host}`);
  return port;
}

/** A free port whose cluster bus port (`port + 10000`) is free as well. */
export async function getFreeClusterPort(host: string = LOOPBACK): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await getFreePort(host);
    const bus = port + CLUSTER_BUS_OFFSET;
    if (bus <= MAX_PORT && (await isPortFree(bus, host))) return port;
  }
  throw new Error(`could not find a free port p on ${host} with p + ${CLUSTER_BUS_OFFSET} free as well`);
}

import type { RedisConnection } from '@sluice/redis';
import type { ConnectionSpec, ProgramMessage, ResourceSample } from './protocol';

/** The JSON configuration a fault program was started with (`argv[2]`). */
export function readConfig(): unknown {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: node <program>.js <JSON config>');
  return JSON.parse(raw);
}

/** A {@link ConnectionSpec} as the store takes it. */
export function toConnection(spec: ConnectionSpec): RedisConnection {
  if (typeof spec === 'string') return spec;
  if ('cluster' in spec)
    return { cluster: { nodes: spec.cluster.map((n) => ({ host: n.host, port: n.port })) } };
  const { tls, ...rest } = spec;
  return tls ? { ...rest, tls: { ...tls } } : { ...rest };
}

/** Sends a message to the parent over IPC; resolves once it is written (at once without a parent). */
export function send(message: ProgramMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(message, () => {
      resolve();
    });
  });
}

/** Commands a client sent, in total and by name (`evalsha` counts each script call). */
export interface CommandCounts {
  total: number;
  readonly byName: Record<string, number>;
}

/** Counts the commands a client sends, by wrapping its `sendCommand`. */
export function countCommands(client: object): CommandCounts {
  const counts: CommandCounts = { total: 0, byName: {} };
  const target = client as { sendCommand: (command: { name?: unknown }, ...rest: unknown[]) => unknown };
  const original = target.sendCommand.bind(client);
  target.sendCommand = (command, ...rest): unknown => {
    counts.total++;
    const name = typeof command.name === 'string' ? command.name : '?';
    counts.byName[name] = (counts.byName[name] ?? 0) + 1;
    return original(command, ...rest);
  };
  return counts;
}

/** This process's resource figures now. */
export function sampleResources(commands: CommandCounts): ResourceSample {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    at: Date.now(),
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuMs: (cpu.user + cpu.system) / 1000,
    commands: commands.total,
    commandsByName: { ...commands.byName },
  };
}

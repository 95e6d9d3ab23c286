import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLedgerLine, type LedgerEntry } from '../../src/protocol';

/** The ledger of one process: `<name>-<pid>.log`. */
export interface ProcessLedger {
  readonly file: string;
  readonly name: string;
  readonly pid: number;
  readonly entries: readonly LedgerEntry[];
}

type Tagged<T extends LedgerEntry['tag']> = Extract<LedgerEntry, { tag: T }>;

/** Every ledger file of a directory, parsed. */
export class Ledgers {
  constructor(readonly processes: readonly ProcessLedger[]) {}

  static read(dir: string): Ledgers {
    const processes: ProcessLedger[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.log'))) {
      const match = /^(.*)-(\d+)\.log$/.exec(file);
      const entries: LedgerEntry[] = [];
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        const entry = line === '' ? undefined : parseLedgerLine(line);
        if (entry) entries.push(entry);
      }
      processes.push({ file, name: match?.[1] ?? file, pid: Number(match?.[2] ?? -1), entries });
    }
    return new Ledgers(processes);
  }

  /** The ledger of the process with this pid. */
  of(pid: number): ProcessLedger | undefined {
    return this.processes.find((p) => p.pid === pid);
  }

  /** Every entry with this tag, across processes, with the process it came from. */
  all<T extends LedgerEntry['tag']>(tag: T): (Tagged<T> & { readonly pid: number })[] {
    const out: (Tagged<T> & { readonly pid: number })[] = [];
    for (const p of this.processes) {
      for (const e of p.entries) if (e.tag === tag) out.push({ ...(e as Tagged<T>), pid: p.pid });
    }
    return out;
  }

  /** Handler executions (`S` lines) per job id. */
  executions(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const p of this.processes) {
      for (const e of p.entries) if (e.tag === 'S') counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
    }
    return counts;
  }

  /** The outcome the store acknowledged last for each job (`A` lines). */
  acknowledged(): Map<string, { readonly outcome: string; readonly at: number }> {
    const acks = new Map<string, { outcome: string; at: number }>();
    for (const p of this.processes) {
      for (const e of p.entries) {
        if (e.tag !== 'A') continue;
        const previous = acks.get(e.id);
        if (!previous || previous.at <= e.at) acks.set(e.id, { outcome: e.outcome, at: e.at });
      }
    }
    return acks;
  }

  /** Warnings and errors the workers logged, counted by message. */
  logCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.all('L'))
      counts.set(`${e.level}: ${e.message}`, (counts.get(`${e.level}: ${e.message}`) ?? 0) + 1);
    return counts;
  }
}

/**
 * Jobs a process started and never saw acknowledged: what it held in its handlers when it died.
 */
export function unacknowledgedStarts(ledger: ProcessLedger): string[] {
  const acked = new Set<string>();
  for (const e of ledger.entries) if (e.tag === 'A') acked.add(e.id);
  const started = new Set<string>();
  for (const e of ledger.entries) if (e.tag === 'S' && !acked.has(e.id)) started.add(e.id);
  return [...started];
}

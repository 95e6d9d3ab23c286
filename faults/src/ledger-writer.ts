import { closeSync, openSync, writeSync } from 'node:fs';
import { formatLedgerEntry, type LedgerEntry } from './protocol';

/**
 * Appends ledger entries to a file of this process (see `protocol.ts`).
 *
 * In `sync` mode each entry is one `write(2)`: once `write` returns, the line is in the kernel and
 * survives a `SIGKILL` of this process. In `buffered` mode entries are joined and written every
 * `flushEveryMs` and by {@link flush} (for runs without kills, where a write per job would cost more
 * than the work).
 */
export class LedgerWriter {
  private readonly fd: number;
  private buffer: string[] = [];
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly mode: 'sync' | 'buffered' = 'sync',
    flushEveryMs = 200,
  ) {
    this.fd = openSync(path, 'a');
    if (mode === 'buffered') {
      this.timer = setInterval(() => {
        this.flush();
      }, flushEveryMs);
      this.timer.unref();
    }
  }

  write(entry: LedgerEntry): void {
    const line = `${formatLedgerEntry(entry)}\n`;
    if (this.mode === 'sync') writeSync(this.fd, line);
    else this.buffer.push(line);
  }

  flush(): void {
    if (this.buffer.length === 0) return;
    const text = this.buffer.join('');
    this.buffer = [];
    writeSync(this.fd, text);
  }

  close(): void {
    this.flush();
    if (this.timer) clearInterval(this.timer);
    closeSync(this.fd);
  }
}

import type { WorkerProgramConfig } from '../../src/protocol';
import type { Harness } from './harness';
import { describeExit, type ProgramProcess } from './programs';

/**
 * Keeps `count` worker processes running, as a process manager would: a worker that dies (a handler
 * called `process.exit`, an uncaught exception) is started again at once. `stop()` ends the
 * restarts and drains the workers with SIGTERM.
 */
export class Supervisor {
  /** How each unexpected exit ended (`code 3`, `code 1`, …), in order. */
  readonly crashes: string[] = [];
  private readonly slots: ProgramProcess[] = [];
  private stopping = false;
  private restarts: Promise<void> = Promise.resolve();

  private constructor(
    private readonly h: Harness,
    private readonly queue: string,
    private readonly options: Partial<WorkerProgramConfig>,
  ) {}

  static async start(
    h: Harness,
    queue: string,
    count: number,
    options: Partial<WorkerProgramConfig>,
  ): Promise<Supervisor> {
    const s = new Supervisor(h, queue, options);
    for (let i = 0; i < count; i++) await s.launch(i);
    return s;
  }

  get workers(): readonly ProgramProcess[] {
    return this.slots;
  }

  private async launch(slot: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const p = await this.h.startWorker(`s${String(slot)}`, this.queue, this.options);
        this.slots[slot] = p;
        void p.exited.then((exit) => {
          if (this.stopping) return;
          this.crashes.push(describeExit(exit));
          this.restarts = this.restarts.then(() => (this.stopping ? undefined : this.launch(slot)));
        });
        return;
      } catch (error) {
        // It died before reporting ready (it took a poison job at once): count it and start another.
        const last = this.h.programs[this.h.programs.length - 1];
        this.crashes.push(last ? describeExit(last.exitInfo) : 'failed to start');
        if (this.stopping || attempt >= 20) throw error;
      }
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await this.restarts;
    await Promise.all(this.slots.filter((p) => p.alive).map((p) => p.terminate(graceMs)));
  }
}

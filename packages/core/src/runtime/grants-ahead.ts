import type { Demand } from './demand';

/** Rounds of units (one per handler) that found a handler in time before the jobs ahead grow. */
const GROW_AFTER_ROUNDS = 8;

/** Configuration of {@link GrantsAhead}. */
export interface GrantsAheadConfig {
  /** The pipeline's demand channel; its budget includes `most(concurrency)` jobs ahead. */
  readonly demand: Demand;
  /** The most jobs the budget lets the limit grant ahead of their slots, for a concurrency. */
  readonly most: (concurrency: number) => number;
  /** Jobs per handler call (the step the jobs ahead grow by). */
  readonly unitSize: number;
  /**
   * How long a unit may wait for a free handler once its slot has come: well inside the margin in
   * which the gate starts it (past that it is moved, a store call that holds the handler).
   */
  readonly waitMs: number;
  /** The concurrency the run starts with. */
  readonly concurrency: number;
  /** Told the jobs the limit may grant ahead each time that changes (telemetry). */
  readonly changed?: (aheadJobs: number) => void;
}

/**
 * Keeps a rate-limited pipeline's jobs granted ahead of their slots within what its handlers take.
 *
 * A limit grants jobs a lead ahead of their slots so that each slot is known before it comes. A job
 * whose slot has come still needs a free handler; while every handler is busy it waits, and past its
 * margin the gate must move it (a store call, holding a handler). When the limit binds, handlers are
 * mostly free and the jobs ahead never wait; when the handlers bind (a limit far above what they
 * reach), the jobs ahead are the ones that wait.
 *
 * So the jobs ahead follow how long units waited for a handler (`waited`, told by the start gate). A
 * unit that waited longer than `waitMs` shows every handler busy: no more jobs are granted ahead (the
 * ones already granted still come, so no second cut is made before they have). After 8 rounds of
 * units (8 × `concurrency`) that all found a handler in time, the jobs ahead double (from one unit's
 * jobs) up to the budget's `most(concurrency)`. The jobs held back are withdrawn from the demand: a
 * pipeline whose handlers bind reserves a job when a handler frees (a round trip and the lead,
 * instead of a move), and probes with one unit ahead every 8 rounds.
 *
 * ```
 * handlers bind:  ahead 2c ─(a unit waited)─► 0 ─(8 rounds in time)─► 1 ─(waited)─► 0 ─► …
 * limit binds:    ahead 2c (units wait for their slots, never for a handler)
 * ```
 */
export class GrantsAhead {
  private concurrency: number;
  /** Jobs ahead allowed now, before the cap of the current concurrency (Infinity: up to the cap). */
  private ahead = Infinity;
  private withheld = 0;
  /** Units admitted in time since the jobs ahead last grew or were cut. */
  private inTime = 0;
  /** Admissions to let pass before another cut (the jobs that were ahead when the last was made). */
  private holdCuts = 0;

  constructor(private readonly config: GrantsAheadConfig) {
    this.concurrency = config.concurrency;
  }

  /** Jobs granted ahead that the budget allows now. */
  get allowed(): number {
    return this.config.most(this.concurrency) - this.withheld;
  }

  /** The worker changed the concurrency (it adjusted the demand by the whole budget's change). */
  concurrencyChanged(concurrency: number): void {
    this.concurrency = concurrency;
    this.fit();
  }

  /** A unit whose slot had come waited `ms` for a free handler before its start was decided. */
  waited(ms: number): void {
    const { waitMs, unitSize, most } = this.config;
    if (this.holdCuts > 0) this.holdCuts--;
    if (ms > waitMs) {
      this.inTime = 0;
      if (this.holdCuts > 0 || this.ahead === 0) return;
      // The handlers are all busy: every job ahead would wait too (those already granted do).
      this.holdCuts = Math.ceil(Math.min(this.ahead, most(this.concurrency)) / unitSize);
      this.ahead = 0;
      this.fit();
      return;
    }
    if (++this.inTime < GROW_AFTER_ROUNDS * this.concurrency) return;
    this.inTime = 0;
    if (this.ahead === Infinity) return;
    const grown = Math.max(unitSize, 2 * this.ahead);
    this.ahead = grown >= most(this.concurrency) ? Infinity : grown;
    this.fit();
  }

  private fit(): void {
    const cap = this.config.most(this.concurrency);
    const withheld = cap - Math.min(cap, this.ahead);
    if (withheld !== this.withheld) {
      this.config.demand.adjust(this.withheld - withheld);
      this.withheld = withheld;
      this.config.changed?.(cap - withheld);
    }
  }
}

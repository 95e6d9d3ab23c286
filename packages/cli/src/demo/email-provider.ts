import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError } from '@sluice/core';

export interface Email {
  readonly to: string;
  readonly subject: string;
}

export interface ProviderOptions {
  /** Share of calls that fail with a transient error (a 503). Default 0.02. */
  readonly transientFailureRate?: number;
  /** Share of addresses that bounce for good. Default 0.002. */
  readonly hardBounceRate?: number;
  /** Latency of one call, in ms: uniform in [min, max]. Default [2, 8]. */
  readonly latencyMs?: readonly [number, number];
  /** Source of randomness in [0, 1). */
  readonly random?: () => number;
}

/**
 * A simulated transactional-email provider: a few ms per call, ~2% transient failures (retried) and a
 * few hard bounces (dead-lettered). It records when each call started, so the demo can check the rate
 * limit against what actually happened.
 */
export class SimulatedEmailProvider {
  readonly callStarts: number[] = [];
  private readonly transient: number;
  private readonly hardBounce: number;
  private readonly latency: readonly [number, number];
  private readonly random: () => number;

  constructor(options: ProviderOptions = {}) {
    this.transient = options.transientFailureRate ?? 0.02;
    this.hardBounce = options.hardBounceRate ?? 0.002;
    this.latency = options.latencyMs ?? [2, 8];
    this.random = options.random ?? Math.random;
  }

  async send(email: Email, signal: AbortSignal): Promise<string> {
    this.callStarts.push(Date.now());
    const [min, max] = this.latency;
    await sleep(min + this.random() * (max - min), undefined, { signal });
    if (email.to.startsWith('bounce')) throw new PermanentError(`hard bounce: ${email.to} does not exist`);
    if (this.random() < this.transient) throw new Error('503 Service Unavailable (transient)');
    return `msg-${this.callStarts.length}`;
  }

  isHardBounce(): boolean {
    return this.random() < this.hardBounce;
  }
}

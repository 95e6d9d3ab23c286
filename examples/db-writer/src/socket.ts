import { setTimeout as sleep } from 'node:timers/promises';
import type { AppEvent } from './event';

/** A stand-in for a websocket client on a slow link: each message takes `msPerMessage` to send. */
export class SimulatedSocket {
  received = 0;

  constructor(
    readonly name: string,
    readonly msPerMessage: number,
  ) {}

  async send(_event: AppEvent): Promise<void> {
    await sleep(this.msPerMessage);
    this.received++;
  }
}

import diagnosticsChannel from 'node:diagnostics_channel';
import { MemoryStore, Telemetry, type TelemetryEvent } from '@sluice/core';
import { DIAGNOSTICS_CHANNELS, publishToDiagnosticsChannel } from '@sluice/dashboard';
import { startEmailWorker, waitFor } from './support';

describe('publishToDiagnosticsChannel', () => {
  it('names one channel per event type', () => {
    expect(DIAGNOSTICS_CHANNELS).toEqual({
      enqueue: 'sluice:enqueue',
      reserve: 'sluice:reserve',
      'rate-limited': 'sluice:rate-limited',
      rejected: 'sluice:rejected',
      start: 'sluice:start',
      'start-timing': 'sluice:start-timing',
      stop: 'sluice:stop',
      exception: 'sluice:exception',
      'settle-refused': 'sluice:settle-refused',
      demand: 'sluice:demand',
      action: 'sluice:action',
    });
  });

  it("publishes a real worker's events on sluice:<type> channels", async () => {
    const store = new MemoryStore();
    const fixture = startEmailWorker(store);
    const bridge = publishToDiagnosticsChannel(fixture.telemetry);
    const seen: Record<string, TelemetryEvent[]> = { start: [], stop: [], exception: [] };
    const listeners = Object.keys(seen).map((type) => {
      const listener = (message: unknown) => seen[type]!.push(message as TelemetryEvent);
      diagnosticsChannel.subscribe(`sluice:${type}`, listener);
      return [`sluice:${type}`, listener] as const;
    });
    try {
      await fixture.queue.addBulk([
        { data: { to: 'a@example.com' } },
        { data: { to: 'b@example.com' } },
        { data: { to: 'c@example.com', fail: true } },
      ]);
      // A job its start gate hands back (the rate-limited pipeline's grant came too late to start
      // on time, as on a loaded machine) ends a run that never started with a `snoozed` stop, and
      // runs again: wait for the runs that ended the jobs.
      const ended = () => seen['stop']!.filter((e) => e.type === 'stop' && e.kind !== 'snoozed');
      await waitFor(() => ended().length === 3);
      expect(seen['start']).toHaveLength(3);
      expect(
        ended()
          .map((e) => (e.type === 'stop' ? e.kind : ''))
          .sort(),
      ).toEqual(['completed', 'completed', 'dead']);
      expect(seen['exception']).toEqual([
        expect.objectContaining({
          type: 'exception',
          queue: 'emails',
          pipeline: 'emails',
          error: expect.objectContaining({ name: 'PermanentError' }),
        }),
      ]);
    } finally {
      for (const [name, listener] of listeners) diagnosticsChannel.unsubscribe(name, listener);
      bridge.unsubscribe();
      await fixture.stop();
      await store.close();
    }
  });

  it('publishes only on channels someone subscribed to, and stops when unsubscribed', () => {
    const telemetry = new Telemetry();
    const channel = diagnosticsChannel.channel('sluice:action');
    const publish = jest.spyOn(channel, 'publish');
    const event: TelemetryEvent = { type: 'action', queue: 'emails', at: 1, action: 'pause' };
    const received: unknown[] = [];
    const listener = (message: unknown) => received.push(message);
    const bridge = publishToDiagnosticsChannel(telemetry);
    try {
      telemetry.emit(event);
      expect(publish).not.toHaveBeenCalled();
      // Subscribing swaps the channel's prototype for an active one: drop the spy first.
      publish.mockRestore();
      if (Object.hasOwn(channel, 'publish')) delete (channel as { publish?: unknown }).publish;

      diagnosticsChannel.subscribe('sluice:action', listener);
      telemetry.emit(event);
      expect(received).toEqual([event]);

      bridge.unsubscribe();
      telemetry.emit(event);
      expect(received).toHaveLength(1);
      expect(telemetry.observed).toBe(false);
    } finally {
      diagnosticsChannel.unsubscribe('sluice:action', listener);
      bridge.unsubscribe();
    }
  });
});

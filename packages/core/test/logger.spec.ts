import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import winston from 'winston';
import { createLogger, definePipeline, MemoryStore, silentLogger, Worker } from '@sluice/core';
import { recordingLogger } from './pipeline/helpers';

/**
 * `createLogger` returns a winston logger; these tests use winston's public API (`level`,
 * `transports`, `add`, `remove`) to read its settings and to capture what it writes.
 */
const asWinston = (logger: unknown): winston.Logger => logger as winston.Logger;

describe('createLogger', () => {
  const saved = process.env['LOG_LEVEL'];

  afterEach(() => {
    if (saved === undefined) delete process.env['LOG_LEVEL'];
    else process.env['LOG_LEVEL'] = saved;
  });

  it('logs at info by default', () => {
    delete process.env['LOG_LEVEL'];
    const logger = asWinston(createLogger());
    expect(logger.level).toBe('info');
    expect(logger.isLevelEnabled('info')).toBe(true);
    expect(logger.isLevelEnabled('debug')).toBe(false);
  });

  it('honours LOG_LEVEL', () => {
    process.env['LOG_LEVEL'] = 'debug';
    expect(asWinston(createLogger()).level).toBe('debug');
    process.env['LOG_LEVEL'] = 'warn';
    const logger = asWinston(createLogger());
    expect(logger.level).toBe('warn');
    expect(logger.isLevelEnabled('info')).toBe(false);
  });

  it('prefers an explicit level over LOG_LEVEL', () => {
    process.env['LOG_LEVEL'] = 'debug';
    expect(asWinston(createLogger({ level: 'error' })).level).toBe('error');
  });

  it('writes every level to stderr through one console transport', () => {
    const [transport, ...others] = asWinston(createLogger()).transports;
    expect(others).toEqual([]);
    expect(transport).toBeInstanceOf(winston.transports.Console);
    const { stderrLevels } = transport as winston.transports.ConsoleTransportInstance;
    expect(Object.keys(stderrLevels).sort()).toEqual(['debug', 'error', 'info', 'warn']);
  });

  it('emits one JSON object per line, with the level, message, meta, service and a timestamp', async () => {
    const logger = asWinston(createLogger({ level: 'info', service: 'billing' }));
    const captured = new PassThrough();
    for (const t of [...logger.transports]) logger.remove(t);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston's own transport class
    logger.add(new winston.transports.Stream({ stream: captured }));

    const line = once(captured, 'data');
    logger.debug('not at this level');
    logger.warn('reserve failed; backing off', { queue: 'emails', attempt: 2 });
    const [chunk] = (await line) as [Buffer];
    const text = chunk.toString('utf8');

    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual({
      level: 'warn',
      message: 'reserve failed; backing off',
      queue: 'emails',
      attempt: 2,
      service: 'billing',
      timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    });
  });

  it("names the service 'sluice' by default", async () => {
    const logger = asWinston(createLogger());
    const captured = new PassThrough();
    for (const t of [...logger.transports]) logger.remove(t);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston's own transport class
    logger.add(new winston.transports.Stream({ stream: captured }));
    const line = once(captured, 'data');
    logger.info('hello');
    const [chunk] = (await line) as [Buffer];
    expect(JSON.parse(chunk.toString('utf8'))).toMatchObject({ service: 'sluice', message: 'hello' });
  });
});

describe('silentLogger', () => {
  it('accepts every level, with or without meta, and never throws', () => {
    expect(() => {
      silentLogger.debug('a');
      silentLogger.info('b', { x: 1 });
      silentLogger.warn('c');
      silentLogger.error('d', { err: new Error('e') });
    }).not.toThrow();
  });
});

describe('an injected logger', () => {
  it("receives the worker's messages", async () => {
    const { logger, entries } = recordingLogger();
    const worker = new Worker({
      store: new MemoryStore(),
      logger,
      pipelines: [
        definePipeline({ name: 'mail', queue: 'emails', handler: () => 'sent' }),
        definePipeline({ name: 'sms', queue: 'texts', handler: () => 'sent' }),
      ],
    });
    worker.start();
    expect(entries).toEqual([
      { level: 'info', message: 'worker started', meta: { store: 'memory', pipelines: ['mail', 'sms'] } },
    ]);
    await worker.close();
    expect(entries.at(-1)).toEqual({
      level: 'info',
      message: 'worker closed',
      meta: { drained: true, abandoned: 0 },
    });
  });

  it('is handed to handlers as ctx.logger', async () => {
    const { logger, entries } = recordingLogger();
    const store = new MemoryStore();
    const worker = new Worker({
      store,
      logger,
      pipelines: [
        definePipeline<string>({
          queue: 'emails',
          handler: (job, ctx) => {
            ctx.logger.info('sending', { to: job.data });
            return 'sent';
          },
        }),
      ],
    });
    const done = new Promise((resolve) => worker.outcomes$.subscribe(resolve));
    worker.start();
    await new Promise<void>((resolve) => {
      store.enqueue([{ queue: 'emails', data: 'ada@example.com' }]).subscribe(() => {
        resolve();
      });
    });
    await done;
    await worker.close();
    expect(entries).toContainEqual({ level: 'info', message: 'sending', meta: { to: 'ada@example.com' } });
  });
});

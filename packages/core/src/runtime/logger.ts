import winston from 'winston';

/** The logging surface Sluice needs. Any winston, pino or console-like logger fits. */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/**
 * The default logger: winston, JSON lines on stderr, level from `LOG_LEVEL` (default `info`).
 *
 * ## Example
 * ```ts
 * const worker = new Worker({ store, pipelines, logger: createLogger({ level: 'debug' }) });
 * ```
 */
export function createLogger(options: { readonly level?: string; readonly service?: string } = {}): Logger {
  return winston.createLogger({
    level: options.level ?? process.env['LOG_LEVEL'] ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { service: options.service ?? 'sluice' },
    transports: [
      // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston's own transport class
      new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
  });
}

/** A logger that drops everything (tests, marble runs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

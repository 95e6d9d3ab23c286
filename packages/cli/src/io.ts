/** Where a command writes; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** True when stdout is a terminal (tables, progress bars, colours). */
  readonly interactive: boolean;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  get interactive() {
    // `isTTY` is only defined (true) on a terminal.
    return (process.stdout.isTTY as boolean | undefined) === true;
  },
};

/**
 * An error the user can act on: printed as one line (`sluice: <message>`), exit code 1 (2 for usage).
 * Anything else thrown is a bug and is printed with its stack under `DEBUG=sluice`.
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

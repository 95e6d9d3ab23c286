import { createInterface } from 'node:readline/promises';

/** Where a command writes; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** True when stdout is a terminal (tables, progress bars, colours). */
  readonly interactive: boolean;
  /**
   * Asks a yes/no question on the terminal and resolves with the answer (destructive commands ask
   * it when `interactive`, unless given `--yes`). Without it they require `--yes` there.
   */
  confirm?(question: string): Promise<boolean>;
}

export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  get interactive() {
    // `isTTY` is only defined (true) on a terminal.
    return (process.stdout.isTTY as boolean | undefined) === true;
  },
  async confirm(question) {
    if ((process.stdin.isTTY as boolean | undefined) !== true) {
      throw new CliError(`${question} (stdin is not a terminal: confirm with --yes)`, 2);
    }
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
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

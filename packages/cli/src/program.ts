import { readFile } from 'node:fs/promises';
import { Presets, SingleBar } from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import {
  DEFAULT_RETENTION,
  InvalidArgumentError,
  JOB_STATES,
  MAX_GROUP_LENGTH,
  MAX_GROUP_WEIGHT,
  MAX_LIST_LIMIT,
  PayloadValidationError,
  Queue,
  QueueBusyError,
  SluiceError,
  type JobOptions,
  type JobState,
  type ObliterateResult,
  type QueueStats,
  type Store,
} from '@sluice/core';
import {
  DEFAULT_GROUP_SCAN_LIMIT,
  scanGroups,
  startDashboardServer,
  type DashboardServer,
} from '@sluice/dashboard';
import { openStore, type ConnectOptions } from './connect';
import { runDemo, type DemoOptions } from './demo/demo';
import { groupRows, jobDetail, jobRows, statsRows } from './format';
import { CliError, type Io } from './io';
import { describeRetention, parseRetention } from './retention';

interface GlobalOptions extends ConnectOptions {
  readonly json?: boolean;
}

/** Runs one `sluice` invocation; resolves with the exit code. Never throws. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: Io): number {
  if (err instanceof CommanderError) {
    // Commander already printed help/version; usage errors are printed by configureOutput below.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CliError) {
    io.err(`sluice: ${err.message}`);
    return err.exitCode;
  }
  if (err instanceof PayloadValidationError || err instanceof SluiceError) {
    io.err(`sluice: ${err.message}`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.err(`sluice: ${message.split('\n')[0] ?? message}`);
  if (process.env['DEBUG']?.includes('sluice') && err instanceof Error && err.stack) io.err(err.stack);
  return 1;
}

/** The `sluice` command tree. */
export function createProgram(io: Io): Command {
  const program = new Command('sluice')
    .description('Inspect and operate Sluice queues in Redis')
    .version('0.1.0')
    .option('--redis <url>', 'Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379)')
    .option(
      '--cluster <nodes>',
      'a Redis Cluster: startup nodes host:port[,host:port…] (default: $REDIS_CLUSTER_NODES); credentials and TLS from --redis',
    )
    .option('--prefix <prefix>', 'key prefix the workers use', 'sluice')
    .option(
      '--partitions <queues>',
      'partitioned queues, seen as one queue each: queue=n[,queue=n…] (default: $SLUICE_PARTITIONS)',
    )
    .option('--json', 'print JSON instead of tables')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => {
        io.out(s.trimEnd());
      },
      writeErr: (s) => {
        io.err(s.trimEnd());
      },
      outputError: (s, write) => {
        write(`sluice: ${s.replace(/^error: /, '').trim()}\n`);
      },
    })
    .showSuggestionAfterError()
    // Every subcommand's --help lists --redis, --prefix and --json too (inherited by the subcommands).
    .configureHelp({ showGlobalOptions: true });

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  const print = (value: unknown, lines: () => string[]): void => {
    if (globals().json) io.out(JSON.stringify(value));
    else for (const l of lines()) io.out(l);
  };
  /** Opens the store, runs `fn`, and always closes the store. */
  const withStore = async <R>(fn: (store: Store) => Promise<R>): Promise<R> => {
    const store = await openStore(globals());
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  program
    .command('demo')
    .description('run the email demo pipeline (Redis when it answers, else the in-memory store)')
    .addOption(
      new Option('--store <store>', 'which store to use')
        .choices(['auto', 'memory', 'redis'])
        .default('auto'),
    )
    .option('--jobs <n>', 'emails to send', positiveInt, 2000)
    .option('--allowed <n>', 'provider calls allowed per period', positiveInt, 400)
    .option('--period-ms <ms>', 'rate-limit window', positiveInt, 1000)
    .option('--concurrency <n>', 'calls in flight', positiveInt, 5)
    .action(
      async (opts: {
        store: 'auto' | 'memory' | 'redis';
        jobs: number;
        allowed: number;
        periodMs: number;
        concurrency: number;
      }) => {
        const json = globals().json === true;
        const redis = globals().redis;
        const options: DemoOptions = {
          store: opts.store,
          jobs: opts.jobs,
          allowed: opts.allowed,
          periodMs: opts.periodMs,
          concurrency: opts.concurrency,
          ...(redis ? { redisUrl: redis } : {}),
          // With --json the readable lines go to stderr so stdout's last line is the JSON object.
          print: json
            ? (l) => {
                io.err(l);
              }
            : (l) => {
                io.out(l);
              },
        };
        const summary = await runDemo(options);
        if (json) io.out(JSON.stringify(summary));
        if (
          summary.completed + summary.dead !== summary.jobs ||
          summary.maxStartsInAnyWindow > summary.allowed
        ) {
          throw new CliError('the demo did not account for every job within the limit');
        }
      },
    );

  program
    .command('stats')
    .description('counts by state for every queue')
    .option('--watch', 'refresh until interrupted')
    .option('--interval <ms>', 'refresh period with --watch', positiveInt, 1000)
    .addOption(
      new Option('--iterations <n>', 'stop --watch after n refreshes').argParser(positiveInt).hideHelp(),
    )
    .action(async (opts: { watch?: boolean; interval: number; iterations?: number }) => {
      await withStore(async (store) => {
        const once = async (): Promise<void> => {
          const queues = await store.queues();
          const all: QueueStats[] = [];
          for (const q of queues) all.push(await store.stats(q));
          if (opts.watch && io.interactive && !globals().json) io.out('\x1b[2J\x1b[H');
          print(all, () => (all.length === 0 ? ['no queues yet'] : statsRows(all)));
        };
        await once();
        if (!opts.watch) return;
        let interrupted = false;
        const onSigint = (): void => {
          interrupted = true;
        };
        // A function, so the compiler does not assume the flag still holds after an await.
        const stopped = (): boolean => interrupted;
        process.once('SIGINT', onSigint);
        try {
          for (let i = 1; !stopped() && (opts.iterations === undefined || i < opts.iterations); i++) {
            await new Promise((r) => setTimeout(r, opts.interval));
            if (!stopped()) await once();
          }
        } finally {
          process.off('SIGINT', onSigint);
        }
      });
    });

  program
    .command('enqueue')
    .description('add a job: JSON inline, or @file (one JSON document, or one per line)')
    .argument('<queue>', 'queue name')
    .argument('<payload>', 'JSON payload, or @path to a file')
    .option('--delay <ms>', 'run no earlier than this many ms from now', nonNegativeInt)
    .option('--priority <n>', 'lower runs first (0-1000000)', nonNegativeInt)
    .option('--unique <key>', 'collapse duplicates with this key while the lock lives')
    .option('--unique-ttl <ms>', 'lifetime of the --unique lock', positiveInt, 3_600_000)
    .option('--name <name>', 'job name (default: the queue name)')
    .option('--max-attempts <n>', 'attempts before the dead-letter queue', positiveInt)
    .option('--id <id>', 'job id (an existing id is not added twice)')
    .option('--group <group>', 'the group (tenant, customer) the job belongs to', groupName)
    .option('--traceparent <header>', "the producer's W3C traceparent, continued by the job's processing")
    .option('--tracestate <header>', 'the W3C tracestate that goes with --traceparent')
    .option('--create', 'create the queue if no worker or producer has used it yet')
    .action(
      async (
        queueName: string,
        payload: string,
        opts: {
          delay?: number;
          priority?: number;
          unique?: string;
          uniqueTtl: number;
          name?: string;
          maxAttempts?: number;
          id?: string;
          group?: string;
          traceparent?: string;
          tracestate?: string;
          create?: boolean;
        },
      ) => {
        if (opts.tracestate !== undefined && opts.traceparent === undefined) {
          throw new CliError('--tracestate needs --traceparent', 2);
        }
        const documents = await readPayloads(payload);
        const options: JobOptions = {
          ...(opts.delay !== undefined ? { delayMs: opts.delay } : {}),
          ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
          ...(opts.unique !== undefined ? { unique: { key: opts.unique, ttlMs: opts.uniqueTtl } } : {}),
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
          ...(opts.id !== undefined ? { id: opts.id } : {}),
          ...(opts.group !== undefined ? { group: opts.group } : {}),
          ...(opts.traceparent !== undefined
            ? {
                trace: {
                  traceparent: opts.traceparent,
                  ...(opts.tracestate !== undefined ? { tracestate: opts.tracestate } : {}),
                },
              }
            : {}),
        };
        if (documents.length > 1 && (opts.id !== undefined || opts.unique !== undefined)) {
          throw new CliError('--id and --unique apply to one job; the file holds several', 2);
        }
        await withStore(async (store) => {
          // A typo would otherwise create a queue no worker reads, and the job would wait there for ever.
          if (!opts.create) await assertKnownQueue(store, queueName, '; pass --create to create it');
          const queue = new Queue(store, queueName);
          if (documents.length === 1) {
            const result = await queue.add(documents[0], options);
            print(result, () => [
              result.duplicate ? `duplicate of job ${result.id}` : `enqueued job ${result.id}`,
            ]);
            return;
          }
          const bar = progressBar(io, 'enqueue', documents.length);
          const results = [];
          for (let i = 0; i < documents.length; i += 1000) {
            const chunk = documents.slice(i, i + 1000).map((data) => ({ data, options }));
            results.push(...(await queue.addBulk(chunk)));
            bar?.update(results.length);
          }
          bar?.stop();
          const added = results.filter((r) => !r.duplicate).length;
          print(
            { enqueued: added, duplicates: results.length - added, ids: results.map((r) => r.id) },
            () => [
              `enqueued ${added} jobs${results.length > added ? ` (${results.length - added} duplicates)` : ''}`,
            ],
          );
        });
      },
    );

  program
    .command('jobs')
    .description('list the jobs of a queue in one state, optionally of one name and in a time range')
    .argument('<queue>', 'queue name')
    .addOption(new Option('--state <state>', 'job state').choices(JOB_STATES as string[]).default('ready'))
    .option('--name <name>', 'only jobs of this name')
    .option(
      '--from <time>',
      'only jobs whose time is at or after this (ISO date or epoch ms; run-at, lease start or finish time by state)',
      parseTime,
    )
    .option('--to <time>', 'only jobs whose time is at or before this', parseTime)
    .option('--limit <n>', 'rows', positiveInt, 50)
    .option('--offset <n>', 'rows to skip', nonNegativeInt, 0)
    .action(
      async (
        queue: string,
        opts: { state: JobState; name?: string; from?: number; to?: number; limit: number; offset: number },
      ) => {
        if (opts.from !== undefined && opts.to !== undefined && opts.from > opts.to) {
          throw new CliError('--from is after --to', 2);
        }
        await withStore(async (store) => {
          await assertKnownQueue(store, queue);
          const jobs = await new Queue(store, queue).list({
            state: opts.state,
            limit: Math.min(opts.limit, MAX_LIST_LIMIT),
            offset: opts.offset,
            ...(opts.name === undefined ? {} : { name: opts.name }),
            ...(opts.from === undefined ? {} : { from: opts.from }),
            ...(opts.to === undefined ? {} : { to: opts.to }),
          });
          const filtered = opts.name !== undefined || opts.from !== undefined || opts.to !== undefined;
          print(jobs, () =>
            jobs.length === 0
              ? [`no ${opts.state} jobs${filtered ? ' matching the filter' : ''} in "${queue}"`]
              : jobRows(jobs),
          );
        });
      },
    );

  program
    .command('job')
    .description('show one job: payload, attempts and errors, timings, result')
    .argument('<id>', 'job id')
    .option('--queue <queue>', 'queue to look in (default: every queue)')
    .action(async (id: string, opts: { queue?: string }) => {
      await withStore(async (store) => {
        if (opts.queue !== undefined) await assertKnownQueue(store, opts.queue);
        const queues = opts.queue !== undefined ? [opts.queue] : await store.queues();
        for (const q of queues) {
          const job = await store.getJob(q, id);
          if (job) {
            print(job, () => jobDetail(job));
            return;
          }
        }
        throw new CliError(
          `no job "${id}"${opts.queue !== undefined ? ` in queue "${opts.queue}"` : ' in any queue'}`,
        );
      });
    });

  program
    .command('retry')
    .description('move dead (or cancelled) jobs back to the queue with fresh attempts')
    .argument('<queue>', 'queue name')
    .argument('[id]', 'one job id')
    .option('--all', 'every job in the dead-letter queue')
    .action(async (queue: string, id: string | undefined, opts: { all?: boolean }) => {
      if ((id === undefined) === !opts.all) throw new CliError('give a job id or --all (not both)', 2);
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        const moved = await store.retryJobs(queue, id === undefined ? 'all-dead' : [id]);
        if (id !== undefined && moved === 0)
          throw new CliError(`job "${id}" in "${queue}" is not dead or cancelled`);
        print({ retried: moved }, () => [`retried ${moved} job${moved === 1 ? '' : 's'}`]);
      });
    });

  program
    .command('purge')
    .description('delete every job of a queue in a terminal state')
    .argument('<queue>', 'queue name')
    .addOption(
      new Option('--state <state>', 'which jobs')
        .choices(['dead', 'completed', 'cancelled'])
        .makeOptionMandatory(),
    )
    .action(async (queue: string, opts: { state: 'dead' | 'completed' | 'cancelled' }) => {
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        const deleted = await store.purge(queue, opts.state);
        print({ purged: deleted }, () => [`purged ${deleted} ${opts.state} job${deleted === 1 ? '' : 's'}`]);
      });
    });

  /** Asks before a destructive command on a terminal; `--yes` (or no terminal) skips the question. */
  const confirm = async (yes: boolean | undefined, question: string): Promise<void> => {
    if (yes === true || !io.interactive) return;
    if (!io.confirm) throw new CliError(`${question} Confirm with --yes`, 2);
    if (!(await io.confirm(question))) throw new CliError('not confirmed: nothing was deleted');
  };

  program
    .command('drain')
    .description('delete every waiting (ready and scheduled) job of a queue; running and finished jobs stay')
    .argument('<queue>', 'queue name')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(async (queue: string, opts: { yes?: boolean }) => {
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        if (!store.drain) throw new CliError('this store cannot drain queues');
        const waiting = await store.stats(queue);
        await confirm(
          opts.yes,
          `Delete the ${waiting.counts.ready + waiting.counts.scheduled} waiting jobs of "${queue}"?`,
        );
        const drained = await store.drain(queue);
        print({ queue, drained }, () => [
          `drained ${drained} job${drained === 1 ? '' : 's'} from "${queue}"`,
        ]);
      });
    });

  program
    .command('obliterate')
    .description('delete a queue: its jobs in every state, counters, settings, configuration and history')
    .argument('<queue>', 'queue name')
    .option('--force', 'even while jobs run (their workers are told to stop them)')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(async (queue: string, opts: { force?: boolean; yes?: boolean }) => {
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        if (!store.obliterate) throw new CliError('this store cannot obliterate queues');
        await confirm(opts.yes, `Delete queue "${queue}" and every job, setting and record of it?`);
        let result: ObliterateResult;
        try {
          result = await store.obliterate(queue, { force: opts.force === true });
        } catch (err) {
          if (err instanceof QueueBusyError) {
            throw new CliError(
              `"${queue}" has ${err.running} running job${err.running === 1 ? '' : 's'}: nothing was deleted ` +
                '(stop its workers, or add --force)',
            );
          }
          throw err;
        }
        print({ queue, ...result }, () => [
          `obliterated "${queue}": ${result.jobs} job${result.jobs === 1 ? '' : 's'} deleted` +
            (result.running > 0 ? ` (${result.running} of them running)` : ''),
        ]);
      });
    });

  for (const action of ['pause', 'resume'] as const) {
    program
      .command(action)
      .description(
        action === 'pause'
          ? 'stop every worker from starting jobs of a queue'
          : 'let workers start jobs again',
      )
      .argument('<queue>', 'queue name')
      .action(async (queue: string) => {
        await withStore(async (store) => {
          await assertKnownQueue(store, queue);
          await (action === 'pause' ? store.pause(queue) : store.resume(queue));
          print({ queue, paused: action === 'pause' }, () => [
            `${queue}: ${action === 'pause' ? 'paused' : 'resumed'}`,
          ]);
        });
      });
  }

  program
    .command('groups')
    .description(
      "list a queue's groups busiest first (ready and active jobs, paused), or pause or resume one group",
    )
    .argument('<queue>', 'queue name')
    .option('--pause <group>', 'stop every worker from starting jobs of this group', groupName)
    .option('--resume <group>', 'let workers start jobs of this group again', groupName)
    .option('--limit <n>', 'rows', positiveInt, 50)
    .option('--offset <n>', 'rows to skip', nonNegativeInt, 0)
    .option(
      '--scan-limit <n>',
      'most groups read to sort them (a queue with more lists the first ones by name)',
      positiveInt,
      DEFAULT_GROUP_SCAN_LIMIT,
    )
    .action(
      async (
        queue: string,
        opts: { pause?: string; resume?: string; limit: number; offset: number; scanLimit: number },
      ) => {
        if (opts.pause !== undefined && opts.resume !== undefined) {
          throw new CliError('give --pause or --resume, not both', 2);
        }
        await withStore(async (store) => {
          await assertKnownQueue(store, queue);
          const group = opts.pause ?? opts.resume;
          if (group !== undefined) {
            const paused = opts.pause !== undefined;
            const change = paused ? store.pauseGroup?.bind(store) : store.resumeGroup?.bind(store);
            if (!change) throw new CliError('this store cannot pause or resume groups');
            await change(queue, group);
            print({ queue, group, paused }, () => [
              `${queue}: group ${JSON.stringify(group)} ${paused ? 'paused' : 'resumed'}`,
            ]);
            return;
          }
          const scan = await scanGroups(store, queue, opts.scanLimit);
          if (!scan) throw new CliError('this store cannot list groups');
          const page = scan.groups.slice(opts.offset, opts.offset + opts.limit);
          const total = scan.groups.length;
          print(
            {
              queue,
              total,
              paused: scan.groups.filter((g) => g.paused).length,
              complete: scan.complete,
              offset: opts.offset,
              limit: opts.limit,
              groups: page,
            },
            () => {
              const partial = scan.complete
                ? ''
                : ` (read the first ${opts.scanLimit} by name: --scan-limit)`;
              if (page.length === 0) {
                return [
                  total === 0
                    ? `no groups with jobs in "${queue}"`
                    : `no groups past ${opts.offset} of ${total}${partial}`,
                ];
              }
              return [
                ...groupRows(page),
                `groups ${opts.offset + 1}-${opts.offset + page.length} of ${total}, busiest first${partial}`,
              ];
            },
          );
        });
      },
    );

  program
    .command('retention')
    .description('show or set how long a queue keeps completed/cancelled ("finished") and dead jobs')
    .argument('<queue>', 'queue name')
    .option('--finished <spec>', 'none | all | default | <count> | <age> | <count>,<age> (e.g. 1000,7d)')
    .option('--dead <spec>', 'same forms, for the dead-letter queue')
    .action(async (queue: string, opts: { finished?: string; dead?: string }) => {
      const finished = opts.finished === undefined ? undefined : parseRetention(opts.finished);
      const dead = opts.dead === undefined ? undefined : parseRetention(opts.dead);
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        const q = new Queue(store, queue);
        if (finished !== undefined || dead !== undefined) {
          await q.setRetention({
            ...(finished === undefined ? {} : { finished }),
            ...(dead === undefined ? {} : { dead }),
          });
        }
        const config = await q.getConfig();
        const shown = {
          queue,
          finished: config.retention ?? null,
          dead: config.deadRetention ?? null,
        };
        print(shown, () => [
          `${queue}: completed and cancelled jobs kept: ${describeRetention(config.retention, describeRetention(DEFAULT_RETENTION, ''))}`,
          `${queue}: dead jobs kept: ${describeRetention(config.deadRetention, 'all')}`,
        ]);
      });
    });

  program
    .command('limit')
    .description(
      'show or set the numbers of a rate-limit key store-wide: every worker checks them from its next reserve',
    )
    .argument('<key>', 'the rate-limit key (a pipeline’s `rateLimit.key`, else its queue name)')
    .option('--queue <queue>', 'a queue that uses the key (Cluster: where its log lives)')
    .option('--allowed <n>', 'units allowed in any window')
    .option('--period <ms>', 'the window, in ms')
    .option('--clear', 'back to each worker’s own numbers')
    .action(
      async (key: string, opts: { queue?: string; allowed?: string; period?: string; clear?: boolean }) => {
        const queue = opts.queue ?? key;
        const setting = opts.allowed !== undefined || opts.period !== undefined;
        if (setting && (opts.allowed === undefined || opts.period === undefined)) {
          throw new CliError('give both --allowed and --period');
        }
        if (setting && opts.clear) throw new CliError('give --allowed and --period, or --clear, not both');
        await withStore(async (store) => {
          if (!store.setRateLimit || !store.getRateLimit)
            throw new CliError('this store cannot set rate limits');
          if (setting) {
            await store.setRateLimit(queue, key, {
              allowed: positiveInt(opts.allowed ?? ''),
              periodMs: positiveInt(opts.period ?? ''),
            });
          } else if (opts.clear) {
            await store.setRateLimit(queue, key, null);
          }
          const numbers = await store.getRateLimit(queue, key);
          print({ key, numbers }, () => [
            numbers
              ? `${key}: ${numbers.allowed} per ${numbers.periodMs} ms, store-wide`
              : `${key}: each worker’s own numbers`,
          ]);
        });
      },
    );

  program
    .command('group-limit')
    .description(
      "show or set one group's rate-limit numbers (pipelines that declare groups.rateLimit): every worker checks them from its next reserve",
    )
    .argument('<queue>', 'queue name')
    .argument('<group>', 'the group (tenant, customer)')
    .option('--allowed <n>', 'units the group may start in any window')
    .option('--period <ms>', 'the window, in ms')
    .option('--clear', 'back to the numbers each pipeline declares')
    .action(
      async (queue: string, group: string, opts: { allowed?: string; period?: string; clear?: boolean }) => {
        const setting = opts.allowed !== undefined || opts.period !== undefined;
        if (setting && (opts.allowed === undefined || opts.period === undefined)) {
          throw new CliError('give both --allowed and --period', 2);
        }
        if (setting && opts.clear) throw new CliError('give --allowed and --period, or --clear, not both', 2);
        await withStore(async (store) => {
          await assertKnownQueue(store, queue);
          const setGroupLimit = store.setGroupLimit?.bind(store);
          const getGroupLimit = store.getGroupLimit?.bind(store);
          if (!setGroupLimit || !getGroupLimit) throw new CliError('this store cannot set group rate limits');
          // The store checks the group name and the numbers; what it refuses is a usage error.
          const numbers = await asUsageError(async () => {
            if (setting) {
              await setGroupLimit(queue, group, {
                allowed: limitNumber('--allowed', opts.allowed ?? ''),
                periodMs: limitNumber('--period', opts.period ?? ''),
              });
            } else if (opts.clear) {
              await setGroupLimit(queue, group, null);
            }
            return getGroupLimit(queue, group);
          });
          print({ queue, group, numbers }, () => [
            numbers
              ? `${queue}: group ${JSON.stringify(group)}: ${numbers.allowed} per ${numbers.periodMs} ms, on every worker`
              : `${queue}: group ${JSON.stringify(group)}: the numbers each pipeline declares (groups.rateLimit)`,
          ]);
        });
      },
    );

  program
    .command('group-weight')
    .description(
      "show or set one group's weight: it takes that many turns in a row each round (every worker, from its next reserve)",
    )
    .argument('<queue>', 'queue name')
    .argument('<group>', 'the group (tenant, customer)')
    .argument('[weight]', `an integer from 1 to ${MAX_GROUP_WEIGHT}, or "default" (1)`)
    .action(async (queue: string, group: string, weight: string | undefined) => {
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        const setGroupWeight = store.setGroupWeight?.bind(store);
        const getGroupWeight = store.getGroupWeight?.bind(store);
        if (!setGroupWeight || !getGroupWeight) throw new CliError('this store cannot weight groups');
        // The store checks the group name and the weight; what it refuses is a usage error.
        const set = await asUsageError(async () => {
          if (weight !== undefined) {
            await setGroupWeight(queue, group, weight === 'default' ? null : Number(weight));
          }
          return getGroupWeight(queue, group);
        });
        print({ queue, group, weight: set ?? 1 }, () => [
          `${queue}: group ${JSON.stringify(group)}: weight ${set ?? 1}${set === null ? ' (default)' : ''}`,
        ]);
      });
    });

  program
    .command('concurrency')
    .description(
      'set the concurrency every worker uses for a queue ("default" returns to each pipeline’s own)',
    )
    .argument('<queue>', 'queue name')
    .argument('<n>', 'handler calls in flight per worker, or "default"')
    .action(async (queue: string, n: string) => {
      const value = n === 'default' ? undefined : positiveInt(n);
      await withStore(async (store) => {
        await assertKnownQueue(store, queue);
        await store.setConcurrency(queue, value);
        print({ queue, concurrency: value ?? null }, () => [`${queue}: concurrency ${value ?? 'default'}`]);
      });
    });

  program
    .command('dashboard')
    .description('serve the web dashboard (JSON API, UI and /metrics) until interrupted')
    .option('--port <port>', 'port to listen on (0: any free port)', nonNegativeInt, 3000)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--token <token>', 'require this bearer token (default: $SLUICE_DASHBOARD_TOKEN)')
    .option('--read-only', 'show everything, allow no actions')
    .action(async (opts: { port: number; host: string; token?: string; readOnly?: boolean }) => {
      const store = await openStore(globals());
      const token = opts.token ?? process.env['SLUICE_DASHBOARD_TOKEN'];
      let server: DashboardServer;
      try {
        server = await startDashboardServer({
          store,
          port: opts.port,
          host: opts.host,
          ...(token ? { auth: { token } } : {}),
          ...(opts.readOnly ? { readOnly: true } : {}),
        });
      } catch (err) {
        await store.close();
        throw new CliError(
          `cannot serve the dashboard on ${opts.host}:${opts.port}: ${(err as Error).message}`,
        );
      }
      print({ url: server.url }, () => [`dashboard at ${server.url} (Ctrl-C to stop)`]);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      await store.close();
    });

  return program;
}

async function assertKnownQueue(store: Store, queue: string, hint = ''): Promise<void> {
  const queues = await store.queues();
  if (!queues.includes(queue)) {
    const known =
      queues.length > 0
        ? ` (known: ${queues.slice(0, 10).join(', ')}${queues.length > 10 ? ', …' : ''})`
        : '';
    throw new CliError(`unknown queue "${queue}"${known}${hint}`);
  }
}

async function readPayloads(payload: string): Promise<unknown[]> {
  let text = payload;
  let source = 'the payload';
  if (payload.startsWith('@')) {
    source = payload.slice(1);
    try {
      text = await readFile(source, 'utf8');
    } catch (err) {
      throw new CliError(
        `cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  try {
    return [JSON.parse(text) as unknown];
  } catch {
    // One JSON document per line (NDJSON)?
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    if (payload.startsWith('@') && lines.length > 1) {
      return lines.map((line, i) => {
        try {
          return JSON.parse(line) as unknown;
        } catch (err) {
          throw new CliError(`invalid JSON on line ${i + 1} of ${source}: ${(err as Error).message}`);
        }
      });
    }
    try {
      JSON.parse(text);
    } catch (err) {
      throw new CliError(`invalid JSON in ${source}: ${(err as Error).message}`);
    }
    return [];
  }
}

function progressBar(io: Io, label: string, total: number): SingleBar | undefined {
  if (!io.interactive || !process.stderr.isTTY) return undefined;
  const bar = new SingleBar(
    { format: `${label} {bar} {value}/{total}`, stream: process.stderr },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}

/** A time given as epoch ms or as an ISO 8601 date (`2024-05-01`, `2024-05-01T12:00:00Z`). */
function parseTime(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new CliError(`expected a time (ISO date or epoch ms), got "${value}"`, 2);
  }
  return ms;
}

/** A group name as jobs carry it: 1 to `MAX_GROUP_LENGTH` characters. */
function groupName(value: string): string {
  if (value.length === 0 || value.length > MAX_GROUP_LENGTH) {
    throw new CliError(`expected a group name of 1-${MAX_GROUP_LENGTH} characters, got ${value.length}`, 2);
  }
  return value;
}

/** Runs `fn`; an argument the store refuses (`InvalidArgumentError`) becomes a usage error (exit 2). */
async function asUsageError<R>(fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** A number for the store to check (its range and whether it is whole); text that is no number is refused here. */
function limitNumber(option: string, value: string): number {
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (Number.isNaN(n)) throw new CliError(`${option}: expected a number, got ${JSON.stringify(value)}`, 2);
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`expected a positive integer, got "${value}"`, 2);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`expected an integer ≥ 0, got "${value}"`, 2);
  return n;
}

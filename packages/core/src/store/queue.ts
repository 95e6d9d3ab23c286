import {
  defer,
  EMPTY,
  filter,
  firstValueFrom,
  map,
  merge,
  type Observable,
  of,
  race,
  switchMap,
  take,
  timer,
  throwError,
} from 'rxjs';
import { InvalidArgumentError, SluiceError, ErrorCode } from '../model/errors';
import { JOB_STATES, type JobOptions, type JobRecord, type JobState, type Retention } from '../model/job';
import { OutcomeKind } from '../model/outcome';
import { parseCron } from '../runtime/cron';
import type {
  CancelResult,
  EnqueueResult,
  JobEvent,
  ListOptions,
  ObliterateOptions,
  ObliterateResult,
  QueueConfig,
  QueueConfigChange,
  QueueConfigPatch,
  QueueStats,
  ScheduleSpec,
  Store,
} from './store';
import { applyConfigPatch, assertConfigPatch } from './queue-config';
import {
  assertListOptions,
  assertQueueName,
  assertValid,
  compileSchema,
  DEFAULT_MAX_PAYLOAD_BYTES,
  encodePayload,
  type PayloadValidator,
} from '../model/validation';

export interface QueueOptions {
  /**
   * JSON schema every payload must match. It is also saved as the queue's stored schema on the first
   * add, so workers, the CLI and the dashboard validate against the same one. Default: the stored one.
   */
  readonly schema?: object;
  /** Largest JSON payload accepted, in bytes. Default 1 MiB. */
  readonly maxPayloadBytes?: number;
  /** Options applied to every job unless the add overrides them. */
  readonly defaults?: JobOptions;
}

/** What {@link Queue.list} lists: the jobs in `state`, filtered and paged (see `ListOptions`). */
export interface ListQuery extends ListOptions {
  readonly state: JobState;
}

/** The largest page {@link Queue.list} answers. */
export const MAX_LIST_LIMIT = 1000;

/** One item of {@link Queue.addBulk}. */
export interface BulkItem<T> {
  readonly data: T;
  readonly options?: JobOptions;
}

/**
 * Raised by {@link Queue.waitForResult} when the job ends without completing (dead or cancelled).
 * Its code is `ERR_SLUICE_JOB_FAILED`: the store worked, the job did not.
 */
export class JobFailedError extends SluiceError {
  override name = 'JobFailedError' as const;
  readonly event: JobEvent;
  constructor(event: JobEvent) {
    super(
      ErrorCode.JobFailed,
      `job ${event.id} ${event.kind}: ${event.reason ?? event.error?.message ?? ''}`,
    );
    this.event = event;
  }
}

/**
 * The producer's handle on a queue: validated, promise-based adds, plus the queue's administration.
 *
 * A payload is encoded as JSON, checked against the schema and its size limit, then stored; an invalid
 * payload rejects with `PayloadValidationError` listing every violation, and nothing is stored. A bulk
 * add is all-or-nothing for validation. What is validated and stored is the JSON form, exactly what a
 * worker will read: `undefined` properties disappear and `NaN`/`Infinity` become `null`, as with
 * `JSON.stringify`. A queue created with a schema saves it as the queue's stored schema, replacing a
 * different one: producers of one queue should share one schema.
 *
 * ## Example
 * ```ts
 * const emails = new Queue<Email>(store, 'emails', {
 *   schema: { type: 'object', required: ['to'], properties: { to: { type: 'string', format: 'email' } } },
 * });
 * const { id } = await emails.add({ to: 'ada@example.com' }, { priority: 1, delayMs: 60_000 });
 * await emails.addBulk(users.map((u) => ({ data: { to: u.email } })));
 * ```
 */
export class Queue<T = unknown> {
  readonly name: string;
  private readonly maxPayloadBytes: number;
  private readonly defaults: JobOptions;
  private validator: PayloadValidator | undefined;
  private configReady: Promise<void> | undefined;
  /** The resolved `configReady`: adds no longer wait a turn for it. */
  private configLoaded = false;

  constructor(
    readonly store: Store,
    name: string,
    private readonly options: QueueOptions = {},
  ) {
    assertQueueName(name);
    this.name = name;
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.defaults = options.defaults ?? {};
    if (options.schema) this.validator = compileSchema(options.schema);
  }

  /** Adds one job. Resolves to its id (and whether it matched an existing job). */
  add(data: T, options: JobOptions = {}): Promise<EnqueueResult> {
    return this.addBulk([{ data, options }]).then((results) => results[0] as EnqueueResult);
  }

  /** Adds many jobs in one store call. Rejects, storing nothing, if any payload is invalid. */
  async addBulk(items: readonly BulkItem<T>[]): Promise<readonly EnqueueResult[]> {
    if (!this.configLoaded) await this.ensureConfig();
    return firstValueFrom(this.addBulk$(items));
  }

  /**
   * {@link addBulk} as a cold Observable, using the schema given to the constructor (no store read):
   * usable inside RxJS virtual time.
   */
  addBulk$(items: readonly BulkItem<T>[]): Observable<readonly EnqueueResult[]> {
    return defer(() => {
      const jobs = items.map((item) => {
        // Encoded once: the size check, the schema check (on the JSON form a worker will read) and
        // the store all use this one encoding.
        const json = encodePayload(this.name, item.data, this.maxPayloadBytes);
        const data: unknown = this.validator ? JSON.parse(json) : item.data;
        assertValid(this.name, this.validator, data);
        return { ...this.defaults, ...item.options, queue: this.name, data, json };
      });
      if (jobs.length === 0) return of([]);
      return this.store.enqueue(jobs);
    });
  }

  /** Resolves with the job's result once it completes; rejects with {@link JobFailedError} if it dies or is cancelled. */
  waitForResult<R = unknown>(id: string, options: { readonly timeoutMs?: number } = {}): Promise<R> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const ended = (e: JobEvent): boolean =>
      e.id === id &&
      (e.kind === OutcomeKind.Completed || e.kind === OutcomeKind.Dead || e.kind === OutcomeKind.Cancelled);
    // Listen to events before reading the record, so a job that ends in between is not missed.
    const fromEvents$ = this.store.events(this.name).pipe(filter(ended));
    const fromRecord$ = defer(() => this.store.getJob(this.name, id)).pipe(
      switchMap((rec) => {
        if (!rec) return throwError(() => new InvalidArgumentError(`no job ${id} in queue "${this.name}"`));
        const event = recordToEvent(rec);
        return event ? of(event) : EMPTY;
      }),
    );
    return firstValueFrom(
      race(
        merge(fromEvents$, fromRecord$).pipe(take(1)),
        timer(timeoutMs).pipe(
          switchMap(() =>
            throwError(() => new SluiceError(ErrorCode.JobTimeout, `waited ${timeoutMs} ms for job ${id}`)),
          ),
        ),
      ).pipe(
        map((event) => {
          if (event.kind !== OutcomeKind.Completed) throw new JobFailedError(event);
          return event.result as R;
        }),
      ),
    );
  }

  /**
   * Adds (or replaces) a recurring job: every tick of `cron` (UTC; 5 fields, or 6 with seconds) adds one
   * job with `data`. Workers of the queue add each tick exactly once between them, whatever their number.
   *
   * ## Example
   * ```ts
   * await reports.schedule('nightly-digest', '0 3 * * *', { kind: 'digest' });
   * ```
   */
  async schedule(name: string, cron: string, data?: T, options?: JobOptions): Promise<void> {
    if (!name || name.length > 200)
      throw new InvalidArgumentError('a schedule needs a name of 1-200 characters');
    parseCron(cron); // throws on a bad expression
    if (data !== undefined) {
      const payload = JSON.parse(encodePayload(this.name, data, this.maxPayloadBytes)) as unknown;
      await this.ensureConfig();
      assertValid(this.name, this.validator, payload);
    }
    const spec: ScheduleSpec = {
      cron,
      ...(data === undefined ? {} : { data }),
      ...(options ? { options } : {}),
    };
    await this.updateConfig({ schedules: { [name]: spec } });
  }

  /** Removes a recurring job. Returns false if there was none by that name. */
  async unschedule(name: string): Promise<boolean> {
    const { previous } = await this.updateConfig({ schedules: { [name]: null } });
    return previous.schedules !== undefined && name in previous.schedules;
  }

  /**
   * Sets how long the queue keeps jobs in terminal states, for every process: `finished` for
   * completed and cancelled jobs (default: the newest 1,000), `dead` for the dead-letter queue
   * (default: all). Each is a count, an age, or both (`{ keep: 'count', count: 500, ageMs: 86_400_000 }`);
   * `null` goes back to the default, a field not given is left as it is. Records beyond it are deleted
   * as jobs settle and during workers' lease-recovery rounds. Rejects with `InvalidArgumentError`,
   * changing nothing, on a bad retention.
   *
   * ## Example
   * ```ts
   * await emails.setRetention({ finished: { keep: 'age', ageMs: 3_600_000 }, dead: { keep: 'count', count: 10_000 } });
   * ```
   */
  async setRetention(retention: {
    readonly finished?: Retention | null;
    readonly dead?: Retention | null;
  }): Promise<void> {
    await this.updateConfig({
      ...(retention.finished === undefined ? {} : { retention: retention.finished }),
      ...(retention.dead === undefined ? {} : { deadRetention: retention.dead }),
    });
  }

  /** The queue's stored configuration (schema, retentions, schedules). */
  getConfig(): Promise<QueueConfig> {
    return this.store.getQueueConfig(this.name);
  }

  /**
   * Changes some fields of the queue's stored configuration atomically (see
   * `Store.updateQueueConfig`); with a store that lacks it, by read-modify-write.
   */
  async updateConfig(patch: QueueConfigPatch): Promise<QueueConfigChange> {
    if (this.store.updateQueueConfig) return this.store.updateQueueConfig(this.name, patch);
    assertConfigPatch(patch);
    const previous = await this.store.getQueueConfig(this.name);
    const config = applyConfigPatch(previous, patch);
    await this.store.setQueueConfig(this.name, config);
    return { previous, config };
  }

  /** Outcomes of this queue's jobs from every process (hot). */
  get events$(): Observable<JobEvent> {
    return this.store.events(this.name);
  }

  /**
   * One page of the queue's jobs in `state`, in the store's order for it (ready: priority then
   * FIFO; scheduled: by run-at; running: by lease start; completed, cancelled, dead: newest first),
   * optionally only those of one `name` and whose time lies in `[from, to]` — run-at for ready and
   * scheduled jobs, lease start for running ones, finish time for the others (epoch ms, store
   * clock). `offset` skips matching jobs; `limit` (1–1,000, default 50) bounds the page. Rejects
   * with `InvalidArgumentError` on bad input.
   *
   * ## Example
   * ```ts
   * const hourAgo = Date.now() - 3_600_000;
   * const page = await emails.list({ state: 'dead', name: 'welcome', from: hourAgo, limit: 20 });
   * const next = await emails.list({ state: 'dead', name: 'welcome', from: hourAgo, limit: 20, offset: 20 });
   * ```
   */
  async list(options: ListQuery): Promise<readonly JobRecord<T>[]> {
    const { state, offset, limit } = options;
    if (!(JOB_STATES as readonly unknown[]).includes(state)) {
      throw new InvalidArgumentError(
        `state must be one of ${JOB_STATES.join(', ')}, got ${JSON.stringify(state)}`,
      );
    }
    if (offset !== undefined && (!Number.isInteger(offset) || offset < 0)) {
      throw new InvalidArgumentError(`offset must be an integer ≥ 0, got ${String(offset)}`);
    }
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)) {
      throw new InvalidArgumentError(
        `limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${String(limit)}`,
      );
    }
    assertListOptions(options);
    const { state: _state, ...listOptions } = options;
    return (await this.store.listJobs(this.name, state, listOptions)) as readonly JobRecord<T>[];
  }

  getJob(id: string): Promise<JobRecord<T> | undefined> {
    return this.store.getJob<T>(this.name, id);
  }
  cancel(id: string): Promise<CancelResult> {
    return this.store.cancel(this.name, id);
  }
  pause(): Promise<void> {
    return this.store.pause(this.name);
  }
  resume(): Promise<void> {
    return this.store.resume(this.name);
  }
  stats(): Promise<QueueStats> {
    return this.store.stats(this.name);
  }

  /**
   * Deletes every waiting job (ready and scheduled: delayed, retrying, snoozed); running and
   * finished jobs stay. Resolves with how many were deleted. See `Store.drain`.
   */
  drain(): Promise<number> {
    const store = this.store;
    if (!store.drain) return Promise.reject(this.unsupported('drain'));
    return store.drain(this.name);
  }

  /**
   * Deletes the whole queue: its jobs in every state, counters, settings, configuration (schema,
   * retentions, schedules), history and event stream. Rejects with `QueueBusyError`, deleting
   * nothing, while jobs run, unless `{ force: true }`: running jobs are then deleted too, their
   * workers told to abort them, and what those workers send later is refused. Adding to the queue
   * afterwards starts a new, empty queue. See `Store.obliterate`.
   *
   * ## Example
   * ```ts
   * await emails.pause();
   * // … wait for running jobs to finish, or:
   * const { jobs } = await emails.obliterate({ force: true });
   * ```
   */
  obliterate(options: ObliterateOptions = {}): Promise<ObliterateResult> {
    const store = this.store;
    if (!store.obliterate) return Promise.reject(this.unsupported('obliterate'));
    return store.obliterate(this.name, options).then((result) => {
      // The stored schema went with the queue: the next add publishes the local one again, or goes
      // without one.
      this.configReady = undefined;
      this.configLoaded = false;
      this.validator = this.options.schema ? compileSchema(this.options.schema) : undefined;
      return result;
    });
  }

  private unsupported(what: string): InvalidArgumentError {
    return new InvalidArgumentError(`this store (${this.store.kind}) cannot ${what} a queue`);
  }

  /** Loads the stored schema (no local one) or publishes the local one, once. */
  private ensureConfig(): Promise<void> {
    if (this.configReady) return this.configReady;
    const ready: Promise<void> = this.store.getQueueConfig(this.name).then(
      async (stored: QueueConfig) => {
        // An obliterate dropped this load meanwhile: what it read is gone, the next add loads again.
        if (this.configReady !== ready) return;
        if (this.options.schema) {
          if (JSON.stringify(stored.schema) !== JSON.stringify(this.options.schema)) {
            await this.updateConfig({ schema: this.options.schema });
          }
        } else if (stored.schema) {
          this.validator = compileSchema(stored.schema);
        }
        if (this.configReady === ready) this.configLoaded = true;
      },
      (err: unknown) => {
        if (this.configReady === ready) this.configReady = undefined; // try again on the next add
        throw err;
      },
    );
    this.configReady = ready;
    return ready;
  }
}

function recordToEvent(rec: JobRecord): JobEvent | undefined {
  const at = rec.finishedAt ?? 0;
  switch (rec.state) {
    case 'completed':
      return { queue: rec.queue, id: rec.id, kind: 'completed', at, result: rec.result };
    case 'dead':
      return {
        queue: rec.queue,
        id: rec.id,
        kind: 'dead',
        at,
        ...(rec.reason ? { reason: rec.reason } : {}),
      };
    case 'cancelled':
      return {
        queue: rec.queue,
        id: rec.id,
        kind: 'cancelled',
        at,
        ...(rec.reason ? { reason: rec.reason } : {}),
      };
    case 'ready':
    case 'scheduled':
    case 'running':
      return undefined;
  }
}

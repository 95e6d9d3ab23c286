import { InvalidArgumentError } from '@sluice/core';
import { assertQueueName } from '@sluice/core/internal';
import { partitionTag } from './slots';

/**
 * The fixed keys of one queue, by the names the Lua script headers use in their `KEYS:` sections.
 * Scripts receive exactly the keys their header lists, in that order (see `scripts.ts`).
 */
export interface QueueKeyMap {
  /** Hash: `p` paused, `c` concurrency override, `v` settings version, `r` retention (compact). */
  readonly settings: string;
  /** Zset: the priorities that have ready jobs (member = score = priority). */
  readonly priorities: string;
  /** Zset: scheduled job ids (delayed, retrying, snoozed) by run-at. */
  readonly scheduled: string;
  /** Zset: leases (one per reserve call) by deadline; `:t:<token>` holds their jobs, `:n` counts them (`lua/includes/leases.lua`). */
  readonly active: string;
  /** List: dead-letter ids, newest first. */
  readonly dead: string;
  /** List: completed and cancelled ids, newest first (trimmed to the retention). */
  readonly finished: string;
  /** Hash: totals (`e c f d`), counts (`nc nx`) and sequences (`id`, `tk`). */
  readonly counters: string;
  /** String: the queue configuration as JSON. */
  readonly config: string;
  /** Stream: job outcome events, capped. */
  readonly events: string;
  /** Zset: permits of a queue-wide cap held by work leased elsewhere (a partitioned queue's), by expiry. */
  readonly permits: string;
}

/** A queue key name as used in script headers. */
export type QueueKeyName = keyof QueueKeyMap;

/** Every key and channel of one queue. All share one hash tag, so a queue lives in one Cluster slot. */
export interface QueueKeys extends QueueKeyMap {
  readonly queue: string;
  /** The hash tag (without braces) every key of the queue carries. */
  readonly tag: string;
  /** Prefix of job record hashes: `<jobPrefix><id>`. */
  readonly jobPrefix: string;
  /**
   * Prefix of the compact record buckets (`lua/includes/compact.lua`): `<compactPrefix><n>` holds
   * the records of jobs added with every default whose automatic ids are 10,000 × n to
   * 10,000 × n + 9,999. The scripts derive it from `jobPrefix` (its `j:` replaced by `c:`).
   */
  readonly compactPrefix: string;
  /** Prefix of the per-priority ready lists: `<readyPrefix><priority>`. */
  readonly readyPrefix: string;
  /**
   * Prefix of the group keys (see `lua/includes/groups.lua`): `<groupPrefix>s:<group>` (state hash),
   * `<groupPrefix>w:<group>` (waiting jobs), `<groupPrefix>i` (groups index), `<groupPrefix>n`
   * (waiting count), `<groupPrefix>p` (paused groups).
   */
  readonly groupPrefix: string;
  /** Prefix of unique-key locks: `<uniquePrefix><unique key>`. */
  readonly uniquePrefix: string;
  /** Prefix of per-minute history hashes: `<historyPrefix><minute start ms>`. */
  readonly historyPrefix: string;
  /** Pub/sub channel told when jobs become ready. */
  readonly wakeChannel: string;
  /** Prefix of the channels adds hand jobs over on: `<handoffPrefix><park id>` (`lua/includes/parks.lua`). */
  readonly handoffPrefix: string;
  /** Pub/sub channel carrying ids of running jobs someone cancelled. */
  readonly cancelChannel: string;
  /** Pub/sub channel carrying settings changes. */
  readonly settingsChannel: string;
}

/**
 * Suffixes after a queue's base (`<prefix>:{<tag>}:` or `<prefix>:{<tag>}{<queue>}:`). Defined once,
 * here: the Lua scripts never spell a key, they receive keys and key prefixes from this builder.
 */
const SUFFIX = {
  settings: 'st',
  priorities: 'wp',
  scheduled: 's',
  active: 'a',
  dead: 'd',
  finished: 'f',
  counters: 'n',
  config: 'cfg',
  events: 'ev',
  permits: 'pm',
  job: 'j:',
  compact: 'c:',
  ready: 'w:',
  group: 'g',
  unique: 'u:',
  history: 'h:',
  wake: 'wake',
  handoff: 'hand:',
  cancel: 'cancel',
  settingsChannel: 'settings',
} as const;

/**
 * {@link KeyBuilder.compact} for a queue's keys: the bucket of an id is the id less its last four
 * digits (`compactBucket` of `lua/includes/compact.lua`).
 */
export function compactBucketKey(keys: Pick<QueueKeys, 'compactPrefix'>, id: string): string {
  return keys.compactPrefix + (id.length > 4 ? id.slice(0, -4) : '');
}

/**
 * The ids a lease was given, as `leaseOpen` of `lua/includes/leases.lua` keeps them: field `j` of
 * its hash (`key`) holds them joined by NUL bytes (one id: the id itself), or `''` when an id of
 * several holds a NUL byte: then they are the list `list`.
 */
export function leaseIdKeys(keys: Pick<QueueKeys, 'active'>, token: string): { key: string; list: string } {
  const key = `${keys.active}:t:${token}`;
  return { key, list: `${key}:i` };
}

const LIMITER_SUFFIX = 'rl:';
const QUEUES_SUFFIX = 'queues';
/** `~` cannot start a queue name, so this tag never meets a queue's keys. */
const WORKERS_TAG = '{~workers}';

/**
 * Builds every key name the store uses, so a typo cannot compile.
 *
 * Layout (`P` = prefix, `Q` = queue, `T` = its hash tag, by default the queue name):
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:queues` | set | every queue name seen |
 * | `P:limit-tags` | hash | Cluster only: rate-limit key → the hash tag its log lives under |
 * | `P:{Q}:j:<id>` | hash | one job record (short fields, payload JSON verbatim) |
 * | `P:{Q}:c:<n>` | hash | compact records of jobs with every default, ids 10,000 × n to 10,000 × n + 9,999 |
 * | `P:{Q}:w:<priority>` | list | ready job ids of one priority, FIFO |
 * | `P:{Q}:wp` | zset | priorities with ready jobs |
 * | `P:{Q}:gs:<group>` / `:gw:<group>` | hash / zset | a group's slots and turn / its waiting jobs |
 * | `P:{Q}:gi` / `:gn` / `:gp` | zset / string / set | groups holding anything or paused / waiting jobs of all groups / paused groups |
 * | `P:{Q}:s` / `:a` | zset | scheduled ids by run-at / running ids by lease deadline |
 * | `P:{Q}:a:p` | hash | parked demand of idle workers, by park id (`lua/includes/parks.lua`) |
 * | `P:{Q}:a:f` | hash | finished index: id → finish and start of a job completed with no result (`lua/includes/leases.lua`) |
 * | `P:{Q}:d` / `:f` | list | dead / finished (completed + cancelled) ids, newest first |
 * | `P:{Q}:n` / `:st` | hash | counters and sequences / settings |
 * | `P:{Q}:cfg` | string | queue configuration JSON |
 * | `P:{Q}:ev` | stream | outcome events, capped |
 * | `P:{Q}:pm` | zset | permits of a partitioned queue's global concurrency, by expiry |
 * | `P:{Q}:u:<key>` | string, TTL | unique-key lock holding the job id |
 * | `P:{Q}:h:<minute>` | hash, TTL | per-minute completed / failed counters |
 * | `P:rl:<key>` (`P:{T}:rl:<key>` in Cluster) | hash, TTL | sliding-log rate limiter |
 * | `P:{~workers}:info` / `:exp` | hash / zset | live worker reports / their expiry |
 *
 * When `hashTag(queue)` differs from the queue name, the queue's base is `P:{T}{Q}:` instead: the
 * second braces keep queues sharing a tag apart (queue names and tags cannot contain braces).
 * A partition of a partitioned queue (`<queue>~<n>.<i>`) is tagged by default so that its slot falls
 * in the i-th n-th of the slots (see `partitionTag`), spreading a queue's partitions over the masters.
 *
 * ## Example
 * ```ts
 * const keys = new KeyBuilder({ prefix: 'shop', cluster: false });
 * keys.queue('emails').scheduled; // 'shop:{emails}:s'
 * keys.job('emails', '42');       // 'shop:{emails}:j:42'
 * keys.limiter('emails', 'smtp'); // 'shop:rl:smtp'
 * ```
 */
export class KeyBuilder {
  readonly prefix: string;
  private readonly hashTag: (queue: string) => string;
  private readonly cluster: boolean;
  private readonly cache = new Map<string, QueueKeys>();

  constructor(options: { prefix: string; hashTag?: (queue: string) => string; cluster: boolean }) {
    const prefix = options.prefix.endsWith(':') ? options.prefix.slice(0, -1) : options.prefix;
    if (prefix === '' || /[{}]/.test(prefix)) {
      throw new InvalidArgumentError(
        `prefix must be non-empty and contain no braces, got "${options.prefix}"`,
      );
    }
    this.prefix = prefix;
    this.hashTag = options.hashTag ?? ((queue) => partitionTag(queue) ?? queue);
    this.cluster = options.cluster;
  }

  /** The set of every queue name the store has seen. */
  get queues(): string {
    return `${this.prefix}:${QUEUES_SUFFIX}`;
  }

  /**
   * Hash of rate-limit key → the hash tag its log lives under (Cluster only): every process checks a
   * shared limit against it, so queues in different slots never split one limit.
   */
  get limitTags(): string {
    return `${this.prefix}:limit-tags`;
  }

  /** Hash of live worker reports (worker id → `"<last seen>|<JSON>"`), in one slot with {@link workerExpiry}. */
  get workerInfo(): string {
    return `${this.prefix}:${WORKERS_TAG}:info`;
  }

  /** Zset of worker ids by the time their report expires. */
  get workerExpiry(): string {
    return `${this.prefix}:${WORKERS_TAG}:exp`;
  }

  /** Every key of `queue` (validates the name). */
  queue(queue: string): QueueKeys {
    const cached = this.cache.get(queue);
    if (cached) return cached;
    assertQueueName(queue);
    const tag = this.tagOf(queue);
    const base = tag === queue ? `${this.prefix}:{${tag}}:` : `${this.prefix}:{${tag}}{${queue}}:`;
    const keys: QueueKeys = {
      queue,
      tag,
      settings: base + SUFFIX.settings,
      priorities: base + SUFFIX.priorities,
      scheduled: base + SUFFIX.scheduled,
      active: base + SUFFIX.active,
      dead: base + SUFFIX.dead,
      finished: base + SUFFIX.finished,
      counters: base + SUFFIX.counters,
      config: base + SUFFIX.config,
      events: base + SUFFIX.events,
      permits: base + SUFFIX.permits,
      jobPrefix: base + SUFFIX.job,
      compactPrefix: base + SUFFIX.compact,
      readyPrefix: base + SUFFIX.ready,
      groupPrefix: base + SUFFIX.group,
      uniquePrefix: base + SUFFIX.unique,
      historyPrefix: base + SUFFIX.history,
      wakeChannel: base + SUFFIX.wake,
      handoffPrefix: base + SUFFIX.handoff,
      cancelChannel: base + SUFFIX.cancel,
      settingsChannel: base + SUFFIX.settingsChannel,
    };
    this.cache.set(queue, keys);
    return keys;
  }

  /**
   * The rate-limit log for `limitKey` as used from `queue`. On a single node it does not depend on
   * the queue, so any queues share a limit by naming the same key. In Cluster it must live in the
   * queue's slot: queues share a limit only if they also share a hash tag.
   */
  limiter(queue: string, limitKey: string): string {
    return this.cluster
      ? `${this.prefix}:{${this.tagOf(queue)}}:${LIMITER_SUFFIX}${limitKey}`
      : `${this.prefix}:${LIMITER_SUFFIX}${limitKey}`;
  }

  /** The job record key of `id` in `queue`. */
  job(queue: string, id: string): string {
    return this.queue(queue).jobPrefix + id;
  }

  /**
   * The key of the compact bucket that holds the record of job `id` in `queue` if it has a compact
   * one (a job added with every default, `lua/includes/compact.lua`; the field is the id).
   */
  compact(queue: string, id: string): string {
    return compactBucketKey(this.queue(queue), id);
  }

  private tagOf(queue: string): string {
    const tag = this.hashTag(queue);
    if (typeof tag !== 'string' || tag === '' || /[{}]/.test(tag)) {
      throw new InvalidArgumentError(
        `hashTag("${queue}") must return a non-empty string without braces, got ${JSON.stringify(tag)}`,
      );
    }
    return tag;
  }
}

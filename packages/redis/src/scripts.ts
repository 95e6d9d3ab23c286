import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { InvalidArgumentError } from '@sluice/core';
import { RedisScriptError, scriptError, toStoreError, type ScriptContext } from './errors';
import type { QueueKeyName, QueueKeys } from './keys';

/** A connection the store talks through: one node or a Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Where the Lua sources live: `packages/redis/lua`, next to `src/` and `dist/` (tsc does not copy
 * them), so the same path works under Jest (from `src/`) and once built (from `dist/`).
 */
export const LUA_DIR = join(__dirname, '..', 'lua');

/**
 * A key a script receives: one of the queue's fixed keys, the rate-limit log of the call, or one of the
 * store-wide worker registry keys.
 */
export type ScriptKeyName = QueueKeyName | 'limiter' | 'workerInfo' | 'workerExpiry';

/**
 * Every script and the keys it receives, in the order its header lists them. The file of a script is
 * `lua/<name>-<number of keys>.lua`; the loader and a test check that the three agree.
 */
export const SCRIPT_KEYS = {
  enqueue: ['counters', 'priorities', 'scheduled', 'settings', 'active'],
  reserve: ['settings', 'priorities', 'scheduled', 'active', 'counters', 'limiter'],
  settle: ['settings', 'priorities', 'scheduled', 'active', 'dead', 'finished', 'counters', 'events'],
  extend: ['active'],
  unpark: ['active'],
  recover: ['priorities', 'active', 'dead', 'counters', 'events', 'settings', 'finished'],
  reject: ['active', 'dead', 'counters', 'events', 'priorities'],
  cancel: ['settings', 'priorities', 'scheduled', 'active', 'finished', 'counters', 'events'],
  'get-job': ['active', 'scheduled'],
  'list-jobs': ['priorities', 'scheduled', 'active', 'dead', 'finished'],
  'retry-jobs': ['priorities', 'dead', 'finished', 'counters'],
  'promote-job': ['scheduled', 'priorities'],
  'remove-job': ['priorities', 'scheduled', 'active', 'dead', 'finished', 'counters'],
  purge: ['dead', 'finished', 'counters', 'active'],
  drain: ['priorities', 'scheduled'],
  'pause-group': ['priorities'],
  'list-groups': ['settings'],
  obliterate: [
    'settings',
    'priorities',
    'scheduled',
    'active',
    'dead',
    'finished',
    'counters',
    'config',
    'events',
  ],
  stats: ['settings', 'priorities', 'scheduled', 'active', 'dead', 'finished', 'counters'],
  history: ['counters'],
  settings: ['settings'],
  'write-config': ['config', 'settings'],
  'update-job': ['events', 'active'],
  'limit-usage': ['limiter'],
  'rebase-limit': ['limiter'],
  'refund-limit': ['limiter'],
  'grant-limit': ['limiter'],
  'acquire-permits': ['permits', 'counters'],
  'extend-permits': ['permits'],
  'pause-limit': ['limiter'],
  'set-limit': ['limiter'],
  'store-time': ['settings'],
  'report-worker': ['workerInfo', 'workerExpiry'],
  workers: ['workerInfo', 'workerExpiry'],
} as const satisfies Record<string, readonly ScriptKeyName[]>;

export type ScriptName = keyof typeof SCRIPT_KEYS;
export const SCRIPT_NAMES = Object.keys(SCRIPT_KEYS) as ScriptName[];

/** A script ready to run. */
export interface LoadedScript {
  readonly name: ScriptName;
  /** The file it was read from, relative to {@link LUA_DIR}. */
  readonly file: string;
  /**
   * `sluice:<name>:<first 12 hex of the SHA-1>`: the source (includes expanded, a version line on
   * top) decides the name, so two deployed versions of the package never run each other's scripts.
   */
  readonly versionedName: string;
  readonly keyNames: readonly ScriptKeyName[];
  readonly numberOfKeys: number;
  /** The source as sent to Redis. */
  readonly source: string;
  readonly sha: string;
}

const INCLUDE = /^--- @include "([\w./-]+)"\s*$/;

/** Expands `--- @include "includes/x.lua"` lines (recursively, each file once per script). */
export function expandIncludes(file: string, luaDir: string = LUA_DIR, seen = new Set<string>()): string {
  seen.add(file);
  const lines = readFileSync(join(luaDir, file), 'utf8').split('\n');
  return lines
    .map((line) => {
      const match = INCLUDE.exec(line);
      if (!match?.[1]) return line;
      const included = match[1];
      if (seen.has(included)) return `-- (${included} already included)`;
      return expandIncludes(included, luaDir, seen);
    })
    .join('\n');
}

/** A top-level `local function <name>(` line: the start of a definition {@link withoutUnusedFunctions} may drop. */
const DEFINITION = /^local function ([A-Za-z_]\w*)\(/;

/** The text without its comments (whole-line and block ones), for finding which names it uses. */
function codeOf(text: string): string {
  return text.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/^\s*--.*$/gm, '');
}

/**
 * `body` without the top-level local functions it never calls. The includes define every helper of
 * a family, and Lua makes a closure of each definition (with its upvalues, garbage for the
 * collector) on every run of a script, whether it is called or not: about 70 closures for one
 * settle, a tenth of the instructions of a settle of one job. A definition runs from a line
 * `local function <name>(` to the next line that is `end` alone (the formatter puts the end of a
 * top-level function there and nothing else); it is kept when its name appears in the code outside
 * the definitions, or in a kept definition. Comments do not count as uses.
 */
export function withoutUnusedFunctions(body: string): string {
  const lines = body.split('\n');
  const definitions: { name: string; start: number; end: number; code: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const name = DEFINITION.exec(lines[i] ?? '')?.[1];
    if (name === undefined) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== 'end') end++;
    if (end >= lines.length) throw new Error(`local function ${name} has no \`end\` line of its own`);
    definitions.push({ name, start: i, end, code: codeOf(lines.slice(i + 1, end + 1).join('\n')) });
    i = end;
  }
  const inside = new Set<number>();
  for (const d of definitions) for (let i = d.start; i <= d.end; i++) inside.add(i);
  const uses = (code: string, name: string): boolean => new RegExp(`\\b${name}\\b`).test(code);
  const outside = codeOf(lines.filter((_, i) => !inside.has(i)).join('\n'));
  const kept = new Set<string>(definitions.filter((d) => uses(outside, d.name)).map((d) => d.name));
  for (let grew = true; grew;) {
    grew = false;
    for (const d of definitions) {
      if (!kept.has(d.name)) continue;
      for (const other of definitions) {
        if (!kept.has(other.name) && uses(d.code, other.name)) {
          kept.add(other.name);
          grew = true;
        }
      }
    }
  }
  const dropped = new Set<number>();
  for (const d of definitions) {
    if (kept.has(d.name)) continue;
    for (let i = d.start; i <= d.end; i++) dropped.add(i);
  }
  return lines.filter((_, i) => !dropped.has(i)).join('\n');
}

/** The file of each script: `<name>-<n>.lua`. Throws if one is missing or ambiguous. */
export function scriptFiles(luaDir: string = LUA_DIR): Record<ScriptName, string> {
  const files = readdirSync(luaDir).filter((f) => f.endsWith('.lua'));
  const out: Partial<Record<ScriptName, string>> = {};
  for (const name of SCRIPT_NAMES) {
    const pattern = new RegExp(`^${name}-(\\d+)\\.lua$`);
    const matches = files.filter((f) => pattern.test(f));
    if (matches.length !== 1 || matches[0] === undefined) {
      throw new RedisScriptError(name, `expected one lua/${name}-<keys>.lua, found ${matches.length}`);
    }
    out[name] = matches[0];
  }
  return out as Record<ScriptName, string>;
}

/** The key count a file name declares (`reserve-8.lua` → 8). */
export function keyCountOfFile(file: string): number {
  const match = /-(\d+)\.lua$/.exec(file);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

let packageVersion: string | undefined;
function version(): string {
  if (packageVersion === undefined) {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    packageVersion = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return packageVersion;
}

/** What every script of a store on a Cluster runs first. */
const SLOT_GUARD = 'includes/slot-guard.lua';

/** How `includes/publish.lua` publishes: the line the loader swaps for a store on a Cluster. */
const PUBLISH_LINE = "local PUBLISH_COMMAND = 'PUBLISH'";

/**
 * Reads, expands and hashes every script. `cluster`: the scripts of a store on a Redis Cluster,
 * which publish with `SPUBLISH` (sharded pub/sub: a message goes to the shard owning the channel's
 * slot, not to every node) and begin with `includes/slot-guard.lua` (a script on a slot that is
 * moving stops before its first write); their source, and so their SHA and name, differ from the
 * one-server set.
 */
export function loadScripts(
  luaDir: string = LUA_DIR,
  { cluster = false }: { readonly cluster?: boolean } = {},
): Record<ScriptName, LoadedScript> {
  const files = scriptFiles(luaDir);
  const out: Partial<Record<ScriptName, LoadedScript>> = {};
  for (const name of SCRIPT_NAMES) {
    const file = files[name];
    const keyNames = SCRIPT_KEYS[name];
    if (keyCountOfFile(file) !== keyNames.length) {
      throw new RedisScriptError(
        name,
        `lua/${file} does not take the ${keyNames.length} keys its call site passes`,
      );
    }
    let body = expandIncludes(file, luaDir);
    if (cluster && body.includes('PUBLISH_COMMAND')) {
      if (!body.includes(PUBLISH_LINE)) {
        throw new RedisScriptError(name, `includes/publish.lua no longer holds "${PUBLISH_LINE}"`);
      }
      body = body.replace(PUBLISH_LINE, "local PUBLISH_COMMAND = 'SPUBLISH'");
    }
    if (cluster) body = `${expandIncludes(SLOT_GUARD, luaDir)}\n${body}`;
    body = withoutUnusedFunctions(body);
    const source = `-- @sluice/redis ${version()} ${name}${cluster ? ' (cluster)' : ''}\n${body}`;
    const sha = createHash('sha1').update(source).digest('hex');
    out[name] = {
      name,
      file,
      versionedName: `sluice:${name}:${sha.slice(0, 12)}`,
      keyNames,
      numberOfKeys: keyNames.length,
      source,
      sha,
    };
  }
  return out as Record<ScriptName, LoadedScript>;
}

const loaded: { node?: Record<ScriptName, LoadedScript>; cluster?: Record<ScriptName, LoadedScript> } = {};

/**
 * The scripts of this package version, loaded once per process: those for one server, or (`cluster`)
 * those for a Redis Cluster (see {@link loadScripts}).
 */
export function scripts(cluster = false): Record<ScriptName, LoadedScript> {
  if (cluster) return (loaded.cluster ??= loadScripts(LUA_DIR, { cluster: true }));
  return (loaded.node ??= loadScripts());
}

/** The keys a script receives, in header order, from a resolver of key names. */
export function scriptKeys(script: LoadedScript, resolve: (name: ScriptKeyName) => string): string[] {
  return script.keyNames.map(resolve);
}

/**
 * Resolves the key names of a queue's scripts. Without a rate limit the `limiter` slot gets a key of
 * the queue (never read), so the call still names only keys of the queue's slot.
 */
export function queueKeyResolver(keys: QueueKeys, limiterKey?: string): (name: ScriptKeyName) => string {
  return (name) => {
    if (name === 'limiter') return limiterKey ?? keys.settings;
    if (name === 'workerInfo' || name === 'workerExpiry') {
      throw new InvalidArgumentError(`${name} is not a key of queue "${keys.queue}"`);
    }
    return keys[name];
  };
}

/**
 * The server does not hold the script: `NOSCRIPT`, also as the last error of ioredis' Cluster
 * redirections (a slot moving to a master that has not run the script yet, reached by `ASK`).
 */
export function isNoScript(error: unknown): boolean {
  return (
    error instanceof Error &&
    /^(?:Too many Cluster redirections\. Last error: (?:\w*Error: )?)?NOSCRIPT\b/.test(error.message)
  );
}

/**
 * A Cluster refused the command without running it: `TRYAGAIN` (a call on several keys of a slot
 * whose keys are moving to another master), `CLUSTERDOWN`, or a `MOVED`/`ASK` redirection; also
 * ioredis' "Too many Cluster redirections" when its last error was one of those (it gives up after
 * `maxRedirections` tries, about 1.6 s of `TRYAGAIN`). And a script of the Cluster set stopped by
 * Redis before its first write: its slot guard (`includes/slot-guard.lua`, the first thing every
 * such script does) met a moving slot, or the Cluster was down when it began. Not a lost
 * connection: a command in flight when one closes may have run.
 */
export function isClusterRefusal(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    /^(?:Too many Cluster redirections\. Last error: (?:\w*Error: )?)?(?:TRYAGAIN|CLUSTERDOWN|MOVED|ASK)\b/.test(
      error.message,
    ) ||
    /^ERR Script attempted to (?:access a non local key in a cluster node|execute a (?:write )?command while the cluster is down)\b/.test(
      error.message,
    )
  );
}

/** How long a call refused by a Cluster ({@link isClusterRefusal}) is tried again by default. */
export const CLUSTER_RETRY_MS = 30_000;

/**
 * Runs `call`, and again while a Cluster refuses it ({@link isClusterRefusal}: it did not run), for up
 * to `retryMs` (waits of 20 ms doubling to 500 ms): a slot that moves to another master (resharding)
 * delays calls on its queue for as long as its keys are split, instead of failing them.
 */
export async function retryClusterRefusals<R>(
  call: () => Promise<R>,
  retryMs: number = CLUSTER_RETRY_MS,
): Promise<R> {
  const deadline = Date.now() + retryMs;
  for (let wait = 20; ; wait = Math.min(wait * 2, 500)) {
    try {
      return await call();
    } catch (error) {
      if (!isClusterRefusal(error) || Date.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/**
 * Replicas a script's writes must reach: the script and a `WAIT` go in one pipeline on the
 * connection to the master that runs it, and `replicated.acknowledged` gets the number of replicas
 * that acknowledged (`WAIT` covers every earlier write on that connection).
 */
export interface ReplicaWait {
  readonly replicas: number;
  readonly timeoutMs: number;
  acknowledged?: number;
}

/** The script (`EVALSHA`, or `EVAL` of its source) then `WAIT`, pipelined to the node of its keys. */
async function runAndWait(
  client: RedisClient,
  script: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  replicated: ReplicaWait,
  withSource: boolean,
): Promise<unknown> {
  const pipeline = client.pipeline();
  if (withSource) pipeline.eval(script.source, keys.length, ...keys, ...args);
  else pipeline.evalsha(script.sha, keys.length, ...keys, ...args);
  pipeline.wait(replicated.replicas, replicated.timeoutMs);
  const [ran, waited] = (await pipeline.exec()) ?? [];
  if (ran?.[0]) throw ran[0];
  if (waited?.[0]) throw waited[0];
  replicated.acknowledged = Number(waited?.[1] ?? 0);
  return ran?.[1];
}

/**
 * Runs the script with a `PING` written before it in the same write, on a connection to one server
 * (not a Cluster): the `PING`'s answer queues this connection's reply before the script runs, so
 * that Redis writes what the script publishes first. Redis writes its pending replies last-queued
 * first, and a reply queued after a script's `PUBLISH` (its own caller's) goes out ahead of the
 * message; each of those writes wakes a sleeping process, which on a virtual machine costs the
 * server tens of microseconds. An add that hands its job to a parked worker wants the worker woken
 * first: its reply only lets the caller go on. Measured in bench/README.md ("The handoff written
 * before the add's reply").
 */
function runPublishingFirst(
  client: Redis,
  script: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  withSource: boolean,
): Promise<unknown> {
  // Corked, the two commands leave in one write, so Redis reads and runs them in one turn.
  const stream = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
  const corked = client.status === 'ready' && typeof stream?.cork === 'function';
  if (corked) stream.cork?.();
  try {
    // Its answer is not needed; a failure of the connection fails the script's call too.
    client.ping().catch(() => undefined);
    return withSource
      ? client.eval(script.source, keys.length, ...keys, ...args)
      : client.evalsha(script.sha, keys.length, ...keys, ...args);
  } finally {
    if (corked) stream.uncork?.();
  }
}

/**
 * The one way scripts run: `EVALSHA`, and on `NOSCRIPT` (a restarted or flushed server, a failover,
 * a Cluster node that has not seen the script yet) `EVAL` of the source, which also caches it again.
 * A negative number answered by a script becomes a `RedisScriptError` (or the error its code stands
 * for) through {@link scriptError}; connection and protocol failures become `StoreError`s.
 * `publishesFirst`: on one server, what the script publishes is written before its reply
 * ({@link runPublishingFirst}); an add that may hand jobs over asks for it.
 */
export async function execScript(
  client: RedisClient,
  script: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  context: Omit<ScriptContext, 'script'>,
  moreKeys: readonly string[] = [],
  retryMs: number = CLUSTER_RETRY_MS,
  replicated?: ReplicaWait,
  publishesFirst = false,
): Promise<unknown> {
  if (keys.length !== script.numberOfKeys) {
    throw new RedisScriptError(
      script.versionedName,
      `malformed arguments: takes ${script.numberOfKeys} keys, got ${keys.length}`,
      { queue: context.queue },
    );
  }
  // Scripts whose header lists keys after their fixed ones ("7…") take `moreKeys` there.
  const all = moreKeys.length > 0 ? [...keys, ...moreKeys] : keys;
  let reply: unknown;
  try {
    const run = (withSource: boolean): Promise<unknown> => {
      if (replicated) return runAndWait(client, script, all, args, replicated, withSource);
      if (publishesFirst && !client.isCluster) {
        return runPublishingFirst(client as Redis, script, all, args, withSource);
      }
      return withSource
        ? client.eval(script.source, all.length, ...all, ...args)
        : client.evalsha(script.sha, all.length, ...all, ...args);
    };
    reply = await retryClusterRefusals(async () => {
      try {
        return await run(false);
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return await run(true);
      }
    }, retryMs);
  } catch (error) {
    throw toStoreError(error, context.queue);
  }
  if (typeof reply === 'number' && reply < 0) {
    throw scriptError(reply, { ...context, script: script.versionedName });
  }
  return reply;
}

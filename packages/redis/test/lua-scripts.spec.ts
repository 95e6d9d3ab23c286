import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OutcomeKind } from '@sluice/core';
import { StoreText } from '@sluice/core/internal';
import { KeyBuilder, loadScripts, LUA_DIR, SCRIPT_KEYS, SCRIPT_NAMES, ScriptErrorCode } from '@sluice/redis';
import { SCRIPT_DEFAULTS } from '../src/codec';
import {
  expandIncludes,
  keyCountOfFile,
  queueKeyResolver,
  scriptFiles,
  scriptKeys,
  withoutUnusedFunctions,
} from '../src/scripts';

interface Header {
  readonly keys: { readonly index: number; readonly name: string }[];
  readonly argv: number[];
  /** The name each fixed ARGV entry is documented with, by index. */
  readonly argvNames: Map<number, string>;
  /** The ARGV section says `none`. */
  readonly noArgv: boolean;
  readonly sections: Set<string>;
  readonly errors: number[];
}

/** Parses the `--[[ … ]]` header of a script file. */
function parseHeader(text: string): Header {
  const end = text.indexOf(']]');
  expect(text.startsWith('--[[')).toBe(true);
  expect(end).toBeGreaterThan(0);
  const lines = text.slice(4, end).split('\n');
  const keys: { index: number; name: string }[] = [];
  const argv: number[] = [];
  const argvNames = new Map<number, string>();
  const errors: number[] = [];
  let noArgv = false;
  const sections = new Set<string>();
  let section = '';
  for (const line of lines) {
    const heading = /^ {2}(KEYS|ARGV|Returns|Errors):\s*$/.exec(line);
    if (heading?.[1]) {
      section = heading[1];
      sections.add(section);
      continue;
    }
    if (line.trim() === '') continue;
    if (section === 'KEYS') {
      const m = /^ {4}(\d+)\s+(\S+)/.exec(line);
      if (m?.[1] && m[2]) keys.push({ index: Number(m[1]), name: m[2] });
    } else if (section === 'ARGV') {
      if (line.trim() === 'none') noArgv = true;
      const m = /^ {4}(\d+)\s+(\S+)/.exec(line);
      if (m?.[1] && m[2]) {
        argv.push(Number(m[1]));
        argvNames.set(Number(m[1]), m[2]);
      }
    } else if (section === 'Errors') {
      const m = /^ {4}(-\d+)\s/.exec(line);
      if (m?.[1]) errors.push(Number(m[1]));
    }
  }
  return { keys, argv, argvNames, noArgv, sections, errors };
}

/** The locals a script binds to fixed ARGV entries (`local a, b = ARGV[1], tonumber(ARGV[2])`), by index. */
function argvBindings(text: string): Map<number, string> {
  const bound = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^local ([\w, ]+) = (.*ARGV\[\d+\].*)$/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    const names = m[1].split(',').map((n) => n.trim());
    const indices = [...m[2].matchAll(/ARGV\[(\d+)\]/g)].map((x) => Number(x[1]));
    expect(indices).toHaveLength(names.length);
    names.forEach((name, i) => bound.set(indices[i] ?? 0, name));
  }
  return bound;
}

describe('Lua scripts', () => {
  const files = scriptFiles();

  it('registers every script file, and every registered script has exactly one file', () => {
    const onDisk = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
    expect(onDisk.sort()).toEqual(Object.values(files).sort());
    expect(Object.keys(files).sort()).toEqual([...SCRIPT_NAMES].sort());
  });

  describe.each(SCRIPT_NAMES)('%s', (name) => {
    const file = files[name];
    const text = readFileSync(join(LUA_DIR, file), 'utf8');
    const header = parseHeader(text);

    it('opens with a header listing KEYS, ARGV, Returns and Errors', () => {
      expect([...header.sections].sort()).toEqual(['ARGV', 'Errors', 'KEYS', 'Returns']);
      if (header.noArgv) {
        expect(header.argv).toEqual([]);
      } else {
        expect(header.argv.length).toBeGreaterThan(0);
        expect(header.argv[0]).toBe(1);
      }
    });

    it('declares as many keys as its file name says and its call site passes, in the same order', () => {
      const declared = header.keys.map((k) => k.name);
      expect(header.keys.map((k) => k.index)).toEqual(declared.map((_, i) => i + 1));
      expect(declared).toHaveLength(keyCountOfFile(file));
      expect(declared).toEqual([...SCRIPT_KEYS[name]]);
      const script = loadScripts()[name];
      const kb = new KeyBuilder({ prefix: 'p', cluster: false });
      const passed = scriptKeys(script, (key) =>
        key === 'workerInfo'
          ? kb.workerInfo
          : key === 'workerExpiry'
            ? kb.workerExpiry
            : queueKeyResolver(kb.queue('q'), 'p:rl:x')(key),
      );
      expect(passed).toHaveLength(script.numberOfKeys);
      expect(script.numberOfKeys).toBe(keyCountOfFile(file));
    });

    it('documents its ARGV as the script reads and checks them: count, order and names', () => {
      // Fixed entries are numbered 1..n; a trailing list ("7… per job") follows them.
      expect(header.argv).toEqual(header.argv.map((_, i) => i + 1));
      const fixed = header.argv.length;
      // The script refuses any other number of fixed arguments (`#ARGV ~= n`, or `n + count * …`).
      const check = /#ARGV ~= (\d+)/.exec(text);
      expect(Number(check?.[1] ?? 0)).toBe(fixed);
      // Every literal index it reads is documented, under the name of the local it is read into.
      for (const m of text.matchAll(/ARGV\[(\d+)\]/g)) expect(Number(m[1])).toBeLessThanOrEqual(fixed);
      for (const [index, local] of argvBindings(text))
        expect([index, header.argvNames.get(index)]).toEqual([index, local]);
    });

    it('names outcome kinds as @sluice/core does, and keeps no copy of its defaults or texts', () => {
      // The code without its comments (headers may quote the texts they are given).
      const source = expandIncludes(file)
        .replace(/--\[\[[\s\S]*?\]\]/g, '')
        .replace(/--.*$/gm, '');
      const kinds: readonly string[] = Object.values(OutcomeKind);
      for (const m of source.matchAll(/eventAdd\(events, id, '([^']*)'/g)) expect(kinds).toContain(m[1]);
      expect(source).not.toContain(`'${SCRIPT_DEFAULTS.defaultRetention}'`);
      expect(source).not.toContain(StoreText.CancelledBeforeRun);
      expect(source).not.toContain(StoreText.LeaseExpired.slice(0, StoreText.LeaseExpired.indexOf('{')));
      expect(source).not.toContain(StoreText.LeaseExpiredErrorName);
    });

    it('uses no KEYS index beyond the declared ones, and documents every error code it returns', () => {
      const source = expandIncludes(file);
      const used = [...source.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      for (const i of used) expect(i).toBeLessThanOrEqual(header.keys.length);
      const returned = [...source.matchAll(/return (-\d+)\b/g)].map((m) => Number(m[1]));
      for (const code of returned) expect(header.errors).toContain(code);
      for (const code of header.errors) expect(Object.values(ScriptErrorCode)).toContain(code);
    });
  });

  it('settle accepts exactly the outcome kinds, documented by name in its header', () => {
    const text = readFileSync(join(LUA_DIR, files.settle), 'utf8');
    const table = /local KINDS = \{([^}]*)\}/.exec(text)?.[1] ?? '';
    const accepted = [...table.matchAll(/(\w+) = true/g)].map((m) => m[1]);
    expect(accepted.sort()).toEqual(Object.values(OutcomeKind).sort());
    const header = text.slice(0, text.indexOf(']]'));
    for (const kind of Object.values(OutcomeKind)) expect(header).toMatch(new RegExp(`^ {4}${kind} `, 'm'));
  });

  it('names each script by its content, so two versions never share one', () => {
    const scripts = loadScripts();
    const names = SCRIPT_NAMES.map((n) => scripts[n].versionedName);
    expect(new Set(names).size).toBe(names.length);
    for (const n of SCRIPT_NAMES) {
      expect(scripts[n].versionedName).toBe(`sluice:${n}:${scripts[n].sha.slice(0, 12)}`);
      expect(scripts[n].source).not.toMatch(/^--- @include/m);
    }
  });

  it('publishes through includes/publish.lua only: PUBLISH on one server, SPUBLISH in the Cluster set', () => {
    const node = loadScripts();
    const cluster = loadScripts(LUA_DIR, { cluster: true });
    let publishing = 0;
    for (const n of SCRIPT_NAMES) {
      // No script calls a publish command itself.
      expect(node[n].source).not.toMatch(/redis\.call\(\s*'S?PUBLISH'/);
      const publishes = /\bpublish\(/.test(node[n].source.replace(/local function publish\(/, ''));
      if (!publishes) {
        expect(node[n].source).not.toContain('PUBLISH_COMMAND');
        continue;
      }
      publishing++;
      expect(node[n].source).toContain("local PUBLISH_COMMAND = 'PUBLISH'");
      expect(cluster[n].source).toContain("local PUBLISH_COMMAND = 'SPUBLISH'");
      expect(cluster[n].source).not.toContain("local PUBLISH_COMMAND = 'PUBLISH'");
      expect(cluster[n].sha).not.toBe(node[n].sha);
      expect(cluster[n].versionedName).not.toBe(node[n].versionedName);
    }
    // enqueue, settle, recover, cancel, obliterate, retry-jobs, promote-job, pause-group, settings, pause-limit
    expect(publishing).toBe(10);
  });

  it('starts every script of the Cluster set with the slot guard, and no script of the one-server set', () => {
    const node = loadScripts();
    const cluster = loadScripts(LUA_DIR, { cluster: true });
    const guard = "redis.call('EXISTS', KEYS[1] .. ':~slot-guard:1', KEYS[1] .. ':~slot-guard:2')";
    for (const n of SCRIPT_NAMES) {
      expect(node[n].source).not.toContain('slot-guard');
      // The first command a Cluster script runs: nothing but comments and the version line before it.
      const code = cluster[n].source.split('\n').filter((l) => !/^\s*(--|$)/.test(l));
      const firstCall = code.findIndex((l) => l.includes('redis.call'));
      expect([n, code[firstCall]]).toEqual([n, guard]);
      expect(code.slice(0, firstCall).every((l) => !/redis\./.test(l))).toBe(true);
    }
  });

  it('sends each script without the helpers it never calls, and keeps the ones it calls', () => {
    const body = [
      '-- used() is named in this comment only',
      'local function used(x)',
      '  return helper(x) .. tostring(x)',
      'end',
      'local function helper(x)',
      "  return 'h' .. x",
      'end',
      'local function unused()',
      '  return used(1)',
      'end',
      '--[[ unused() ]]',
      'local function alsoUnused()',
      '  return 2',
      'end',
      'return used(3)',
    ].join('\n');
    const pruned = withoutUnusedFunctions(body);
    expect(pruned).toContain('local function used(x)');
    expect(pruned).toContain('local function helper(x)'); // called only by a kept function
    expect(pruned).not.toContain('local function unused()'); // named only in comments
    expect(pruned).not.toContain('local function alsoUnused()');
    expect(pruned.split('\n').filter((l) => l === 'end')).toHaveLength(2);
    expect(() => withoutUnusedFunctions('local function f()\n  return 1\n  end')).toThrow(/no `end` line/);
    // Each loaded script: every helper left is named outside its own definition; the hot scripts
    // drop a good part of what their includes define.
    const node = loadScripts();
    const definitions = (source: string) =>
      [...source.matchAll(/^local function (\w+)\(/gm)].map((m) => m[1]);
    for (const n of SCRIPT_NAMES) {
      const expanded = expandIncludes(scriptFiles()[n]);
      const kept = definitions(node[n].source);
      for (const name of kept) {
        const elsewhere = node[n].source.replace(new RegExp(`^local function ${name}\\(`, 'm'), '');
        expect([n, name, new RegExp(`\\b${name}\\b`).test(elsewhere)]).toEqual([n, name, true]);
      }
      expect(kept.length).toBeLessThanOrEqual(definitions(expanded).length);
    }
    expect(definitions(node.settle.source).length).toBeLessThan(
      definitions(expandIncludes(scriptFiles().settle)).length,
    );
  });
});

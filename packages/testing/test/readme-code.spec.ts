import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';

import ts from 'typescript';

/**
 * Every ```ts / ```typescript block in the repository's Markdown (every README — the root's, those of
 * `packages/*`, `examples/*`, `bench`, `faults` — and the guides in `docs/`) must type-check against the workspace packages as users get them (`@sluice/*` resolved
 * through `node_modules` to each package's `types`, i.e. its compiled `dist/`), with the repository's
 * strict compiler options.
 *
 * Each block is its own ES module (`.mts`), so top-level `await` works and blocks do not share names.
 * A block that only makes sense with names from the surrounding prose declares them
 * (`declare const store: Store;`). A block that cannot compile on purpose is marked ```ts nocheck.
 *
 * A block marked ```ts standalone is a whole program as a user would write it: it declares nothing
 * it does not define, and it is also checked as CommonJS (a `.cts` module: no top-level `await`).
 * The root README's first block must be one.
 */

const REPO_ROOT = resolve(__dirname, '../../..');

/** The packages a README may import, each of which must have been built. */
const WORKSPACE_PACKAGES = ['core', 'redis', 'testing', 'opentelemetry', 'dashboard', 'cli'] as const;

/** One fenced code block of a README. */
interface CodeBlock {
  /** The README, relative to the repository root. */
  readonly readme: string;
  /** The README line (1-based) of the block's first line of code, just after the opening fence. */
  readonly line: number;
  readonly code: string;
  /** Marked `standalone`: also checked as CommonJS, and may not `declare` names. */
  readonly standalone?: true;
}

/** A compiler complaint about a block, placed in its README. */
interface Problem {
  readonly readme: string;
  /** The README line (1-based), when the complaint has a position. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** `TS2322: Type 'string' is not assignable to type 'number'.` */
  readonly message: string;
}

/** Folders that hold no Markdown of ours. */
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'coverage', '.git', '.artifacts', 'results']);

/** Every Markdown file in the repository (READMEs, guides, results), outside build and install output. */
function findReadmes(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(join(dir, entry.name));
      } else if (entry.name.endsWith('.md')) {
        found.push(join(dir, entry.name));
      }
    }
  };
  walk(root);
  return found.filter((f) => existsSync(f)).sort();
}

/**
 * The TypeScript blocks of a Markdown text: fenced blocks (``` or ~~~, CommonMark rules) whose info
 * string's first word is `ts` or `typescript`, except those whose info string also says `nocheck`.
 */
function extractTypeScriptBlocks(markdown: string, readme: string): CodeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  let open:
    | {
        fence: string;
        indent: number;
        typescript: boolean;
        standalone: boolean;
        start: number;
        body: string[];
      }
    | undefined;
  lines.forEach((line, index) => {
    if (open === undefined) {
      const opening = /^( *)(`{3,}|~{3,})\s*([^`]*)$/.exec(line);
      if (!opening) return;
      const [, indent = '', fence = '', info = ''] = opening;
      const words = info.trim().toLowerCase().split(/\s+/);
      open = {
        fence,
        indent: indent.length,
        typescript: (words[0] === 'ts' || words[0] === 'typescript') && !words.includes('nocheck'),
        standalone: words.includes('standalone'),
        start: index + 2,
        body: [],
      };
      return;
    }
    const closing = /^ *(`{3,}|~{3,})\s*$/.exec(line);
    const fence = closing?.[1];
    if (fence !== undefined && fence[0] === open.fence[0] && fence.length >= open.fence.length) {
      if (open.typescript) {
        const code = open.body.join('\n') + '\n';
        blocks.push({
          readme,
          line: open.start,
          code,
          ...(open.standalone ? { standalone: true as const } : {}),
        });
      }
      open = undefined;
      return;
    }
    // Content lines lose up to the opening fence's indentation (fences inside list items).
    const strip = Math.min(open.indent, /^ */.exec(line)?.[0].length ?? 0);
    open.body.push(line.slice(strip));
  });
  return blocks;
}

/**
 * The repository's compiler options (`tsconfig.base.json`), for checking rather than building: no
 * output, no project-reference bookkeeping, no library checking. Unused names are allowed, since a
 * snippet may well show a value (a bridge, a handle) without going on to use it.
 */
function compilerOptions(root: string): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.base.json');
  const read = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath);
  if (parsed.errors.length > 0) {
    throw new Error(
      parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n'),
    );
  }
  return {
    ...parsed.options,
    noEmit: true,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    skipLibCheck: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    typeRoots: [join(root, 'node_modules', '@types')],
  };
}

/**
 * Type-checks the blocks in one program. Each block is written to a temporary directory as its own
 * `.mts` module; bare imports from a block (`@sluice/core`, `rxjs`, `node:http`) resolve as they would
 * from a file at the repository root, so the workspace's `node_modules` serve them.
 */
function checkBlocks(blocks: readonly CodeBlock[], root: string = REPO_ROOT): Problem[] {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-readme-code-'));
  try {
    const byFile = new Map<string, CodeBlock>();
    const problems: Problem[] = [];
    blocks.forEach((block, index) => {
      const base = `${String(index).padStart(3, '0')}-${block.readme.replace(/[^A-Za-z0-9]+/g, '-')}-L${block.line}`;
      for (const extension of block.standalone ? ['.mts', '.cts'] : ['.mts']) {
        const file = join(dir, base + extension);
        writeFileSync(file, block.code);
        byFile.set(resolve(file), block);
      }
      if (block.standalone) {
        block.code.split('\n').forEach((text, offset) => {
          if (/^\s*(export\s+)?declare\s/.test(text)) {
            problems.push({
              readme: block.readme,
              line: block.line + offset,
              column: 1,
              message: 'standalone: a whole program defines what it uses instead of declaring it',
            });
          }
        });
      }
    });

    const options = compilerOptions(root);
    const host = ts.createCompilerHost(options);
    const cache = ts.createModuleResolutionCache(root, host.getCanonicalFileName, options);
    const standIn = join(root, 'readme-code-block.mts');
    const inBlockDir = (file: string): boolean => resolve(file).startsWith(resolve(dir) + sep);
    host.resolveModuleNameLiterals = (literals, containingFile, redirected, opts, containingSourceFile) =>
      literals.map((literal) => {
        const mode = ts.getModeForUsageLocation(containingSourceFile, literal, opts);
        const bare = !literal.text.startsWith('.') && !literal.text.startsWith('/');
        const from = bare && inBlockDir(containingFile) ? standIn : containingFile;
        return ts.resolveModuleName(literal.text, from, opts, host, cache, redirected, mode);
      });

    const program = ts.createProgram({ rootNames: [...byFile.keys()], options, host });
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
      const file = diagnostic.file;
      const block = file ? byFile.get(resolve(file.fileName)) : undefined;
      if (file && block && diagnostic.start !== undefined) {
        const position = file.getLineAndCharacterOfPosition(diagnostic.start);
        problems.push({
          readme: block.readme,
          line: block.line + position.line,
          column: position.character + 1,
          message,
        });
      } else {
        problems.push({
          readme: file ? relative(root, file.fileName) : '(compiler)',
          line: undefined,
          column: undefined,
          message,
        });
      }
    }
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function describeProblem(problem: Problem): string {
  const where =
    problem.line === undefined ? problem.readme : `${problem.readme}:${problem.line}:${problem.column ?? 1}`;
  return `${where} ${problem.message}`;
}

describe('TypeScript blocks in the READMEs', () => {
  beforeAll(() => {
    for (const name of WORKSPACE_PACKAGES) {
      const manifest = JSON.parse(
        readFileSync(join(REPO_ROOT, 'packages', name, 'package.json'), 'utf8'),
      ) as {
        types?: string;
      };
      const types = join(REPO_ROOT, 'packages', name, manifest.types ?? 'index.d.ts');
      if (!existsSync(types)) {
        throw new Error(`${relative(REPO_ROOT, types)} is missing: run \`npx tsc --build\` first`);
      }
    }
  });

  const readmes = findReadmes(REPO_ROOT);
  const blocks = readmes.flatMap((file) =>
    extractTypeScriptBlocks(readFileSync(file, 'utf8'), relative(REPO_ROOT, file).split(sep).join('/')),
  );

  it('finds the READMEs and their TypeScript blocks', () => {
    expect(readmes.map((f) => relative(REPO_ROOT, f).split(sep).join('/'))).toEqual(
      expect.arrayContaining(['README.md', 'packages/core/README.md', 'packages/redis/README.md']),
    );
    expect(blocks.map((b) => b.readme)).toEqual(
      expect.arrayContaining(['README.md', 'packages/redis/README.md']),
    );
    // Guides and every README, not only the top-level ones.
    expect(readmes.map((f) => relative(REPO_ROOT, f).split(sep).join('/'))).toEqual(
      expect.arrayContaining(['bench/README.md', 'faults/README.md', 'packages/opentelemetry/README.md']),
    );
    const docs = join(REPO_ROOT, 'docs');
    if (existsSync(docs)) {
      for (const guide of readdirSync(docs).filter((f) => f.endsWith('.md'))) {
        expect(readmes).toContain(join(docs, guide));
      }
    }
  });

  it('opens the root README with a whole program, checked as ESM and as CommonJS', () => {
    expect(blocks.find((b) => b.readme === 'README.md')?.standalone).toBe(true);
  });

  it('type-checks every block', () => {
    const problems = checkBlocks(blocks).map(describeProblem);
    if (problems.length > 0) {
      throw new Error(`${problems.length} type error(s) in README code blocks:\n\n${problems.join('\n\n')}`);
    }
  }, 120_000);
});

describe('the README block checker', () => {
  it('extracts ts and typescript blocks only, with the README line of their first line', () => {
    const markdown = [
      '# Title', // 1
      '```sh', // 2
      'npm test', // 3
      '```', // 4
      '```ts', // 5
      'const a = 1;', // 6
      '```', // 7
      '```', // 8
      'plain', // 9
      '```', // 10
      '- a list item', // 11
      '  ```typescript', // 12
      '  const b = 2;', // 13
      '    const c = 3;', // 14
      '  ```', // 15
      '```ts nocheck', // 16
      'const d: number = "d";', // 17
      '```', // 18
      '````ts', // 19
      '```', // 20
      '````', // 21
      '~~~ts', // 22
      'const e = 5;', // 23
      '~~~', // 24
    ].join('\n');
    expect(extractTypeScriptBlocks(markdown, 'X.md')).toEqual([
      { readme: 'X.md', line: 6, code: 'const a = 1;\n' },
      { readme: 'X.md', line: 13, code: 'const b = 2;\n  const c = 3;\n' },
      { readme: 'X.md', line: 20, code: '```\n' },
      { readme: 'X.md', line: 23, code: 'const e = 5;\n' },
    ]);
  });

  it('reports a broken block with its README line, and passes a good one', () => {
    const good = [
      "import { MemoryStore, Queue } from '@sluice/core';",
      'const store = new MemoryStore();',
      "await new Queue<{ to: string }>(store, 'emails').add({ to: 'ada@example.com' });",
    ].join('\n');
    const broken = [
      "import { MemoryStore } from '@sluice/core';",
      "import { RedisStore } from '@sluice/redis';",
      'const store: RedisStore = new MemoryStore();',
      "const count: number = 'one';",
      "import { nothingHere } from '@sluice/no-such-package';",
    ].join('\n');
    const problems = checkBlocks([
      { readme: 'GOOD.md', line: 10, code: good },
      { readme: 'BROKEN.md', line: 40, code: broken },
    ]);
    expect(problems.filter((p) => p.readme === 'GOOD.md')).toEqual([]);
    const broke = problems.filter((p) => p.readme === 'BROKEN.md');
    expect(broke).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ line: 42, message: expect.stringMatching(/^TS2\d{3}: .*MemoryStore/) }),
        expect.objectContaining({ line: 43, column: 7, message: expect.stringMatching(/^TS2322: /) }),
        expect.objectContaining({
          line: 44,
          message: expect.stringMatching(/^TS2307: .*@sluice\/no-such-package/),
        }),
      ]),
    );
    expect(broke).toHaveLength(3);
    expect(problems).toHaveLength(3);
  }, 120_000);

  it('checks a standalone block as CommonJS too, and refuses declared names in it', () => {
    const topLevelAwait = [
      "import { MemoryStore, Queue } from '@sluice/core';",
      "await new Queue(new MemoryStore(), 'q').add(1);",
    ].join('\n');
    const declares = [
      "import type { Store } from '@sluice/core';",
      'declare const store: Store;',
      'void store;',
    ].join('\n');
    const markdown = ['```ts standalone', topLevelAwait, '```', '```ts standalone', declares, '```'].join(
      '\n',
    );
    const blocks = extractTypeScriptBlocks(markdown, 'S.md');
    expect(blocks.map((b) => b.standalone)).toEqual([true, true]);
    const problems = checkBlocks(blocks);
    expect(problems).toEqual(
      expect.arrayContaining([
        // Fine as an ES module, refused as CommonJS.
        expect.objectContaining({
          readme: 'S.md',
          line: 3,
          message: expect.stringMatching(/^TS1\d{3}: .*await/),
        }),
        expect.objectContaining({ readme: 'S.md', line: 7, message: expect.stringMatching(/^standalone: /) }),
      ]),
    );
    expect(problems).toHaveLength(2);
    // The same blocks unmarked pass.
    expect(checkBlocks(blocks.map(({ standalone: _s, ...rest }) => rest))).toEqual([]);
  }, 120_000);
});

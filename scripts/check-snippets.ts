/**
 * Type-checks every ```ts block of README.md and docs/*.md as written, with the project's strict
 * settings (`noPropertyAccessFromIndexSignature` aside), against the package source: `express-api-tokens` and its subpaths resolve to `lib/`
 * through the `exports` map. Each block is its own module (top-level await allowed).
 *
 * A block that is deliberately a fragment is marked on the line before its fence with
 * `<!-- snippet: fragment -->` and skipped. Keep those rare: a snippet people copy should compile.
 *
 *   node --import tsx scripts/check-snippets.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, '.tmp', 'snippets');
const FRAGMENT_MARK = '<!-- snippet: fragment -->';

interface Snippet {
  /** Markdown file, relative to the root. */
  source: string;
  /** Line of the block's first code line in the markdown file (1-based). */
  line: number;
  code: string;
}

function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (dir: string) => {
    if (!existsSync(join(root, dir))) return;
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && path !== join('docs', 'api')) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files.sort();
}

/** Fenced ```ts / ```typescript blocks, indented ones (in list items) included. */
export function extractSnippets(source: string, text: string): Snippet[] {
  const lines = text.split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3}|\s*)(`{3,}|~{3,})\s*(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++;
    const fragment = lines[i - 1]?.trim() === FRAGMENT_MARK;
    if ((info === 'ts' || info === 'typescript') && !fragment) {
      const body = lines
        .slice(i + 1, end)
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line));
      snippets.push({ source, line: i + 2, code: body.join('\n') });
    }
    i = end;
  }
  return snippets;
}

/** `paths` for the package name and every `exports` subpath, pointing at the sources in lib/. */
function packagePaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, string | { import?: { default?: string } | string }>;
  };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const file =
      typeof target === 'string'
        ? target
        : typeof target.import === 'string'
          ? target.import
          : target.import?.default;
    if (file === undefined || !file.startsWith('./dist/') || !file.endsWith('.js')) continue;
    const sourceFile = join(root, 'lib', file.slice('./dist/'.length).replace(/\.js$/, '.ts'));
    paths[`${pkg.name}${subpath.slice(1)}`] = [relative(outDir, sourceFile)];
  }
  return paths;
}

function main(): number {
  const snippets = markdownFiles().flatMap((file) =>
    extractSnippets(file, readFileSync(join(root, file), 'utf8')),
  );
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const byFile = new Map<string, Snippet>();
  for (const snippet of snippets) {
    const name = `${snippet.source.replace(/[^A-Za-z0-9]+/g, '-')}-${snippet.line}.ts`;
    byFile.set(name, snippet);
    writeFileSync(join(outDir, name), `${snippet.code}\nexport {};\n`);
  }
  writeFileSync(
    join(outDir, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: '../../tsconfig.json',
        compilerOptions: {
          paths: packagePaths(),
          // A style rule of our own code, not a strictness users share: snippets may write
          // `process.env.TOKEN_PEPPER` as users do. Every type-safety option stays on.
          noPropertyAccessFromIndexSignature: false,
        },
        include: ['./*.ts'],
      },
      null,
      2,
    ),
  );
  if (snippets.length === 0) {
    console.log('check-snippets: no TypeScript snippets found');
    return 0;
  }
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', outDir], {
    cwd: root,
    encoding: 'utf8',
  });
  const output = `${result.stdout}${result.stderr}`.trim();
  // Report errors at their place in the markdown file, not in the generated copy.
  const located = output.replace(
    /^(?:\.tmp\/snippets\/)?([^(\s]+\.ts)\((\d+),(\d+)\)/gm,
    (whole, file, line, col) => {
      const snippet = byFile.get(file);
      return snippet ? `${snippet.source}:${snippet.line + Number(line) - 1}:${col}` : whole;
    },
  );
  if (result.status !== 0) {
    console.error(located);
    console.error(
      `check-snippets: TypeScript snippets in the docs do not compile (${snippets.length} checked)`,
    );
    return 1;
  }
  console.log(`check-snippets: ${snippets.length} TypeScript snippets compile`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main();

import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Each entry point's exported names, as TypeScript sees them (values and types). */
function exportsOf(files: Record<string, string>): Record<string, string[]> {
  const program = ts.createProgram(Object.values(files), {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    jsx: ts.JsxEmit.ReactJSX,
    jsxImportSource: 'preact',
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out: Record<string, string[]> = {};
  for (const [entry, file] of Object.entries(files)) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
    out[entry] = checker
      .getExportsOfModule(module)
      .map((symbol) => symbol.name)
      .sort();
  }
  return out;
}

/** The names docs/api-surface.md lists in its tables, by entry point (its `##` sections). */
function documented(): Record<string, string[]> {
  const out: Record<string, string[]> = { root: [], forward: [], testing: [] };
  let entry = 'root';
  for (const line of readFileSync('docs/api-surface.md', 'utf8').split('\n')) {
    if (line.startsWith('## ')) {
      entry = line.includes('/forward') ? 'forward' : line.includes('/testing') ? 'testing' : 'root';
      if (line.includes('left the root')) entry = 'gone';
    }
    const name = /^\| `([A-Za-z0-9]+)` +\|/.exec(line)?.[1];
    if (name !== undefined && entry !== 'gone') out[entry]!.push(name);
  }
  for (const names of Object.values(out)) names.sort();
  return out;
}

describe('docs/api-surface.md', () => {
  it('lists every exported name of every entry point, and nothing else', () => {
    const actual = exportsOf({
      root: 'lib/index.ts',
      forward: 'lib/forward/index.ts',
      testing: 'lib/testing/index.ts',
    });
    const listed = documented();
    for (const entry of ['root', 'forward', 'testing']) {
      expect(listed[entry], `${entry}: each name once`).toEqual([...new Set(listed[entry])]);
      expect(listed[entry], `${entry}: docs/api-surface.md against the exports`).toEqual(actual[entry]);
    }
  });
});

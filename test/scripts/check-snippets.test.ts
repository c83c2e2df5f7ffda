import { describe, expect, it } from 'vitest';
import { extractSnippets } from '../../scripts/check-snippets.js';

describe('extractSnippets', () => {
  it('finds ts blocks with the line of their first code line, indented ones dedented', () => {
    const markdown = [
      '# Title', // 1
      '```ts', // 2
      'const a: number = 1;', // 3
      '```', // 4
      '- item', // 5
      '  ```typescript', // 6
      '  const b = 2;', // 7
      '    const c = 3;', // 8
      '  ```', // 9
    ].join('\n');
    expect(extractSnippets('doc.md', markdown)).toEqual([
      { source: 'doc.md', line: 3, code: 'const a: number = 1;' },
      { source: 'doc.md', line: 7, code: 'const b = 2;\n  const c = 3;' },
    ]);
  });

  it('skips other languages and blocks marked as fragments', () => {
    const markdown = [
      '```sh',
      'npm test',
      '```',
      '<!-- snippet: fragment -->',
      '```ts',
      'req.auth = { kind };',
      '```',
      '```json',
      '{ "a": 1 }',
      '```',
    ].join('\n');
    expect(extractSnippets('doc.md', markdown)).toEqual([]);
  });

  it('does not treat a fence inside another language block as a snippet', () => {
    const markdown = ['````md', '```ts', 'not code', '```', '````'].join('\n');
    expect(extractSnippets('doc.md', markdown)).toEqual([]);
  });
});

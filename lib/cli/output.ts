import type { TokenInfo } from '../model.js';

/** Writes lines to a stream, waiting when the reader is slower (an `export | gzip` of many tokens). */
export function lineWriter(stream: NodeJS.WritableStream): (text: string) => Promise<void> {
  return (text) =>
    new Promise((resolve, reject) => {
      const flushed = stream.write(`${text}\n`, (err) => {
        if (err) reject(err);
      });
      if (flushed) resolve();
      else stream.once('drain', resolve);
    });
}

const day = (iso: string | null, none: string) => (iso === null ? none : iso.slice(0, 10));

/** Names are at most 100 characters; a table shows the first 40. */
function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`;
}

/** A table for people: one token a line, aligned columns. */
export function tokenTable(tokens: readonly TokenInfo[]): string[] {
  const rows = tokens.map((t) => [
    t.id,
    t.user,
    t.scope,
    cut(t.name, 40),
    day(t.createdAt, '-'),
    day(t.expiresAt, 'never'),
    day(t.lastUsedAt, 'never'),
  ]);
  return table(['ID', 'USER', 'SCOPE', 'NAME', 'CREATED', 'EXPIRES', 'LAST USED'], rows);
}

/** Aligned columns, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length)))
      .join('  ');
  return [line(header), ...rows.map(line)];
}

/** One token as `key: value` lines. */
export function tokenDetails(t: TokenInfo): string[] {
  const list = (value: readonly string[] | Readonly<Record<string, string>> | null) =>
    value === null
      ? 'none'
      : Array.isArray(value)
        ? value.join(', ')
        : Object.entries(value)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ');
  return [
    `id:               ${t.id}`,
    `user:             ${t.user}`,
    `name:             ${t.name}`,
    `scope:            ${t.scope}`,
    `created:          ${t.createdAt} by ${t.createdBy}`,
    `expires:          ${t.expiresAt ?? 'never'}`,
    `last used:        ${t.lastUsedAt === null ? 'never' : `${t.lastUsedAt} from ${t.lastUsedIp ?? 'unknown'}`}`,
    `allowed IPs:      ${list(t.allowedIps)}`,
    `required headers: ${list(t.requiredHeaders)}`,
    `resources:        ${list(t.resources)}`,
    `rate limit:       ${t.rateLimit === null ? "the proxy's default" : `${t.rateLimit.requests} in ${t.rateLimit.windowSeconds} s`}`,
  ];
}

import type { ResourceTarget } from '../tokens/resource-pattern.js';
import { sameUser } from '../validate.js';

/**
 * Which Bitbucket project or repository a request path names, for `resources` restrictions.
 * Paths are judged after strict decoding: percent-encoding is decoded once per segment, and
 * anything an upstream could read differently — an empty (doubled-slash) segment, `.` or `..`
 * (encoded or not), an encoded `/` or `\`, a `;` path parameter, invalid UTF-8 — makes the
 * path `ambiguous`, which a restricted token is refused. Prefixes match case-insensitively.
 */

export type PathTarget =
  | { kind: 'target'; target: ResourceTarget }
  /** Names no project or repository; `segments` are the decoded path, for exempt-path checks. */
  | { kind: 'none'; segments: readonly string[] }
  | { kind: 'ambiguous' };

const AMBIGUOUS: PathTarget = { kind: 'ambiguous' };
const BAD_DECODED = /[/\\;\p{Cc}]/u;

/** The decoded segments of a path, or null when any of them is ambiguous. */
export function decodeSegments(path: string): string[] | null {
  if (!path.startsWith('/') || path.includes('\\') || path.includes(';')) return null;
  const raw = path.slice(1).split('/');
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop(); // a trailing slash is harmless
  const segments: string[] = [];
  for (const part of raw) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return null;
    }
    if (decoded === '' || decoded === '.' || decoded === '..' || BAD_DECODED.test(decoded)) return null;
    segments.push(decoded);
  }
  return segments;
}

/** Splits configured prefixes such as `/scm/` or `/bitbucket/rest` into lower-case segments. */
export function prefixSegments(prefix: string): string[] {
  return prefix
    .split('/')
    .filter((s) => s !== '')
    .map((s) => s.toLowerCase());
}

function startsWith(segments: readonly string[], prefix: readonly string[]): boolean {
  return (
    prefix.length > 0 &&
    prefix.length <= segments.length &&
    prefix.every((p, i) => segments[i]!.toLowerCase() === p)
  );
}

function target(project: string, repo?: string): PathTarget {
  return { kind: 'target', target: repo === undefined ? { project } : { project, repo } };
}

export interface ResourcePathRules {
  /** Prefixes of git smart-HTTP and LFS URLs, as segments (default `['scm']`). */
  git: readonly (readonly string[])[];
  /** Prefixes of REST URLs, as segments (default `['rest']`). */
  rest: readonly (readonly string[])[];
}

/** What a (query-less) request path names. */
export function pathTarget(path: string, rules: ResourcePathRules): PathTarget {
  const segments = decodeSegments(path);
  if (segments === null) return AMBIGUOUS;
  for (const prefix of rules.git) {
    if (!startsWith(segments, prefix)) continue;
    const [project, repo] = segments.slice(prefix.length);
    if (project === undefined) return { kind: 'none', segments };
    return target(project, repo?.replace(/\.git$/i, ''));
  }
  for (const prefix of rules.rest) {
    if (!startsWith(segments, prefix)) continue;
    // /rest/<api>/<version>/projects/{KEY}[/repos/{slug}]… and /rest/<api>/<version>/users/{user}/repos/{slug}…
    const [collection, owner, repos, repo] = segments.slice(prefix.length + 2);
    const kind = collection?.toLowerCase();
    if (owner === undefined || (kind !== 'projects' && kind !== 'users')) return { kind: 'none', segments };
    const project = kind === 'users' ? `~${owner}` : owner;
    if (repos === undefined) return kind === 'users' ? { kind: 'none', segments } : target(project);
    if (repos.toLowerCase() !== 'repos')
      return kind === 'users' ? { kind: 'none', segments } : target(project);
    return target(project, repo);
  }
  return { kind: 'none', segments };
}

/**
 * Compiles exempt paths (`*` = any one segment, `{user}` = the token's owner) into a test on
 * decoded segments.
 */
export function compileExemptPaths(
  patterns: readonly string[],
): (segments: readonly string[], user: string) => boolean {
  const compiled = patterns.map((p) => p.split('/').filter((s) => s !== ''));
  return (segments, user) =>
    compiled.some(
      (pattern) =>
        pattern.length === segments.length &&
        pattern.every((part, i) => {
          const segment = segments[i]!;
          if (part === '*') return true;
          if (part === '{user}') return sameUser(segment, user);
          return segment.toLowerCase() === part.toLowerCase();
        }),
    );
}

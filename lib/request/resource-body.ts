import type { IncomingMessage } from 'node:http';
import type { ResourceTarget } from '../tokens/resource-pattern.js';
import { hasDuplicateMembers } from './json-duplicates.js';
import { peekBody } from './peek-body.js';
import { decodeSegments } from './resource-path.js';

/**
 * The REST bodies that can name a project or repository other than the one in the path, for
 * `resources` restrictions (Bitbucket Data Center REST API; any namespace and version, so
 * `/rest/api/latest/…` and `/rest/api/1.0/…` alike, and `users/{user}` personal repositories):
 * - `…/projects/{KEY}/repos/{slug}`: `POST` forks (into `project.key`, else the caller's
 *   personal project `~user`, under the slug of `name`); `PUT` moves (`project.key`) or renames
 *   (`name`);
 * - `…/projects/{KEY}/repos`: `POST` creates a repository (`name`, `project.key`);
 * - `…/projects/{KEY}`: `PUT` may change the project's `key`;
 * - `…/repos/{slug}/pull-requests[/{id}]`: `fromRef.repository` and `toRef.repository`
 *   (`slug`, `project.key`) name the repositories a pull request joins.
 * On these routes every `repository` object and every `project` object anywhere in the body is
 * judged as well. A body is judged only as JSON (`application/json`, UTF-8, at most 1 MiB, no
 * `Content-Encoding`, no member named twice, judged names spelt exactly, projects and
 * repositories named by key and slug rather than `id`); anything else cannot be judged, and is
 * refused to a restricted token.
 */

/** Larger bodies are not read: pull request descriptions are far smaller. */
export const BODY_LIMIT = 1_048_576;

type Route =
  | { kind: 'repo'; project: string; repo: string }
  | { kind: 'repos'; project: string }
  | { kind: 'project'; project: string }
  | { kind: 'pull-requests' };

/** Which judged route a request path is, or undefined when its body names nothing we judge. */
export function bodyRoute(path: string, restPrefixes: readonly (readonly string[])[]): Route | undefined {
  const segments = decodeSegments(path);
  if (segments === null) return undefined; // refused by the path check already
  for (const prefix of restPrefixes) {
    if (prefix.length === 0 || prefix.length > segments.length) continue;
    if (!prefix.every((p, i) => segments[i]!.toLowerCase() === p)) continue;
    const [collection, owner, repos, repo, pulls, id, ...more] = segments
      .slice(prefix.length + 2)
      .map((s, i) => (i === 1 || i === 3 ? s : s.toLowerCase()));
    if (owner === undefined || (collection !== 'projects' && collection !== 'users')) return undefined;
    const project = collection === 'users' ? `~${owner}` : owner;
    if (repos === undefined) return collection === 'projects' ? { kind: 'project', project } : undefined;
    if (repos !== 'repos') return undefined;
    if (repo === undefined) return { kind: 'repos', project };
    if (pulls === undefined) return { kind: 'repo', project, repo };
    if (pulls === 'pull-requests' && more.length === 0 && (id === undefined || /^\d+$/.test(id)))
      return { kind: 'pull-requests' };
    return undefined;
  }
  return undefined;
}

/** What the body of a request on a judged route names: targets, or why it cannot be judged. */
export type BodyTargets = { targets: ResourceTarget[] } | { unjudgeable: string };

class Unjudgeable extends Error {}

/** Names the judge reads; another spelling of one of them (`Project`) could be read as it. */
const JUDGED = ['project', 'key', 'repository', 'slug', 'name', 'id', 'fromref', 'toref'];
const CANONICAL = new Set(['project', 'key', 'repository', 'slug', 'name', 'id', 'fromRef', 'toRef']);

type Json = Record<string, unknown>;

/** Bitbucket's bodies nest a few levels; a deeper one is not walked (nor allowed to exhaust the stack). */
const MAX_DEPTH = 32;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The slugs Bitbucket may derive from a repository name: lower case, each character outside
 * `a-z 0-9 _ . -` replaced by `-` (Bitbucket Data Center's rule), with and without the name
 * trimmed. Bitbucket transliterates other letters (`ø` → `o`) in ways not judged here: a name
 * outside printable ASCII cannot be judged.
 */
function slugsOf(name: unknown): string[] {
  if (typeof name !== 'string' || name.trim() === '')
    throw new Unjudgeable('a repository `name` must be text');
  if (!/^[\x20-\x7e]+$/.test(name))
    throw new Unjudgeable('a repository `name` outside printable ASCII cannot be judged');
  const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9_.-]/g, '-');
  return [...new Set([slug(name), slug(name.trim())])];
}

function keyOf(project: unknown): string {
  if (!isObject(project) || typeof project['key'] !== 'string' || project['key'] === '')
    throw new Unjudgeable('a `project` must be named by its `key`');
  if ('id' in project) throw new Unjudgeable('a `project` must be named by its `key`, not its `id`');
  return project['key'];
}

function repositoryOf(repository: unknown): ResourceTarget {
  if (!isObject(repository) || typeof repository['slug'] !== 'string' || repository['slug'] === '')
    throw new Unjudgeable('a `repository` must be named by its `slug` and `project.key`');
  if ('id' in repository)
    throw new Unjudgeable('a `repository` must be named by its `slug` and `project.key`, not its `id`');
  return { project: keyOf(repository['project']), repo: repository['slug'] };
}

/**
 * Adds every `repository` and `project` object in the body to `targets` (once each: `counted`
 * holds those already judged), and refuses other spellings of the names judged.
 */
function walk(node: unknown, targets: ResourceTarget[], counted: Set<unknown>, depth = 0): void {
  if (depth > MAX_DEPTH) throw new Unjudgeable(`the body nests deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(node)) {
    for (const item of node) walk(item, targets, counted, depth + 1);
    return;
  }
  if (!isObject(node)) return;
  for (const name of Object.keys(node)) {
    const lower = name.toLowerCase();
    if (JUDGED.includes(lower) && !CANONICAL.has(name))
      throw new Unjudgeable(`the member ${JSON.stringify(name)} could be read as ${lower}`);
  }
  for (const [name, value] of Object.entries(node)) {
    if (name === 'repository' && !counted.has(value)) {
      targets.push(repositoryOf(value));
      counted.add(value);
      counted.add((value as Json)['project']);
    } else if (name === 'project' && !counted.has(value)) {
      targets.push({ project: keyOf(value) });
      counted.add(value);
    }
    walk(value, targets, counted, depth + 1);
  }
}

/**
 * The projects and repositories the body names on a judged route. `methods` are the method and
 * any it claims through an override; `owner` is the token's owner (a fork without a project
 * lands in the owner's personal project).
 */
export function targetsOf(
  route: Route,
  methods: readonly string[],
  body: unknown,
  owner: string,
): BodyTargets {
  try {
    if (body === undefined) body = {};
    if (!isObject(body)) throw new Unjudgeable('the body must be a JSON object');
    const targets: ResourceTarget[] = [];
    const named = 'project' in body ? keyOf(body['project']) : undefined;
    // The root's own project says where a repository goes: judged with its slug below.
    walk(body, targets, new Set(route.kind === 'pull-requests' ? [] : [body['project']]));
    if (route.kind === 'repo') {
      const slugs = 'name' in body ? slugsOf(body['name']) : [route.repo];
      if ('slug' in body) {
        if (typeof body['slug'] !== 'string') throw new Unjudgeable('a repository `slug` must be text');
        slugs.push(body['slug']);
      }
      for (const method of methods) {
        const into = named ?? (method === 'POST' ? `~${owner}` : route.project);
        for (const repo of slugs) targets.push({ project: into, repo });
      }
    } else if (route.kind === 'repos') {
      const into = named ?? route.project;
      if ('name' in body) for (const repo of slugsOf(body['name'])) targets.push({ project: into, repo });
      else targets.push({ project: into });
    } else if (route.kind === 'project') {
      if (named !== undefined) targets.push({ project: named });
      if ('key' in body) {
        if (typeof body['key'] !== 'string') throw new Unjudgeable('a project `key` must be text');
        targets.push({ project: body['key'] });
      }
    }
    return { targets };
  } catch (err) {
    if (err instanceof Unjudgeable) return { unjudgeable: err.message };
    throw err;
  }
}

/** True when the request carries a body (or says it might). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The request's JSON body, read without consuming it (a proxy after us still streams it whole),
 * or why it cannot be judged. A body an earlier middleware parsed is taken as parsed.
 */
export async function readJsonBody(
  req: IncomingMessage & { body?: unknown },
): Promise<{ body: unknown } | { unjudgeable: string }> {
  if (!hasBody(req)) return { body: undefined };
  const type = req.headers['content-type'];
  const media = typeof type === 'string' ? type.split(';')[0]!.trim().toLowerCase() : '';
  if (media !== 'application/json') return { unjudgeable: 'the body must be application/json' };
  const charset = typeof type === 'string' ? /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1] : undefined;
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) return { unjudgeable: 'the body must be UTF-8' };
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity')
    return { unjudgeable: 'the body must not be compressed' };
  let raw: Buffer | null;
  if (Buffer.isBuffer(req.body)) raw = req.body;
  else if (req.body !== undefined && isObject(req.body) && Object.keys(req.body).length > 0)
    return { body: req.body }; // parsed before us (express.json): judged as parsed
  else raw = await peekBody(req, BODY_LIMIT);
  if (raw === null)
    return { unjudgeable: `the body must have a Content-Length of at most ${BODY_LIMIT} bytes` };
  const text = raw.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(raw)) return { unjudgeable: 'the body is not valid UTF-8' };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { unjudgeable: 'the body is not JSON' };
  }
  if (hasDuplicateMembers(text)) return { unjudgeable: 'the body names a member twice' };
  return { body };
}

const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The request's method and every method it claims through an override (header or `_method`). */
export function claimedMethods(req: IncomingMessage, query: string): string[] {
  const methods = [(req.method ?? 'GET').toUpperCase()];
  for (const header of OVERRIDE_HEADERS) {
    const value = req.headers[header];
    if (value === undefined) continue;
    for (const part of (Array.isArray(value) ? value.join(',') : value).split(','))
      methods.push(part.trim().toUpperCase());
  }
  if (query !== '')
    for (const value of new URLSearchParams(query).getAll('_method'))
      methods.push(value.trim().toUpperCase());
  return methods;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Judges the body of a request to a judged route: undefined when everything it names is
 * allowed, else why not (`outside`: it names a project or repository outside the patterns;
 * `unjudgeable`: it cannot be read as the gate reads it). Requests that only read and carry no
 * body are not read at all.
 */
export async function judgeBody(
  req: IncomingMessage & { body?: unknown },
  route: Route,
  query: string,
  owner: string,
  allowed: (target: ResourceTarget) => boolean,
): Promise<{ outside: ResourceTarget } | { unjudgeable: string } | undefined> {
  const methods = claimedMethods(req, query);
  if (!hasBody(req) && methods.every((m) => READS.has(m))) return undefined;
  const read = await readJsonBody(req);
  if ('unjudgeable' in read) return read;
  const named = targetsOf(route, methods, read.body, owner);
  if ('unjudgeable' in named) return named;
  const outside = named.targets.find((target) => !allowed(target));
  return outside === undefined ? undefined : { outside };
}

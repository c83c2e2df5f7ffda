import type { Request } from 'express';
import { escapeRegExp } from '../internal/regexp.js';
import type { Scope } from '../model.js';
import { peekBody } from './peek-body.js';

/**
 * The scope a request needs. `read`: GET, HEAD, OPTIONS; everything else it allows is `write`.
 * Two POSTs are reads, and only in their exact git forms: a git smart-HTTP fetch
 * (`POST <git prefix><project>/<repo>[.git]/git-upload-pack` with the git content type) and a
 * Git LFS batch download (`POST …/info/lfs/objects/batch` with the LFS content type and
 * `"operation": "download"`). Method overrides count as the method they claim; anything
 * ambiguous is a write.
 */

const METHOD_SCOPES: Readonly<Record<string, Scope>> = {
  GET: 'read',
  HEAD: 'read',
  OPTIONS: 'read',
  POST: 'write',
  PUT: 'write',
  PATCH: 'write',
  DELETE: 'write',
};

/** Headers (and the query parameter) by which clients claim another method than they send. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/**
 * A path that means exactly what it says: plain segments, nothing percent-encoded, no `.` or
 * `..`, no empty segment. Anything else can never be judged a read.
 */
const CANONICAL_PATH = /^(?:\/[A-Za-z0-9_~@+-][A-Za-z0-9._~@+-]*)+$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
const REPOSITORY = '[^/]+/[^/]+?(?:\\.git)?';
const UPLOAD_PACK_TYPE = 'application/x-git-upload-pack-request';
const LFS_TYPE = 'application/vnd.git-lfs+json';
const LFS_BATCH_LIMIT = 1_048_576;

export type ScopeNeed = { scope: Scope } | { unknownMethod: string };

const READ: ScopeNeed = Object.freeze({ scope: 'read' });
const WRITE: ScopeNeed = Object.freeze({ scope: 'write' });

/** Compiled scope rules: extra methods and where git repositories live. */
export interface ScopeRules {
  extraMethods: ReadonlyMap<string, Scope>;
  /** `POST …/git-upload-pack` under one of these prefixes (e.g. `/scm/`) may be a read. */
  uploadPack: RegExp;
  lfsBatch: RegExp;
}

/** Compiles the rules once. `gitPrefixes` are path prefixes such as `/scm/` (default). */
export function compileScopeRules(
  extraMethods: ReadonlyMap<string, Scope>,
  gitPrefixes: readonly string[] = ['/scm/'],
): ScopeRules {
  const prefixes = gitPrefixes.map((p) => escapeRegExp(p.endsWith('/') ? p : `${p}/`)).join('|');
  return {
    extraMethods,
    uploadPack: new RegExp(`^(?:${prefixes})${REPOSITORY}/git-upload-pack$`),
    lfsBatch: new RegExp(`^(?:${prefixes})${REPOSITORY}/info/lfs/objects/batch$`),
  };
}

const NO_QUERY = new URLSearchParams();

function splitUrl(req: Request): { path: string; query: URLSearchParams; hasQuery: boolean } {
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  return q < 0
    ? { path: url, query: NO_QUERY, hasQuery: false }
    : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)), hasQuery: true };
}

/** Every method the request sends or claims through an override. */
function claimedMethods(req: Request, query: URLSearchParams): string[] {
  const methods = [req.method.toUpperCase()];
  for (const header of OVERRIDE_HEADERS) {
    const value = req.headers[header];
    if (value === undefined) continue;
    for (const part of (Array.isArray(value) ? value.join(',') : value).split(','))
      methods.push(part.trim().toUpperCase());
  }
  if (query !== NO_QUERY)
    for (const value of query.getAll('_method')) methods.push(value.trim().toUpperCase());
  return methods;
}

/** The media type of the request, lower case, without parameters. */
function mediaType(req: Request): string {
  const type = req.headers['content-type'];
  return typeof type === 'string' ? type.split(';')[0]!.trim().toLowerCase() : '';
}

/**
 * The scope a request needs. Synchronous except for a Git LFS batch request, whose body must
 * be read.
 */
export function requiredScope(req: Request, rules: ScopeRules): ScopeNeed | Promise<ScopeNeed> {
  // Most requests are a plain method without a query string or an override header.
  const method = req.method;
  const headers = req.headers;
  if (
    (req.originalUrl ?? req.url).indexOf('?') < 0 &&
    headers['x-http-method-override'] === undefined &&
    headers['x-http-method'] === undefined &&
    headers['x-method-override'] === undefined
  ) {
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return READ;
    if (method === 'PUT' || method === 'PATCH' || method === 'DELETE') return WRITE;
  }
  const { path, query, hasQuery } = splitUrl(req);
  const methods = claimedMethods(req, query);
  let needsWrite = false;
  for (const method of methods) {
    const scope = METHOD_SCOPES[method] ?? rules.extraMethods.get(method);
    if (scope === undefined) return { unknownMethod: method };
    if (scope === 'write') needsWrite = true;
  }
  const services = hasQuery ? query.getAll('service') : [];
  if (services.length > 0 && !(services.length === 1 && services[0] === 'git-upload-pack')) return WRITE;
  if (!needsWrite) return READ;
  // Only a plain POST, to a canonical repository path without a query, can be one of the reads.
  if (
    req.method !== 'POST' ||
    methods.length > 1 ||
    hasQuery ||
    !CANONICAL_PATH.test(path) ||
    DOT_SEGMENT.test(path)
  )
    return WRITE;
  const type = mediaType(req);
  if (rules.uploadPack.test(path)) return type === UPLOAD_PACK_TYPE ? READ : WRITE;
  if (rules.lfsBatch.test(path) && type === LFS_TYPE)
    return lfsBatchIsDownload(req).then((download) => (download ? READ : WRITE));
  return WRITE;
}

/** A Git LFS batch request is a read only when its body says `"operation": "download"`. */
async function lfsBatchIsDownload(req: Request): Promise<boolean> {
  let body: unknown = req.body;
  if (body === undefined || Buffer.isBuffer(body)) {
    const raw = Buffer.isBuffer(body) ? body : await peekBody(req, LFS_BATCH_LIMIT);
    if (raw === null) return false;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return false;
    }
  }
  return (
    typeof body === 'object' && body !== null && (body as { operation?: unknown }).operation === 'download'
  );
}

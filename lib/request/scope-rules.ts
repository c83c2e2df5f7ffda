import type { Request } from 'express';
import type { Scope } from '../model.js';
import { peekBody } from './peek-body.js';

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
 * `..`, no empty segment. Anything else can never be judged a read by its suffix.
 */
const CANONICAL_PATH = /^(?:\/[A-Za-z0-9_~@+-][A-Za-z0-9._~@+-]*)+$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

const LFS_BATCH_LIMIT = 1_048_576;

export type ScopeNeed = { scope: Scope } | { unknownMethod: string };

const NO_QUERY = new URLSearchParams();

function splitUrl(req: Request): { path: string; query: URLSearchParams } {
  const url = req.originalUrl ?? req.url;
  const q = url.indexOf('?');
  return q < 0
    ? { path: url, query: NO_QUERY }
    : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

function canonical(path: string): boolean {
  return CANONICAL_PATH.test(path) && !DOT_SEGMENT.test(path);
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

/**
 * The scope a request needs. Method overrides count as the method they claim; git smart HTTP
 * and Git LFS reads are recognised only in their exact forms; anything ambiguous is a write.
 * Synchronous except for a Git LFS batch request, whose body must be read.
 */
export async function requiredScope(
  req: Request,
  extraMethods: ReadonlyMap<string, Scope>,
): Promise<ScopeNeed> {
  const { path, query } = splitUrl(req);
  const methods = claimedMethods(req, query);
  let needsWrite = false;
  for (const method of methods) {
    const scope = METHOD_SCOPES[method] ?? extraMethods.get(method);
    if (scope === undefined) return { unknownMethod: method };
    if (scope === 'write') needsWrite = true;
  }
  const services = query === NO_QUERY ? [] : query.getAll('service');
  if (services.length > 0 && !(services.length === 1 && services[0] === 'git-upload-pack'))
    return { scope: 'write' };
  if (!needsWrite) return { scope: 'read' };
  // Only a plain POST, to a canonical path without a query, can be one of the reads below.
  if (
    req.method !== 'POST' ||
    methods.length > 1 ||
    !canonical(path) ||
    path.length !== (req.originalUrl ?? req.url).length
  ) {
    return { scope: 'write' };
  }
  if (path.endsWith('/git-upload-pack')) return { scope: 'read' };
  if (path.endsWith('/info/lfs/objects/batch'))
    return { scope: (await lfsBatchIsDownload(req)) ? 'read' : 'write' };
  return { scope: 'write' };
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

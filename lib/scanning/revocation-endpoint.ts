import type { Request, RequestHandler, Response } from 'express';
import type { ClientIpResolver } from '../client-address/resolver.js';
import {
  MethodNotAllowedError,
  PayloadTooLargeError,
  type TokenGateError,
  TooManyAttemptsError,
  ValidationError,
} from '../errors.js';
import type { EventListener } from '../events.js';
import { sendError } from '../http/respond.js';
import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import type { TokenInfo } from '../model.js';
import { addressKey } from '../throttle/address-key.js';
import { parseToken } from '../tokens/format.js';
import type { TokenService } from '../tokens/service.js';
import { checkRevocationEndpointOptions, type RevocationEndpointOptions } from './revocation-options.js';

export type { RevocationEndpointOptions } from './revocation-options.js';

/** Tokens one request may report (GitHub's credential revocation API takes as many). */
export const MAX_REPORTED = 1_000;
const FIELD_LIMIT = 2_048;

/** One reported token, with where the finder saw it. */
export interface LeakReport {
  token: string;
  url?: string;
  /** The finder's `source` (or `type`) field. */
  finder?: string;
}

export interface RevocationParts {
  tokens: TokenService;
  emit: EventListener;
  resolveClientIp: ClientIpResolver;
  /**
   * Ends the OAuth sign-in of a reported refresh token (`gate.oauth()`), answering the id of its
   * access token, or null when it is none of ours. Default: refresh tokens are ignored.
   */
  endRefreshFamily?: (token: string) => Promise<string | null>;
}

/**
 * Reads a report body: GitHub's credential revocation API (`{ "credentials": ["bbt_…"] }`) or
 * its secret-scanning partner payload (`[{ "token", "type", "url", "source" }]`). A malformed
 * body is a 400 naming the field; nothing here depends on whether the tokens exist.
 */
export function parseReports(body: unknown): LeakReport[] {
  const entries: unknown[] | undefined = Array.isArray(body)
    ? body
    : typeof body === 'object' &&
        body !== null &&
        Array.isArray((body as { credentials?: unknown }).credentials)
      ? (body as { credentials: unknown[] }).credentials
      : undefined;
  if (entries === undefined)
    throw new ValidationError(
      'body',
      'Send `{ "credentials": ["<token>", …] }` or `[{ "token": "<token>", "url": "…", "source": "…" }, …]`.',
    );
  if (entries.length > MAX_REPORTED)
    throw new ValidationError('credentials', `At most ${MAX_REPORTED} tokens per request.`);
  return entries.map((entry, i) => {
    if (typeof entry === 'string') return { token: entry };
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof (entry as { token?: unknown }).token !== 'string'
    )
      throw new ValidationError(
        `[${i}].token`,
        `Entry ${i} must be a token string or an object with \`token\`.`,
      );
    const { token, url, source, type } = entry as Record<string, unknown>;
    const report: LeakReport = { token: token as string };
    if (typeof url === 'string') report.url = url.slice(0, FIELD_LIMIT);
    const finder = typeof source === 'string' ? source : typeof type === 'string' ? type : undefined;
    if (finder !== undefined) report.finder = finder.slice(0, FIELD_LIMIT);
    return report;
  });
}

/**
 * Revokes every live token among `reports` (on every instance, through the store's revocation
 * feed) and reports each with `token.leaked`; the rest are ignored. Answers the revoked ids.
 */
export async function revokeReported(
  reports: readonly LeakReport[],
  parts: Pick<RevocationParts, 'tokens' | 'emit' | 'endRefreshFamily'>,
  context: { clientIp: string | null; actor: string },
): Promise<string[]> {
  const { tokens, emit, endRefreshFamily } = parts;
  const seen = new Set<string>();
  const revoked: string[] = [];
  for (const report of reports) {
    const token = report.token.trim();
    if (seen.has(token)) continue;
    seen.add(token);
    let info: TokenInfo | null;
    if (parseToken(token, tokens.tokenPrefix) !== null) info = await withRetries(() => tokens.verify(token));
    else if (endRefreshFamily !== undefined && token.length <= 200) {
      // A refresh token: its sign-in ends, and its access token is revoked and reported below.
      const accessId = await withRetries(() => endRefreshFamily(token));
      info = accessId === null ? null : await withRetries(() => tokens.get(accessId));
    } else continue;
    if (info === null) continue;
    const done = await withRetries(() => tokens.revoke(info.id, context));
    if (!done) continue;
    revoked.push(info.id);
    emit({
      type: 'token.leaked',
      time: new Date().toISOString(),
      clientIp: context.clientIp,
      actor: context.actor,
      user: info.user,
      tokenId: info.id,
      name: info.name,
      source: 'report',
      revoked: true,
      ...(report.url === undefined ? {} : { url: withoutTokens(report.url, tokens.tokenPrefix) }),
      ...(report.finder === undefined ? {} : { finder: withoutTokens(report.finder, tokens.tokenPrefix) }),
    });
  }
  return revoked;
}

/**
 * The finder's text with anything token-shaped cut to its prefix: a URL may carry another
 * token (one nobody reported), and events never hold a secret.
 */
function withoutTokens(text: string, prefix: string): string {
  return text.replace(new RegExp(`${prefix}_[0-9A-Za-z]+`, 'gi'), `${prefix}_…`);
}

/** A store that fails now may answer in a moment: three tries, then the error. */
async function withRetries<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt === 3) throw err;
      await new Promise((resolve) => setTimeout(resolve, attempt * 1_000));
    }
  }
}

/** The body, read up to `limit` bytes. */
function readBody(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new PayloadTooLargeError());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const ACCEPTED = JSON.stringify({ message: 'Accepted: every live token among these is being revoked.' });

/**
 * The revocation endpoint for found tokens, after GitHub's credential revocation API: no login
 * (holding a token is enough to kill it), up to 1,000 tokens per request, in GitHub's shape or
 * its secret-scanning partner payload. The answer is always the same `202` whatever the tokens
 * were, sent before any of them is looked up: no validity oracle, in content or in timing. Then
 * each live token is revoked and reported (`token.leaked`). Rate-limited per client address.
 */
export function revocationEndpoint(
  parts: RevocationParts,
  options: Readonly<RevocationEndpointOptions> = {},
): RequestHandler {
  checkRevocationEndpointOptions(options);
  const maxRequests = options.maxRequestsPerIp ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576;
  const counter = new FixedWindowCounter();
  const fail = (req: Request, res: Response, error: TokenGateError) => {
    if (!req.readableEnded) req.resume();
    sendError(req, res, error);
  };

  return function revocationEndpointMiddleware(req, res) {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      fail(req, res, new MethodNotAllowedError('Report leaked tokens with POST.'));
      return;
    }
    const clientIp = parts.resolveClientIp(req)?.text ?? null;
    // An IPv6 client by its /64, like the login throttle: one subscriber holds the whole range.
    if (counter.add(addressKey(clientIp), windowMs) > maxRequests) {
      fail(
        req,
        res,
        new TooManyAttemptsError(Math.ceil(windowMs / 1_000), 'Too many reports. Try again later.'),
      );
      return;
    }
    if (!req.is('application/json')) {
      fail(req, res, new ValidationError('body', 'Send JSON with Content-Type: application/json.'));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) {
      fail(req, res, new PayloadTooLargeError());
      return;
    }
    const body: Promise<unknown> =
      req.body !== undefined && req.readableEnded
        ? Promise.resolve(req.body)
        : readBody(req, maxBodyBytes).then((raw) => {
            try {
              return JSON.parse(raw.toString('utf8')) as unknown;
            } catch {
              throw new ValidationError('body', 'The body is not valid JSON.');
            }
          });
    body.then(parseReports).then(
      (reports) => {
        res.status(202).type('application/json').setHeader('Cache-Control', 'no-store');
        res.end(ACCEPTED);
        revokeReported(reports, parts, { clientIp, actor: 'leak-report' }).catch(() => {
          // The store stayed down through the retries: the finder may report again.
        });
      },
      (err: TokenGateError) => sendError(req, res, err),
    );
  };
}

import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Request, RequestHandler, Response } from 'express';
import { expressTrustsPeer } from '../client-address/express-trust-proxy.js';
import { GatewayError, ValidationError } from '../errors.js';
import { sendError } from '../http/respond.js';
import { type Check, fail, integer, type Shape, validateOptions } from '../internal/options.js';
import { appendForwardedFor, endToEndHeaders, plainAddress } from './headers.js';

/**
 * Options of `forwardTo`.
 * @example
 * import { readFileSync } from 'node:fs';
 * import https from 'node:https';
 * const agent = new https.Agent({ keepAlive: true, ca: readFileSync('internal-ca.pem') });
 * forwardTo('https://bitbucket.internal', { timeoutMs: 120_000, agent });
 */
export interface ForwardOptions {
  /**
   * How long the upstream connection may stay silent, in milliseconds: no byte sent or received
   * for this long answers 504 (or cuts a response already under way). A slow push is never cut
   * off while its bytes flow. Default 60,000.
   */
  timeoutMs?: number;
  /**
   * The agent for upstream connections: a keep-alive pool, or an `https.Agent` with your
   * internal CA (`ca`). Default: Node's global agent for the upstream's protocol.
   */
  agent?: Agent;
}

const instanceOfAgent: Check = (value, path) => {
  if (!(value instanceof Agent)) fail(path, 'must be an http.Agent or https.Agent');
};

const FORWARD_OPTIONS: Shape<ForwardOptions> = {
  timeoutMs: integer(1, 2_147_483_647),
  agent: instanceOfAgent,
};

function parseUpstream(upstream: unknown): URL {
  let url: URL;
  if (upstream instanceof URL) url = new URL(upstream.href);
  else if (typeof upstream === 'string' && URL.canParse(upstream)) url = new URL(upstream);
  else fail('upstream', `must be an http: or https: URL, got ${JSON.stringify(String(upstream))}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    fail('upstream', `must be an http: or https: URL, got ${JSON.stringify(url.protocol)}`);
  if (url.username !== '' || url.password !== '') fail('upstream', 'must not carry a user name or password');
  if (url.search !== '' || url.hash !== '') fail('upstream', 'must not have a query string or fragment');
  return url;
}

/**
 * The path to ask the upstream for: its own path prefix, then the request's full path as the
 * client sent it (`originalUrl`, so the mount path is kept: `/rest/…` stays `/rest/…`).
 * Absolute-form targets (`GET http://host/path`) keep only their path and query.
 */
function upstreamPath(prefix: string, target: string): string | null {
  if (target.startsWith('/')) return `${prefix}${target}`;
  if (!URL.canParse(target)) return null;
  const url = new URL(target);
  return `${prefix}${url.pathname}${url.search}`;
}

function outgoingHeaders(req: Request, upstream: URL) {
  // `expect` is answered by this hop (Node sends `100 Continue` itself); `host` is the upstream's.
  const headers = endToEndHeaders(req.headers, ['expect', 'host']);
  headers.host = upstream.host;
  const forwardedFor = appendForwardedFor(
    req.headers['x-forwarded-for'],
    plainAddress(req.socket.remoteAddress),
  );
  if (forwardedFor === undefined) delete headers['x-forwarded-for'];
  else headers['x-forwarded-for'] = forwardedFor;
  const earlierHost = expressTrustsPeer(req)
    ? String(req.headers['x-forwarded-host'] ?? '')
        .split(',')[0]
        ?.trim()
    : undefined;
  const host = earlierHost || req.headers.host;
  if (host === undefined) delete headers['x-forwarded-host'];
  else headers['x-forwarded-host'] = host;
  const encrypted = (req.socket as Partial<TLSSocket>).encrypted === true;
  headers['x-forwarded-proto'] =
    typeof req.protocol === 'string' ? req.protocol : encrypted ? 'https' : 'http';
  return headers;
}

/**
 * A streaming reverse proxy to `upstream`, to mount after `gate.protect()`. It forwards
 * `req.headers` as the request path left them (identity set, token removed), minus hop-by-hop
 * headers (those named in `Connection` too), with `X-Forwarded-For` appended and
 * `X-Forwarded-Host` / `X-Forwarded-Proto` set. Bodies stream both ways and are never
 * buffered, so a large push passes with flat memory. The request's full path is forwarded
 * whatever the mount path, after the upstream's own path prefix. An unreachable upstream
 * answers 502 (`UPSTREAM_UNREACHABLE`), a silent one 504 (`UPSTREAM_TIMEOUT`), in Bitbucket's
 * error shape; a client that goes away closes the upstream request too.
 *
 * Invalid options throw here, naming the option.
 *
 * @example
 * import { forwardTo } from 'express-api-tokens/forward';
 *
 * app.use(
 *   ['/rest', '/scm'],
 *   gate.protect(),
 *   forwardTo('https://bitbucket.internal:7990', { timeoutMs: 120_000 }),
 * );
 */
export function forwardTo(upstream: string | URL, options: Readonly<ForwardOptions> = {}): RequestHandler {
  // `app.use(forwardTo)` without the call would hand us a request: say so instead of "not a URL".
  if (typeof upstream === 'object' && upstream !== null && 'headers' in upstream)
    throw new TypeError('Mount `forwardTo(url)` (called), not `forwardTo`');
  const base = parseUpstream(upstream);
  validateOptions(options, FORWARD_OPTIONS);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  const prefix = base.pathname.replace(/\/+$/, '');

  return function forward(req: Request, res: Response): void {
    const path = upstreamPath(prefix, req.originalUrl ?? req.url);
    if (path === null) {
      sendError(req, res, new ValidationError('path', 'The request target is not a path.'));
      return;
    }
    const outgoing: ClientRequest = send({
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      method: req.method,
      path,
      headers: outgoingHeaders(req, base),
      timeout: timeoutMs,
      ...(options.agent === undefined ? {} : { agent: options.agent }),
    });
    let timedOut = false;

    // The client went away before its answer was complete: stop the upstream work too.
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    outgoing.on('timeout', () => {
      timedOut = true;
      outgoing.destroy();
    });
    outgoing.on('response', (incoming: IncomingMessage) => {
      res.writeHead(incoming.statusCode ?? 502, incoming.statusMessage, endToEndHeaders(incoming.headers));
      // A failure on either side destroys both: a cut-off answer never looks complete.
      pipeline(incoming, res, () => {});
    });
    outgoing.on('error', (err) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      sendError(
        req,
        res,
        timedOut
          ? new GatewayError('UPSTREAM_TIMEOUT', 'Bitbucket did not answer in time. Try again later.')
          : new GatewayError('UPSTREAM_UNREACHABLE', 'Bitbucket is unreachable. Try again later.', {
              cause: err,
            }),
      );
    });
    // pipe, not pipeline: an upstream failure is answered above (502/504); it does not tear
    // down the client's connection under the answer.
    req.on('error', () => outgoing.destroy());
    req.pipe(outgoing);
  };
}

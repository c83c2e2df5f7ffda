import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream';
import type { Request, Response } from 'express';

// Hop-by-hop headers are for one connection only and never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers))
    if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
}

/**
 * A streaming reverse proxy to `upstream`: request and response bodies are piped, never
 * buffered, so a large git push passes with flat memory. It forwards `req.headers` as the
 * request path left them (identity header set, token removed).
 */
export function forwardTo(upstream: URL) {
  const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
  return function forward(req: Request, res: Response): void {
    const headers = forwardable(req.headers);
    headers.host = upstream.host;
    headers['x-forwarded-for'] = [req.headers['x-forwarded-for'], req.socket.remoteAddress]
      .filter(Boolean)
      .join(', ');
    headers['x-forwarded-host'] = req.headers.host;
    headers['x-forwarded-proto'] = req.protocol;
    const outgoing = send(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `${upstream.pathname.replace(/\/$/, '')}${req.originalUrl}`,
        headers,
      },
      (incoming) => {
        res.writeHead(incoming.statusCode ?? 502, forwardable(incoming.headers));
        pipeline(incoming, res, () => {});
      },
    );
    outgoing.on('error', () => {
      if (!res.headersSent) {
        res.status(502).json({
          errors: [
            {
              context: null,
              message: 'Bitbucket is unreachable.',
              exceptionName: null,
              code: 'UPSTREAM_UNAVAILABLE',
            },
          ],
        });
      } else {
        res.destroy();
      }
    });
    pipeline(req, outgoing, () => {});
  };
}

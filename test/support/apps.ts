import type { Express, RequestHandler } from 'express';
import express5 from 'express';
import express4 from 'express4';

type ExpressFactory = () => Express;

/** Both supported Express majors, to run each suite against. */
export const EXPRESS_VERSIONS: Array<[string, ExpressFactory]> = [
  ['Express 4', express4 as unknown as ExpressFactory],
  ['Express 5', express5 as unknown as ExpressFactory],
];

/**
 * An app with the given middlewares in front of an "upstream" that echoes what it received:
 * the headers our middlewares forward and the request's `auth`.
 */
export function echoApp(makeApp: ExpressFactory, ...middlewares: RequestHandler[]): Express {
  const app = makeApp();
  app.set('trust proxy', false);
  for (const middleware of middlewares) app.use(middleware);
  app.use((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.json({
        method: req.method,
        url: req.originalUrl,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        auth: req.auth ?? null,
        body: Buffer.concat(chunks).toString('utf8'),
      });
    });
  });
  return app;
}

export const basic = (user: string, secret: string) =>
  `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

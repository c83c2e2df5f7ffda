import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * A CI's OpenID issuer on a loopback port, as GitLab or GitHub serve theirs: a discovery
 * document and a JWKS over plain HTTP, keys made with jose. It signs job tokens, rotates its
 * key, and can go away (`stop`) and come back (`start`) on the same port. It counts the
 * requests it answers, so tests can see when keys were fetched.
 */
export interface CiIssuer {
  readonly issuer: string;
  /** Requests answered, by path. */
  readonly requests: { discovery: number; jwks: number };
  /** The current key's public JWK (with kid and alg). */
  readonly publicJwk: JWK;
  /** Signs a job token with the current key; `claims` override the defaults, `header` adds to it. */
  sign(
    claims?: Record<string, unknown>,
    options?: { header?: Record<string, unknown>; key?: 'current' | 'unpublished' },
  ): Promise<string>;
  /** A new current key; the old one stays published unless `retireOld`. */
  rotate(options?: { retireOld?: boolean; alg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA' }): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function makeKey(alg: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export interface CiIssuerOptions {
  alg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  /** What the discovery document says instead of the truth (a misconfigured or hostile issuer). */
  discovery?: { issuer?: string; jwks_uri?: string };
  /** The JWKS answer's status instead of 200. */
  jwksStatus?: number;
}

export async function startCiIssuer(options: CiIssuerOptions = {}): Promise<CiIssuer> {
  let published: SigningKey[] = [await makeKey(options.alg ?? 'RS256')];
  const unpublished = await makeKey(options.alg ?? 'RS256');
  let current = published[0]!;
  const requests = { discovery: 0, jwks: 0 };
  let server: Server | undefined;
  let port = 0;
  let issuer = '';

  const start = async () => {
    server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        requests.discovery++;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            issuer,
            jwks_uri: `${issuer}/oauth/discovery/keys`,
            id_token_signing_alg_values_supported: ['RS256'],
            ...options.discovery,
          }),
        );
      } else if (req.url === '/oauth/discovery/keys') {
        requests.jwks++;
        res.statusCode = options.jwksStatus ?? 200;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: published.map((k) => k.publicJwk) }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    issuer = `http://127.0.0.1:${port}`;
  };
  const stop = async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  };
  await start();

  return {
    get issuer() {
      return issuer;
    },
    requests,
    get publicJwk() {
      return current.publicJwk;
    },
    async sign(claims = {}, signOptions = {}) {
      const key = signOptions.key === 'unpublished' ? unpublished : current;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        iss: issuer,
        aud: 'https://git.example.com',
        sub: 'project_path:ops/deploy:ref_type:branch:ref:main',
        iat: now,
        nbf: now,
        exp: now + 300,
        jti: randomUUID(),
        project_path: 'ops/deploy',
        ref_type: 'branch',
        ref: 'main',
        ...claims,
      })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...signOptions.header })
        .sign(key.privateKey);
    },
    async rotate(rotateOptions = {}) {
      const next = await makeKey(rotateOptions.alg ?? current.alg);
      published = rotateOptions.retireOld ? [next] : [...published, next];
      current = next;
    },
    stop,
    start,
    close: stop,
  };
}

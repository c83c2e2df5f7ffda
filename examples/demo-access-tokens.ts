import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BitbucketPermission } from '../lib/index.js';

/**
 * Bitbucket Data Center's personal HTTP access tokens, as the demo upstream and the tests'
 * Bitbucket stand-in emulate them (shapes from the REST API reference, `access-tokens/latest`):
 *
 * - `PUT /rest/access-tokens/latest/users/{slug}` `{ name, permissions, expiryDays? }` → 200
 *   `{ id, name, createdDate, permissions, expiryDays?, expiryDate?, user, token }` — with the
 *   user's password only (Bitbucket: a token cannot create tokens); 400 for a missing name, an
 *   empty, unknown or impossible permission set (repository level below project level), or a
 *   bad `expiryDays`.
 * - `GET …/users/{slug}` (a page), `GET …/users/{slug}/{id}`, `DELETE …/users/{slug}/{id}` (204)
 *   — with the user's password, an administrator's password or access token, or (read and
 *   delete of itself) the token itself. 404 for an unknown user or token.
 * - Tokens authenticate as `Authorization: Bearer <token>` (or as the Basic password of their
 *   owner) until they expire (whole days after creation) or are deleted; then 401, like a wrong
 *   password. Every authenticated answer names the user in `X-AUSERNAME`. A credential that
 *   authenticates but lacks a permission gets 401 with `AuthorisationException`, as Bitbucket
 *   answers REST calls.
 * Token strings are base64 of `<12-digit id>:<secret bytes>`, as Bitbucket's are.
 */
export interface StandInAccount {
  name: string;
  slug: string;
  password: string;
  /** A system administrator: may read and delete anyone's tokens. */
  admin?: boolean;
}

export type Permission = BitbucketPermission;

export interface StandInToken {
  id: string;
  name: string;
  user: string;
  permissions: Permission[];
  createdDate: number;
  expiryDays: number | null;
  expiryDate: number | null;
  lastAuthenticated: number | null;
  /** The raw token (what its holder sends); empty for a token read back from a saved file. */
  token: string;
  /** SHA-256 of the raw token (hex): what is compared, and all that is ever saved. */
  tokenHash: string;
}

/** Who a request authenticates as (`header`: the demo's trusted `X-Forwarded-User`). */
export type Principal =
  | { user: StandInAccount; via: 'password' }
  | { user: StandInAccount; via: 'header' }
  | { user: StandInAccount; via: 'token'; token: StandInToken };

const LEVELS = ['READ', 'WRITE', 'ADMIN'];
const KNOWN = new Set<string>(LEVELS.flatMap((l) => [`REPO_${l}`, `PROJECT_${l}`]));
const DAY_MS = 86_400_000;

function json(res: ServerResponse, status: number, body: unknown, user?: string): void {
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=UTF-8',
    ...(user === undefined ? {} : { 'X-AUSERNAME': user }),
  });
  res.end(JSON.stringify(body));
}

const error = (message: string, exceptionName: string | null = null) => ({
  errors: [{ context: null, message, exceptionName }],
});

/** 401 for a credential Bitbucket does not accept (wrong, revoked, expired). */
export function authenticationFailed(res: ServerResponse): void {
  json(
    res,
    401,
    error(
      'Authentication failed. Please check your credentials and try again.',
      'com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException',
    ),
  );
}

/** 401 for a credential that authenticates but may not do this. */
export function notPermitted(res: ServerResponse, user: string): void {
  json(
    res,
    401,
    error('You are not permitted to access this resource', 'com.atlassian.bitbucket.AuthorisationException'),
    user,
  );
}

function level(permissions: readonly string[], kind: 'REPO' | 'PROJECT'): number {
  let best = 0;
  for (const p of permissions) {
    const [k, l] = p.split('_');
    if (k === kind) best = Math.max(best, LEVELS.indexOf(l!) + 1);
  }
  return best;
}

const sha256 = (raw: string) => createHash('sha256').update(raw).digest('hex');

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return null;
  }
}

export class AccessTokenRegistry {
  readonly accounts: StandInAccount[];
  /** Every live token by id (deleted ones are removed; expired ones stay, refused). */
  readonly tokens = new Map<string, StandInToken>();
  /** Clock, so tests can move past expiry. */
  now: () => number;
  /** Called after a token is created or deleted (the demo saves the registry then). */
  onChange: (() => void) | undefined;

  constructor(accounts: StandInAccount[], now: () => number = Date.now) {
    this.accounts = accounts;
    this.now = now;
  }

  account(nameOrSlug: string): StandInAccount | undefined {
    const wanted = nameOrSlug.toLowerCase();
    return this.accounts.find((a) => a.name.toLowerCase() === wanted || a.slug === wanted);
  }

  /** Creates a token as Bitbucket would for `user` (also what the REST `PUT` does). */
  create(
    user: StandInAccount,
    name: string,
    permissions: Permission[],
    expiryDays: number | null,
  ): StandInToken {
    const id = String(randomInt(100_000_000_000, 999_999_999_999));
    const created = this.now();
    const raw = Buffer.concat([Buffer.from(`${id}:`), randomBytes(24)]).toString('base64');
    const token: StandInToken = {
      id,
      name,
      user: user.name,
      permissions: [...new Set(permissions)],
      createdDate: created,
      expiryDays,
      expiryDate: expiryDays === null ? null : created + expiryDays * DAY_MS,
      lastAuthenticated: null,
      token: raw,
      tokenHash: sha256(raw),
    };
    this.tokens.set(id, token);
    this.onChange?.();
    return token;
  }

  /** Revokes a token in Bitbucket (what a user or an administrator does in Bitbucket's UI). */
  revoke(id: string): boolean {
    const gone = this.tokens.delete(id);
    if (gone) this.onChange?.();
    return gone;
  }

  /** The tokens as JSON to save: hashes, never a raw token (Bitbucket keeps no more either). */
  toJSON(): Array<Omit<StandInToken, 'token'>> {
    return [...this.tokens.values()].map(({ token: _raw, ...kept }) => kept);
  }

  /** Puts back tokens saved by `toJSON()` (their raw strings are unknown: they match by hash). */
  restore(saved: ReadonlyArray<Omit<StandInToken, 'token'>>): void {
    for (const token of saved) this.tokens.set(token.id, { ...token, token: '' });
  }

  /** The tokens of one user, oldest first. */
  of(user: string): StandInToken[] {
    return [...this.tokens.values()].filter((t) => t.user.toLowerCase() === user.toLowerCase());
  }

  #live(raw: string): StandInToken | undefined {
    const hash = sha256(raw);
    for (const token of this.tokens.values())
      if (sameSecret(token.tokenHash, hash))
        return token.expiryDate !== null && token.expiryDate <= this.now() ? undefined : token;
    return undefined;
  }

  /**
   * Who `Authorization` authenticates as: a principal, `refused` for a credential Bitbucket does
   * not accept, or null when there is none (anonymous).
   */
  authenticate(authorization: string | undefined): Principal | 'refused' | null {
    if (authorization === undefined || authorization === '') return null;
    const [scheme, value = ''] = authorization.split(' ');
    if (scheme?.toLowerCase() === 'bearer') {
      const token = this.#live(value);
      if (token === undefined) return 'refused';
      token.lastAuthenticated = this.now();
      return { user: this.account(token.user)!, via: 'token', token };
    }
    if (scheme?.toLowerCase() !== 'basic') return 'refused';
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const account = colon < 0 ? undefined : this.account(decoded.slice(0, colon));
    const secret = decoded.slice(colon + 1);
    if (account === undefined) return 'refused';
    if (sameSecret(account.password, secret)) return { user: account, via: 'password' };
    const token = this.#live(secret);
    if (token === undefined || token.user !== account.name) return 'refused';
    token.lastAuthenticated = this.now();
    return { user: account, via: 'token', token };
  }

  /** Whether a principal may act with `needed` (a password acts with all its user may do). */
  permits(principal: Principal, needed: Permission): boolean {
    if (principal.via !== 'token') return true;
    const [kind, lvl] = needed.split('_') as ['REPO' | 'PROJECT', string];
    return level(principal.token.permissions, kind) >= LEVELS.indexOf(lvl) + 1;
  }

  /** A token as Bitbucket describes it (never with its secret, except right after creation). */
  #describe(token: StandInToken, withSecret = false) {
    const user = this.account(token.user)!;
    return {
      id: token.id,
      name: token.name,
      createdDate: token.createdDate,
      ...(token.lastAuthenticated === null ? {} : { lastAuthenticated: token.lastAuthenticated }),
      permissions: token.permissions,
      ...(token.expiryDays === null ? {} : { expiryDays: token.expiryDays, expiryDate: token.expiryDate }),
      user: { name: user.name, slug: user.slug, displayName: user.name, active: true, type: 'NORMAL' },
      ...(withSecret ? { token: token.token } : {}),
    };
  }

  /**
   * Answers `/rest/access-tokens/latest/users/…` (and `/1.0/`); false for any other path.
   * `principal` is what the request authenticated as.
   */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    principal: Principal | 'refused' | null,
  ): Promise<boolean> {
    const match = /^\/rest\/access-tokens\/(?:latest|1\.0)\/users\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path);
    if (match === null) return false;
    if (principal === 'refused') authenticationFailed(res);
    else if (principal === null)
      json(res, 401, error('Authentication required.', 'com.atlassian.bitbucket.AuthenticationException'));
    else
      await this.#route(
        req,
        res,
        principal,
        decodeURIComponent(match[1]!),
        match[2] === undefined ? undefined : decodeURIComponent(match[2]),
      );
    return true;
  }

  async #route(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    slug: string,
    id: string | undefined,
  ): Promise<void> {
    const me = principal.user.name;
    const owner = this.account(slug);
    if (owner === undefined) {
      json(
        res,
        404,
        error('The user does not exist.', 'com.atlassian.bitbucket.user.NoSuchUserException'),
        me,
      );
      return;
    }
    const self = principal.user.name === owner.name;
    const method = req.method ?? 'GET';
    if (method === 'PUT' && id === undefined) {
      // Bitbucket: a token cannot be used to create new tokens.
      if (principal.via !== 'password' || !self) notPermitted(res, me);
      else await this.#createFromRequest(req, res, owner);
      return;
    }
    const itself = principal.via === 'token' && id !== undefined && principal.token.id === id;
    const mayManage = (self && principal.via === 'password') || principal.user.admin === true || itself;
    if (!mayManage) {
      notPermitted(res, me);
      return;
    }
    if (method === 'GET' && id === undefined) {
      const values = this.of(owner.name).map((t) => this.#describe(t));
      json(res, 200, { size: values.length, limit: 25, isLastPage: true, start: 0, values }, me);
      return;
    }
    const token = id === undefined ? undefined : this.tokens.get(id);
    if (token === undefined || token.user !== owner.name) {
      json(res, 404, error('The token does not exist.', 'com.atlassian.bitbucket.NoSuchEntityException'), me);
    } else if (method === 'GET') {
      json(res, 200, this.#describe(token), me);
    } else if (method === 'DELETE') {
      this.revoke(token.id);
      res.writeHead(204, { 'X-AUSERNAME': me });
      res.end();
    } else {
      json(res, 405, error('Method not allowed.'), me);
    }
  }

  async #createFromRequest(req: IncomingMessage, res: ServerResponse, owner: StandInAccount): Promise<void> {
    const me = owner.name;
    const body = (await readJson(req)) as {
      name?: unknown;
      permissions?: unknown;
      expiryDays?: unknown;
    } | null;
    const permissions = (Array.isArray(body?.permissions) ? body.permissions : []) as string[];
    const days = body?.expiryDays;
    let problem: string | undefined;
    if (typeof body?.name !== 'string' || body.name.trim() === '') problem = 'A token name is required.';
    else if (permissions.length === 0 || !permissions.every((p) => typeof p === 'string' && KNOWN.has(p)))
      problem = 'The permissions are empty or unknown.';
    else if (level(permissions, 'REPO') === 0 || level(permissions, 'REPO') < level(permissions, 'PROJECT'))
      problem = "A token's repository permission must be as high as its project permission.";
    else if (days !== undefined && (typeof days !== 'number' || !Number.isInteger(days) || days < 1))
      problem = 'expiryDays must be a positive number of days.';
    if (problem !== undefined) {
      json(res, 400, error(problem), me);
      return;
    }
    const token = this.create(
      owner,
      body!.name as string,
      permissions as Permission[],
      (days as number) ?? null,
    );
    json(res, 200, this.#describe(token, true), me);
  }
}

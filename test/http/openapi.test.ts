import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import createClient from 'openapi-fetch';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenGate, type TokenGate } from '../../lib/gate/create-token-gate.js';
import { managementApiDocument } from '../../lib/http/openapi.js';
import { PostgresTokenStore } from '../../lib/stores/postgres-token-store.js';
import { bitbucketAccessTokens } from '../../lib/upstream/bitbucket-access-tokens.js';
import { openApiFiles } from '../../scripts/openapi-files.js';
import type { paths } from '../support/management-api.js';

const document = managementApiDocument();
const addFormats = formats as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(document, 'api');

/** The JSON Pointer escape of one path segment. */
const pointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/** What the live tests saw: `METHOD template status code`. */
const seen = new Set<string>();

/**
 * Checks one live answer against the document: the status is documented for the operation, and
 * the body (JSON) matches its schema (for errors: the code is one the status lists).
 */
function conforms(method: string, template: string, res: request.Response): void {
  const operation = (
    document['paths'] as Record<string, Record<string, { responses: Record<string, unknown> }>>
  )[template]?.[method];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  const status = String(res.status);
  expect(Object.keys(operation!.responses), `${method} ${template} documents ${status}`).toContain(status);
  seen.add(`${method} ${template} ${status} ${res.body?.errors?.[0]?.code ?? ''}`.trim());
  if (res.status === 204) return;
  const path = `api#/paths/${pointer(template)}/${method}/responses/${status}/content/application~1json/schema`;
  const validate = ajv.getSchema(path);
  expect(validate, path).toBeDefined();
  const valid = validate!(res.body);
  expect(valid, `${method} ${template} ${status}: ${JSON.stringify(validate!.errors)}\n${res.text}`).toBe(
    true,
  );
}

/** A stand-in for the user's own login: the caller's name in a header. */
function testLogin(req: Request, _res: Response, next: NextFunction) {
  const user = req.headers['x-test-user'];
  if (typeof user === 'string') (req as { user?: unknown }).user = { name: user };
  next();
}

function mount(gate: TokenGate): Express {
  const app = express();
  app.use('/tokens/api', testLogin, gate.router());
  return app;
}

describe('the management API’s OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(document['openapi']).toBe('3.1.0');
    const { info: _info, ...broken } = document;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('tells a body that drifted from it: an unknown field, a code the status does not list', () => {
    const tokenInfo = ajv.getSchema('api#/components/schemas/TokenInfo')!;
    const info = {
      id: 'a1B2c3D4e5F',
      user: 'u',
      name: 'n',
      scope: 'read',
      createdAt: '2026-01-01T00:00:00.000Z',
      createdBy: 'u',
      expiresAt: null,
      lastUsedAt: null,
      lastUsedIp: null,
      allowedIps: null,
      requiredHeaders: null,
      resources: null,
      rateLimit: null,
      origin: null,
    };
    expect(tokenInfo(info)).toBe(true);
    expect(tokenInfo({ ...info, origin: { via: 'oauth', client: 'git', ip: '127.0.0.1' } })).toBe(true);
    expect(tokenInfo({ ...info, hash: 'x' })).toBe(false);
    expect(tokenInfo({ ...info, createdAt: 'yesterday' })).toBe(false);
    const notFound = ajv.getSchema('api#/paths/~1{id}/get/responses/404/content/application~1json/schema')!;
    const error = (code: string) => ({
      errors: [{ context: null, message: 'm', exceptionName: null, code }],
    });
    expect(notFound(error('TOKEN_NOT_FOUND'))).toBe(true);
    expect(notFound(error('NOT_FOUND'))).toBe(false);
  });

  it('is what docs/ and the typed client’s types hold (run scripts/write-openapi.ts after a change)', async () => {
    for (const [path, contents] of Object.entries(await openApiFiles()))
      expect(readFileSync(path, 'utf8'), `${path} is current`).toBe(contents);
  });
});

describe('every live answer of the management API matches the document', () => {
  let gate: TokenGate;
  let app: Express;
  beforeAll(() => {
    gate = createTokenGate({
      groups: { alice: ['devs'], admin: ['admins'], carol: [] },
      permissions: {
        createTokens: ['devs', 'admins'],
        createWriteTokens: ['admins'],
        manageOthers: ['admins'],
      },
      expiry: { defaultDays: 30, maxDays: 90 },
      maxTokensPerUser: 3,
      rateLimit: { perToken: { requests: 100, windowSeconds: 60 } },
    });
    app = mount(gate);
  });
  afterAll(() => gate.close());

  const as = (user: string | undefined, req: request.Test) =>
    user === undefined ? req : req.set('x-test-user', user);
  const api = '/tokens/api';

  it('GET /openapi.json serves the document', async () => {
    const res = await request(app).get(`${api}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(document);
    conforms('get', '/openapi.json', res);
  });

  it('POST / and GET /: successes and their refusals', async () => {
    const create = (user: string | undefined, body: unknown) =>
      as(user, request(app).post(`${api}/`)).send(body as object);
    const ok = await create('alice', {
      name: 'ci',
      scope: 'read',
      expiresInDays: 7,
      allowedIps: ['10.0.0.0/8'],
      requiredHeaders: { 'x-ci': 'yes' },
      resources: ['PROJ/repo'],
      rateLimit: { requests: 10, windowSeconds: 60 },
    });
    expect(ok.status).toBe(201);
    conforms('post', '/', ok);
    conforms('post', '/', await create('alice', { name: 'ci', scope: 'read', expiresInDays: 900 })); // 400
    conforms('post', '/', await create(undefined, { name: 'ci', scope: 'read' })); // 401
    conforms('post', '/', await create('alice', { name: 'ci', scope: 'write' })); // 403 PERMISSION_DENIED
    conforms('post', '/', await create('alice', { name: 'x'.repeat(20_000), scope: 'read' })); // 413
    const minted = await as(undefined, request(app).post(`${api}/`))
      .auth(ok.body.token, { type: 'bearer' })
      .send({ name: 'x', scope: 'read' });
    expect(minted.body.errors[0].code).toBe('TOKEN_CANNOT_MINT');
    conforms('post', '/', minted);
    const invalid = await request(app).post(`${api}/`).auth(`${ok.body.token}x`, { type: 'bearer' }).send({});
    conforms('post', '/', invalid); // 401 TOKEN_INVALID
    for (let i = 0; i < 2; i++)
      conforms('post', '/', await create('alice', { name: `more ${i}`, scope: 'read' }));
    // A change another site's page sends with the browser's cached login, and a form body.
    const crossSite = await create('alice', { name: 'x', scope: 'read' }).set('sec-fetch-site', 'cross-site');
    expect(crossSite.body.errors[0].code).toBe('CSRF_REJECTED');
    conforms('post', '/', crossSite);
    const form = await as('alice', request(app).post(`${api}/`))
      .type('form')
      .send({ name: 'x', scope: 'read' });
    expect(form.body.errors[0].code).toBe('UNSUPPORTED_MEDIA_TYPE');
    conforms('post', '/', form);
    const full = await create('alice', { name: 'one too many', scope: 'read' });
    expect(full.body.errors[0].code).toBe('TOKEN_LIMIT_REACHED');
    conforms('post', '/', full);

    conforms('get', '/', await as('alice', request(app).get(`${api}/?limit=2`)));
    conforms('get', '/', await as('admin', request(app).get(`${api}/?all=true&scope=read&restricted=true`)));
    conforms('get', '/', await as('alice', request(app).get(`${api}/?limit=0`))); // 400
    conforms('get', '/', await as('alice', request(app).get(`${api}/?user=carol`))); // 403
    conforms('get', '/', await request(app).get(`${api}/`)); // 401
    conforms('get', '/', await request(app).get(`${api}/`).auth(ok.body.token, { type: 'bearer' })); // 403 TOKEN_CANNOT_MANAGE
  });

  it('/{id}, /{id}/rotate, /{id}/copy, /revoke-all: successes and their refusals', async () => {
    const { info } = await gate.tokens.create({ user: 'carol', name: 'carol’s', scope: 'read' });
    const id = info.id;
    const other = await gate.tokens.create({ user: 'admin', name: 'admin’s', scope: 'write' });
    conforms('get', '/{id}', await as('carol', request(app).get(`${api}/${id}`)));
    conforms('get', '/{id}', await as('carol', request(app).get(`${api}/${other.info.id}`))); // 404
    conforms('get', '/{id}', await request(app).get(`${api}/${id}`)); // 401
    conforms(
      'patch',
      '/{id}',
      await as('carol', request(app).patch(`${api}/${id}`)).send({ name: 'renamed' }),
    );
    conforms(
      'patch',
      '/{id}',
      await as('carol', request(app).patch(`${api}/${id}`)).send({ rateLimit: null }),
    );
    conforms(
      'patch',
      '/{id}',
      await as('carol', request(app).patch(`${api}/${id}`)).send({ scope: 'write' }),
    ); // 400
    conforms(
      'patch',
      '/{id}',
      await as('carol', request(app).patch(`${api}/${other.info.id}`)).send({ name: 'x' }),
    ); // 404
    conforms('post', '/{id}/copy', await as('admin', request(app).post(`${api}/${id}/copy`)));
    conforms('post', '/{id}/copy', await as('carol', request(app).post(`${api}/${id}/copy`))); // 403 (carol may not create)
    conforms(
      'post',
      '/{id}/copy',
      await as('admin', request(app).post(`${api}/${id}/copy`)).send({ bitbucketToken: 'x' }),
    ); // 400
    conforms(
      'post',
      '/{id}/rotate',
      await as('admin', request(app).post(`${api}/${id}/rotate`)).send({ graceMs: 0 }),
    );
    conforms('post', '/{id}/rotate', await as('admin', request(app).post(`${api}/${id}/rotate`))); // 404: revoked by the rotation
    conforms(
      'post',
      '/{id}/rotate',
      await as('admin', request(app).post(`${api}/${other.info.id}/rotate`)).send({ graceMs: 'soon' }),
    ); // 400
    conforms('post', '/{id}/rotate', await as('carol', request(app).post(`${api}/${other.info.id}/rotate`))); // 404
    const revokeOther = await as('carol', request(app).delete(`${api}/${other.info.id}`));
    conforms('delete', '/{id}', revokeOther); // 404
    const self = await request(app).delete(`${api}/${other.info.id}`).auth(other.token, { type: 'bearer' });
    expect(self.status).toBe(204);
    conforms('delete', '/{id}', self);
    conforms(
      'delete',
      '/{id}',
      await request(app).delete(`${api}/${other.info.id}`).auth(other.token, { type: 'bearer' }),
    ); // 401 TOKEN_INVALID
    conforms(
      'post',
      '/revoke-all',
      await as('admin', request(app).post(`${api}/revoke-all`)).send({ user: 'carol' }),
    );
    conforms(
      'post',
      '/revoke-all',
      await as('carol', request(app).post(`${api}/revoke-all`)).send({ user: 'admin' }),
    ); // 403
    conforms('post', '/revoke-all', await as('carol', request(app).post(`${api}/revoke-all`)).send({})); // 400
  });

  it('answers 503 STORE_UNAVAILABLE as documented when the store is down', async () => {
    // A PostgreSQL that is not there: every store call fails.
    const pool = new pg.Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 500,
    });
    pool.on('error', () => {});
    const down = createTokenGate({ store: new PostgresTokenStore({ pool }), storeTimeoutMs: 1_000 });
    try {
      const downApp = mount(down);
      const res = await as('alice', request(downApp).get(`${api}/`));
      expect(res.status).toBe(503);
      conforms('get', '/', res);
      conforms(
        'post',
        '/',
        await as('alice', request(downApp).post(`${api}/`)).send({ name: 'x', scope: 'read' }),
      );
      conforms('get', '/{id}', await as('alice', request(downApp).get(`${api}/a1B2c3D4e5F`)));
    } finally {
      await down.close();
      await pool.end();
    }
  });

  it('answers access-token mode’s refusals as documented', async () => {
    const upstream = bitbucketAccessTokens({
      baseUrl: 'http://127.0.0.1:1',
      encryptionKeys: [{ id: 'k1', key: randomBytes(32) }],
      timeoutMs: 500,
    });
    const mode = createTokenGate({ upstream });
    try {
      const modeApp = mount(mode);
      const none = await as('alice', request(modeApp).post(`${api}/`)).send({ name: 'x', scope: 'read' });
      expect(none.body.errors[0].code).toBe('UPSTREAM_TOKEN_REQUIRED');
      conforms('post', '/', none);
      const unreachable = await as('alice', request(modeApp).post(`${api}/`)).send({
        name: 'x',
        scope: 'read',
        bitbucketToken: 'BBDC-not-a-real-one',
      });
      expect(unreachable.status).toBeGreaterThanOrEqual(500);
      conforms('post', '/', unreachable);
    } finally {
      await mode.close();
    }
  });

  it('saw every documented success and the refusals above', () => {
    for (const expected of [
      'post / 201',
      'post / 400 VALIDATION_FAILED',
      'post / 400 TOKEN_LIMIT_REACHED',
      'post / 401 NOT_AUTHENTICATED',
      'post / 401 TOKEN_INVALID',
      'post / 403 PERMISSION_DENIED',
      'post / 403 TOKEN_CANNOT_MINT',
      'post / 403 CSRF_REJECTED',
      'post / 413 BODY_TOO_LARGE',
      'post / 415 UNSUPPORTED_MEDIA_TYPE',
      'post / 503 STORE_UNAVAILABLE',
      'post / 409 UPSTREAM_TOKEN_REQUIRED',
      'get / 200',
      'get / 403 TOKEN_CANNOT_MANAGE',
      'get /{id} 200',
      'get /{id} 404 TOKEN_NOT_FOUND',
      'patch /{id} 200',
      'delete /{id} 204',
      'delete /{id} 401 TOKEN_INVALID',
      'post /{id}/rotate 201',
      'post /{id}/copy 201',
      'post /revoke-all 200',
      'get /openapi.json 200',
    ])
      expect([...seen]).toContain(expected);
  });
});

describe('a client generated from the document (openapi-typescript + openapi-fetch)', () => {
  let gate: TokenGate;
  let server: Server;
  beforeAll(async () => {
    gate = createTokenGate({});
    const app = mount(gate);
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
  });
  afterAll(async () => {
    await gate.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('creates, lists, updates, rotates and revokes a token', async () => {
    const client = createClient<paths>({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tokens/api`,
      headers: { 'x-test-user': 'dora' },
    });
    const created = await client.POST('/', {
      body: { name: 'laptop', scope: 'read', rateLimit: { requests: 60, windowSeconds: 60 } },
    });
    expect(created.response.status).toBe(201);
    const id = created.data!.id;
    expect(created.data!.token).toMatch(/^bbt_/);
    const listed = await client.GET('/', { params: { query: { limit: 10 } } });
    expect(listed.data!.values.map((t) => t.id)).toEqual([id]);
    const updated = await client.PATCH('/{id}', { params: { path: { id } }, body: { name: 'laptop (old)' } });
    expect(updated.data!.name).toBe('laptop (old)');
    const rotated = await client.POST('/{id}/rotate', { params: { path: { id } }, body: { graceMs: 0 } });
    expect(rotated.response.status).toBe(201);
    const newId = rotated.data!.id;
    expect(newId).not.toBe(id);
    const missing = await client.GET('/{id}', { params: { path: { id } } });
    expect(missing.response.status).toBe(404);
    expect(missing.error!.errors[0]!.code).toBe('TOKEN_NOT_FOUND');
    const revoked = await client.DELETE('/{id}', { params: { path: { id: newId } } });
    expect(revoked.response.status).toBe(204);
    expect((await client.GET('/', {})).data!.values).toEqual([]);
  });
});

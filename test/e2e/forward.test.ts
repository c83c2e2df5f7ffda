import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardTo } from '../../lib/forward/index.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';

/** protect() in front of the example's streaming forwarder, with an upstream that echoes what arrives. */
describe('protect() with a streaming forwarder', () => {
  let upstream: Server;
  let app: express.Express;
  const gate = createTokenGate();
  let read = '';
  let write = '';

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const { port } = upstream.address() as AddressInfo;
    app = express();
    app.use(['/rest', '/scm'], gate.protect(), forwardTo(`http://127.0.0.1:${port}`));
    read = (await gate.tokens.create({ user: 'alice', name: 'r', scope: 'read' })).token;
    write = (await gate.tokens.create({ user: 'alice', name: 'w', scope: 'write' })).token;
  });

  afterAll(async () => {
    await gate.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('forwards a Git LFS batch body it had to read, byte for byte', async () => {
    const body = JSON.stringify({
      operation: 'download',
      objects: [{ oid: 'b'.repeat(64), size: 123 }],
      ref: { name: 'refs/heads/main' },
    });
    const res = await request(app)
      .post('/scm/proj/repo.git/info/lfs/objects/batch')
      .set('Authorization', `Bearer ${read}`)
      .set('Content-Type', 'application/vnd.git-lfs+json')
      .send(body);
    expect(res.status).toBe(200);
    expect(res.body.body).toBe(body);
    expect(res.body.headers['x-forwarded-user']).toBe('alice');
    expect(res.body.headers.authorization).toBeUndefined();
  });

  it('streams a large body through without change', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    const res = await request(app)
      .put('/rest/api/1.0/blob')
      .set('Authorization', `Bearer ${write}`)
      .set('Content-Type', 'text/plain')
      .send(big);
    expect(res.status).toBe(200);
    expect(res.body.body.length).toBe(big.length);
  });

  it('answers 502 in Bitbucket’s shape when the upstream is unreachable', async () => {
    const down = express();
    down.use(gate.protect(), forwardTo('http://127.0.0.1:1'));
    const res = await request(down).get('/rest/x').set('Authorization', `Bearer ${read}`);
    expect(res.status).toBe(502);
    expect(res.body.errors[0].code).toBe('UPSTREAM_UNREACHABLE');
  });
});

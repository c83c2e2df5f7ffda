import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { auditListener, createAuditLogger } from '../../examples/audit-log.js';
import { createTokenGate } from '../../lib/gate/create-token-gate.js';
import { tempDir } from '../support/temp-dir.js';

const temp = tempDir('audit-log');
afterAll(() => temp.remove());

describe('examples/audit-log.ts (pino)', () => {
  it('writes every event as one JSON line with its level, and never a secret', async () => {
    const file = join(temp.dir, 'logs', 'audit.log');
    const logger = createAuditLogger(file);
    logger.level = 'debug';
    const gate = createTokenGate({ onEvent: auditListener(logger), auditSuccess: true });
    const app = express();
    app.use('/rest', gate.protect(), (_req, res) => {
      res.json({ ok: true });
    });
    const { token, info } = await gate.tokens.create({ user: 'alice', name: 'laptop', scope: 'read' });
    await request(app).get('/rest/x').set('authorization', `Bearer ${token}`);
    await request(app).post('/rest/x').set('authorization', `Bearer ${token}`);
    await gate.tokens.update(info.id, { name: 'desk' }, { actor: 'alice' });
    await gate.tokens.revoke(info.id, { actor: 'admin', clientIp: '10.0.0.1' });
    await gate.close();
    // The destination writes asynchronously (as it should in a proxy): wait for the five lines.
    logger.flush();
    const read = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
    for (let i = 0; i < 200 && read().split('\n').length < 6; i++)
      await new Promise((r) => setTimeout(r, 10));
    const text = read();
    expect(text).not.toContain(token.slice(15));
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, 'token.created'],
      [20, 'auth.succeeded'],
      [40, 'auth.denied'],
      [30, 'token.updated'],
      [30, 'token.revoked'],
    ]);
    for (const line of lines) {
      expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(line.log).toBe('audit');
      expect(Object.keys(line).filter((k) => k === 'time')).toHaveLength(1);
    }
    expect(lines[2]).toMatchObject({
      type: 'auth.denied',
      code: 'SCOPE_INSUFFICIENT',
      method: 'POST',
      path: '/rest/x',
      tokenId: info.id,
      user: 'alice',
    });
    expect(lines[4]).toMatchObject({
      type: 'token.revoked',
      actor: 'admin',
      user: 'alice',
      tokenId: info.id,
      name: 'desk',
      clientIp: '10.0.0.1',
    });
  });
});

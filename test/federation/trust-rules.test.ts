import { describe, expect, it } from 'vitest';
import { compileClaimConditions } from '../../lib/federation/claim-conditions.js';
import { compileTrustRules, type FederationRule } from '../../lib/federation/trust-rules.js';

const base: FederationRule = {
  issuer: 'https://gitlab.example.com',
  audience: 'https://git.example.com',
  claims: { project_path: 'ops/deploy' },
  user: 'ci-deploy',
  scope: 'write',
};
const compile = (rule: Record<string, unknown>) => compileTrustRules([{ ...base, ...rule }]);

describe('federation trust rules', () => {
  it('fills in the defaults and canonicalises the restrictions', () => {
    const [rule] = compile({ resources: ['ops/deploy'], allowedIps: ['10.0.0.0/8'] });
    expect(rule).toMatchObject({
      name: 'federation[0]',
      ttlSeconds: 900,
      maxLiveTokens: 1_000,
      resources: ['OPS/deploy'],
      allowedIps: ['10.0.0.0/8'],
      allowInsecureLoopback: false,
    });
  });

  it.each([
    [
      { issuer: 'http://gitlab.example.com' },
      /`federation\[0\]\.issuer` must be an https: URL \(plain http only on a loopback/,
    ],
    [{ issuer: 'http://127.0.0.1:8080' }, /`federation\[0\]\.issuer` must be an https: URL/],
    [{ issuer: 'http://gitlab.example.com', allowInsecureLoopback: true }, /`federation\[0\]\.issuer`/],
    [{ allowInsecureLoopback: true }, /`federation\[0\]\.allowInsecureLoopback` is only for an http: issuer/],
    [{ issuer: 'https://user:pw@gitlab.example.com' }, /`federation\[0\]\.issuer`/],
    [{ issuer: 'https://gitlab.example.com/?tenant=1' }, /`federation\[0\]\.issuer`/],
    [{ issuer: 'gitlab.example.com' }, /`federation\[0\]\.issuer` must be an absolute URL/],
    [{ audience: '' }, /`federation\[0\]\.audience` must be a non-empty string/],
    [{ claims: {} }, /`federation\[0\]\.claims` must hold 1 to 50 conditions/],
    [{ claims: { project_path: '*' } }, /`federation\[0\]\.claims` must narrow something/],
    [{ claims: { project_path: ['ops/*', '*'] } }, /must narrow something/],
    [{ claims: { aud: 'x', sub: 'y' } }, /`federation\[0\]\.claims\.aud` cannot be a condition/],
    [{ claims: { sub: [] } }, /`federation\[0\]\.claims\.sub` must hold at least 1 entries/],
    [
      { claims: { sub: 7 } },
      /`federation\[0\]\.claims\.sub` must be a value, a pattern with `\*`, or a list of them/,
    ],
    [{ user: 'a:b' }, /`federation\[0\]\.user`: `user` must not contain a colon/],
    [{ scope: 'admin' }, /`federation\[0\]\.scope` must be one of "read", "write"/],
    [{ ttlSeconds: 3_601 }, /`federation\[0\]\.ttlSeconds` must be an integer from 10 to 3600/],
    [{ resources: ['not a project'] }, /`federation\[0\]`: `resources\[0\]`/],
    [{ allowedIps: ['10.0.0.1/8'] }, /`federation\[0\]`: `allowedIps\[0\]`/],
    [{ name: 'two words' }, /`federation\[0\]\.name` must match/],
    [
      { audiance: 'x' },
      /Unknown option `federation\[0\]\.audiance`; did you mean `federation\[0\]\.audience`\?/,
    ],
  ])('refuses %j at startup, naming the option', (change, message) => {
    expect(() => compile(change)).toThrow(TypeError);
    expect(() => compile(change)).toThrow(message);
  });

  it('requires the fields a rule cannot do without', () => {
    const { user: _user, ...withoutUser } = base;
    expect(() => compileTrustRules([withoutUser])).toThrow('`federation[0].user` is required');
    expect(() => compileTrustRules({})).toThrow('`federation` must be an array of trust rules');
  });

  it('refuses two rules of one name', () => {
    expect(() =>
      compileTrustRules([
        { ...base, name: 'ci' },
        { ...base, name: 'ci' },
      ]),
    ).toThrow('`federation[1].name` repeats the name of another rule: "ci"');
  });

  it('takes a loopback issuer over plain http only when told to', () => {
    expect(compile({ issuer: 'http://127.0.0.1:9000', allowInsecureLoopback: true })[0]!.issuer).toBe(
      'http://127.0.0.1:9000',
    );
    expect(
      compile({ issuer: 'http://[::1]:9000', allowInsecureLoopback: true })[0]!.allowInsecureLoopback,
    ).toBe(true);
  });
});

describe('claim conditions', () => {
  const matches = compileClaimConditions({
    project_path: 'ops/deploy',
    ref: ['main', 'release/*'],
    pipeline_source: ['push', 'web'],
  });
  const claims = { project_path: 'ops/deploy', ref: 'main', pipeline_source: 'push' };

  it('holds when every condition holds', () => {
    expect(matches(claims)).toBe(true);
    expect(matches({ ...claims, ref: 'release/2.1' })).toBe(true);
  });

  it('compares exactly: case, prefixes and patterns are not loosened', () => {
    expect(matches({ ...claims, project_path: 'OPS/deploy' })).toBe(false);
    expect(matches({ ...claims, project_path: 'ops/deploy2' })).toBe(false);
    expect(matches({ ...claims, ref: 'release' })).toBe(false);
    expect(matches({ ...claims, ref: 'xrelease/1' })).toBe(false);
    expect(matches({ ...claims, ref: 'main\n' })).toBe(false);
  });

  it('never matches a missing claim, or one that is not a string, number or boolean', () => {
    const { ref: _ref, ...withoutRef } = claims;
    expect(matches(withoutRef)).toBe(false);
    expect(matches({ ...claims, ref: ['main'] })).toBe(false);
    expect(matches({ ...claims, ref: null })).toBe(false);
    expect(compileClaimConditions({ project_id: '42' })({ project_id: 42 })).toBe(true);
    expect(compileClaimConditions({ protected: 'true' })({ protected: true })).toBe(true);
  });

  it('reads regular-expression characters literally', () => {
    const dotted = compileClaimConditions({ repository: 'acme/app.js' });
    expect(dotted({ repository: 'acme/appXjs' })).toBe(false);
    expect(dotted({ repository: 'acme/app.js' })).toBe(true);
  });
});

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

// V8's own verdict, from a process started with --allow-natives-syntax (tsx cannot parse `%`, so it
// goes through `new Function`): the request path reads a cached record's fields on every request,
// and a record in dictionary mode makes each of those reads a slow lookup (Redis, SQLite, PostgreSQL).
const probe = `
const { decodeRecord, encodeRecord, RECORD_FIELDS } = await import(${JSON.stringify(
  pathToFileURL(resolve('lib/stores/record-codec.ts')).href,
)});
const fast = new Function('o', 'return %HasFastProperties(o)');
const record = { id: 'abcdefghijk', user: 'alice', name: 'ci', scope: 'write', hash: 'h', createdAt: 1,
  createdBy: 'alice', expiresAt: 2, lastUsedAt: null, lastUsedIp: null, allowedIps: ['10.0.0.0/8'],
  requiredHeaders: null, resources: null, upstream: null, seal: 's', origin: null, rateLimit: null };
const out = [];
for (const sealed of [true, false]) {
  const hash = {};
  encodeRecord(record).forEach((value, i) => {
    if (value !== null && (sealed || RECORD_FIELDS[i].key !== 'seal')) hash[RECORD_FIELDS[i].key] = String(value);
  });
  const decoded = decodeRecord(record.id, { read: (f) => hash[f.key], blankIsNull: true, corrupt: () => new Error('corrupt') });
  out.push({ fast: fast(decoded), keys: Object.keys(decoded), decoded });
}
console.log(JSON.stringify(out));
`;

describe('decodeRecord', () => {
  it('builds records with fast properties, keys in field order, seal absent when none', () => {
    const out = execFileSync(
      process.execPath,
      ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', probe],
      { encoding: 'utf8' },
    );
    const [sealed, unsealed] = JSON.parse(out) as Array<{ fast: boolean; keys: string[]; decoded: object }>;
    const keys = [
      'id',
      'user',
      'name',
      'scope',
      'hash',
      'createdAt',
      'createdBy',
      'expiresAt',
      'lastUsedAt',
      'lastUsedIp',
      'allowedIps',
      'requiredHeaders',
      'resources',
      'upstream',
      'seal',
      'origin',
      'rateLimit',
    ];
    expect(sealed!.fast).toBe(true);
    expect(sealed!.keys).toEqual(keys);
    expect(sealed!.decoded).toMatchObject({
      user: 'alice',
      scope: 'write',
      expiresAt: 2,
      allowedIps: ['10.0.0.0/8'],
      seal: 's',
    });
    expect(unsealed!.fast).toBe(true);
    expect(unsealed!.keys).toEqual(keys.filter((key) => key !== 'seal'));
  });
});

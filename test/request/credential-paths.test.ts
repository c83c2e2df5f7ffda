import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCredentialEndpoint, normalizedSegments } from '../../lib/request/credential-paths.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 300);

/** Endpoints that create credentials, as Bitbucket documents them (`{v}` = any API version). */
const ENDPOINTS: Array<[method: string, path: string]> = [
  ['POST', '/rest/ssh/{v}/keys'],
  ['POST', '/rest/ssh/{v}/keys?user=alice'],
  ['POST', '/rest/keys/{v}/projects/PROJ/ssh'],
  ['POST', '/rest/keys/{v}/projects/PROJ/repos/repo/ssh'],
  ['POST', '/rest/gpg/{v}/keys'],
  ['PUT', '/rest/access-tokens/{v}/users/alice'],
  ['PUT', '/rest/access-tokens/{v}/projects/PROJ'],
  ['PUT', '/rest/access-tokens/{v}/projects/PROJ/repos/repo'],
  ['POST', '/rest/access-tokens/{v}/users/alice/12345'],
  ['POST', '/rest/oauth2/{v}/client'],
  ['PUT', '/rest/api/{v}/users/credentials'],
  ['PUT', '/rest/api/{v}/admin/users/credentials'],
  ['POST', '/rest/api/{v}/admin/users?name=eve&password=x&displayName=Eve&emailAddress=e@x'],
  ['POST', '/plugins/servlet/ssh/account/keys/add'],
  ['POST', '/plugins/servlet/access-tokens/add'],
  ['POST', '/account/password'],
];
const VERSIONS = ['1.0', 'latest', '2.0', 'LATEST', '1.0.0'];

/** What a request path may look like on the wire and still reach the same Bitbucket endpoint. */
const encodeChar = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
const spelling = fc.record({
  context: fc.constantFrom('', '/bitbucket', '/BitBucket'),
  version: fc.constantFrom(...VERSIONS),
  // per character: keep, upper-case, percent-encode (either hex case), double-encode
  chars: fc.array(fc.constantFrom('keep', 'upper', 'encode', 'encodeUpper', 'double'), { maxLength: 200 }),
  // per slash: keep, double it, add a `.` segment, a `x/..` detour, a `;param`, or a backslash
  slashes: fc.array(fc.constantFrom('keep', 'double', 'dot', 'detour', 'param', 'backslash', 'encoded'), {
    maxLength: 20,
  }),
  trailing: fc.boolean(),
});

function spell(
  template: string,
  choice: {
    context: string;
    version: string;
    chars: string[];
    slashes: string[];
    trailing: boolean;
  },
): string {
  const full = `${choice.context}${template.replace('{v}', choice.version)}`;
  const q = full.indexOf('?');
  const path = q < 0 ? full : full.slice(0, q);
  const query = q < 0 ? '' : full.slice(q);
  let out = '';
  let slash = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '/') {
      const how = choice.slashes[slash++] ?? 'keep';
      if (i === 0 && how !== 'double' && how !== 'dot' && how !== 'detour') out += '/';
      else if (how === 'double') out += '//';
      else if (how === 'dot') out += '/./';
      else if (how === 'detour') out += '/x/../';
      else if (how === 'param') out += i === 0 ? '/' : ';jsessionid=1/';
      else if (how === 'backslash') out += i === 0 ? '/' : '\\';
      else if (how === 'encoded') out += i === 0 ? '/' : '%2F';
      else out += '/';
      continue;
    }
    const how = choice.chars[i] ?? 'keep';
    if (how === 'upper') out += c.toUpperCase();
    else if (how === 'encode') out += encodeChar(c);
    else if (how === 'encodeUpper') out += encodeChar(c).toUpperCase();
    else if (how === 'double') out += `%25${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += c;
  }
  return `${out}${choice.trailing ? '/' : ''}${query}`;
}

describe('credential endpoints', () => {
  it.each(ENDPOINTS)('are found as Bitbucket documents them: %s %s', (method, template) => {
    for (const version of VERSIONS)
      expect(isCredentialEndpoint(method, template.replace('{v}', version), {})).toBe(true);
  });

  it('are found in every spelling that Bitbucket could route to them (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ENDPOINTS), spelling, ([method, template], choice) => {
        const url = spell(template, choice);
        expect(isCredentialEndpoint(method, url, {}), url).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it('answer the same on the quick path as after the full normalisation (fast-check)', () => {
    const word = fc.constantFrom(
      ...['rest', 'api', '1.0', 'latest', 'ssh', 'keys', 'gpg', 'access-tokens', 'oauth2', 'admin'],
      ...['users', 'credentials', 'plugins', 'servlet', 'account', 'password', 'projects', 'repos', 'x'],
    );
    const cased = fc.tuple(word, fc.boolean()).map(([w, upper]) => (upper ? w.toUpperCase() : w));
    fc.assert(
      fc.property(
        fc.array(cased, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.constantFrom('GET', 'POST'),
        (words, at, method) => {
          const plain = `/${words.join('/')}`;
          // The same path with one letter percent-encoded takes the full normalisation.
          const i = 1 + (at % (plain.length - 1));
          const encoded =
            plain[i] === '/'
              ? `${plain}/`
              : `${plain.slice(0, i)}%${plain.charCodeAt(i).toString(16)}${plain.slice(i + 1)}`;
          expect(isCredentialEndpoint(method, encoded, {}), `${plain} vs ${encoded}`).toBe(
            isCredentialEndpoint(method, plain, {}),
          );
        },
      ),
      { numRuns: runs },
    );
  });

  it('include creating a user only when the request writes (any method override counts)', () => {
    expect(isCredentialEndpoint('GET', '/rest/api/latest/admin/users', {})).toBe(false);
    expect(
      isCredentialEndpoint('GET', '/rest/api/latest/admin/users', { 'x-http-method-override': 'POST' }),
    ).toBe(true);
    expect(isCredentialEndpoint('GET', '/rest/api/latest/admin/users?_method=POST', {})).toBe(true);
    expect(isCredentialEndpoint('DELETE', '/rest/api/latest/admin/users?name=eve', {})).toBe(true);
  });

  it.each([
    '/rest/api/1.0/projects/PROJ/repos/repo/commits',
    '/rest/api/latest/users/alice',
    '/rest/api/1.0/admin/users/more-members?context=x',
    '/scm/proj/repo.git/info/refs?service=git-upload-pack',
    '/rest/api/1.0/projects/KEYS/repos/ssh-tools/browse/README.md',
    '/rest/api/1.0/projects/P/repos/r/browse/docs/password-policy.md',
    '/projects/P/repos/access-tokens/browse',
  ])('leave ordinary paths alone: %s', (path) => {
    expect(isCredentialEndpoint('POST', path, {})).toBe(false);
  });

  it('normalise paths as widely as a server could read them', () => {
    expect(normalizedSegments('/REST//./api/x/../%2573sh;a=b\\keys/')).toEqual([
      'rest',
      'api',
      'ssh',
      'keys',
    ]);
    expect(normalizedSegments('/rest/%C0%AFssh')).toEqual(['rest', 'à¯ssh']); // invalid UTF-8: byte by byte
  });
});

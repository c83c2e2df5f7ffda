import { escapeRegExp } from '../internal/regexp.js';

/**
 * A rule's claim conditions: claim name → an exact value, a list of values (any one), or a
 * pattern in which `*` stands for any run of characters (`refs/heads/release/*`).
 */
export type ClaimConditions = Readonly<Record<string, string | readonly string[]>>;

/** Claims a condition may not name: the exchange checks them itself. */
export const RESERVED_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']);

type ValueTest = (value: string) => boolean;

function valueTest(condition: string): ValueTest {
  if (!condition.includes('*')) return (value) => value === condition;
  const regex = new RegExp(`^${condition.split('*').map(escapeRegExp).join('.*')}$`, 's');
  return (value) => regex.test(value);
}

/** True for a condition any value meets (`*`, `**`): one that narrows nothing. */
export function matchesAnything(condition: string | readonly string[]): boolean {
  const values = typeof condition === 'string' ? [condition] : condition;
  return values.some((value) => /^\**$/.test(value));
}

/**
 * Compiles conditions (already validated) into one test of a verified token's claims. Strings
 * compare exactly; numbers and booleans by their JSON text; anything else (objects, arrays,
 * null, a missing claim) never matches.
 */
export function compileClaimConditions(
  conditions: ClaimConditions,
): (claims: Record<string, unknown>) => boolean {
  const tests = Object.entries(conditions).map(([name, condition]) => {
    const alternatives = (typeof condition === 'string' ? [condition] : condition).map(valueTest);
    return { name, alternatives };
  });
  return (claims) =>
    tests.every(({ name, alternatives }) => {
      if (!Object.hasOwn(claims, name)) return false;
      const raw = claims[name];
      const value =
        typeof raw === 'string'
          ? raw
          : typeof raw === 'number' || typeof raw === 'boolean'
            ? String(raw)
            : null;
      return value !== null && alternatives.some((test) => test(value));
    });
}

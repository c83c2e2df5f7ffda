import { HTTP_TOKEN } from './regexp.js';

/**
 * The one place options are checked. Each public factory describes its options as a `Shape`
 * whose keys the compiler holds to the options type (a key missing from the shape, or one the
 * type does not have, fails to compile), so the key lists cannot drift. A bad value throws a
 * TypeError naming the option by its full path; an unknown key is refused with the closest
 * known name ("did you mean …").
 */

/** Checks one value; throws a TypeError naming `path` when it is wrong. */
export type Check = (value: unknown, path: string) => void;

/** One check per key of `T`, optional keys included. */
export type Shape<T> = { [K in keyof Required<T>]: Check };

const quote = (path: string) => `\`${path}\``;

export function fail(path: string, expectation: string): never {
  throw new TypeError(`${quote(path)} ${expectation}`);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The known name closest to a mistyped one, or undefined when none is close. */
export function closest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === lower ? 0 : distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

/** A plain object whose keys are those of `shape`; absent and `undefined` keys are not checked. */
export function object<T>(shape: Shape<T>, what = 'an options object'): Check {
  const known = Object.keys(shape);
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      fail(path || 'options', `must be ${what}`);
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(shape, key)) {
        const suggestion = closest(key, known);
        throw new TypeError(
          `Unknown option ${quote(join(path, key))}${suggestion === undefined ? '' : `; did you mean ${quote(join(path, suggestion))}?`}`,
        );
      }
    }
    for (const key of known) {
      const field = (value as Record<string, unknown>)[key];
      if (field !== undefined) (shape as Record<string, Check>)[key]!(field, join(path, key));
    }
  };
}

/**
 * Checks `value` against `shape` at startup.
 * @example validateOptions(options, GATE_OPTIONS) // throws "Unknown option `expiry.maxdays`; did you mean `expiry.maxDays`?"
 */
export function validateOptions<T>(value: unknown, shape: Shape<T>, path = ''): asserts value is T {
  object(shape)(value ?? {}, path);
}

export const boolean: Check = (value, path) => {
  if (typeof value !== 'boolean') fail(path, 'must be true or false');
};

export const func: Check = (value, path) => {
  if (typeof value !== 'function') fail(path, 'must be a function');
};

/** Anything: for values a later, more specific check (or the user's own type) judges. */
export const any: Check = () => {};

export function string(options: { minLength?: number; maxLength?: number; pattern?: RegExp } = {}): Check {
  const { minLength = 1, maxLength = Number.POSITIVE_INFINITY, pattern } = options;
  return (value, path) => {
    if (typeof value !== 'string' || value.length < minLength || value.length > maxLength)
      fail(path, minLength > 0 ? 'must be a non-empty string' : 'must be a string');
    if (pattern !== undefined && !pattern.test(value)) fail(path, `must match ${pattern}`);
  };
}

/** A whole number from `min` (default 1) to `max`; NaN, Infinity and fractions are refused. */
export function integer(min = 1, max = Number.MAX_SAFE_INTEGER): Check {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(
        path,
        max === Number.MAX_SAFE_INTEGER
          ? min === 1
            ? 'must be a positive integer'
            : `must be an integer of at least ${min}`
          : `must be an integer from ${min} to ${max}`,
      );
    }
  };
}

export function oneOf(values: readonly unknown[]): Check {
  return (value, path) => {
    if (!values.includes(value))
      fail(path, `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`);
  };
}

/** An array whose items each pass `item`, named `path[i]`. */
export function array(item: Check, options: { minLength?: number } = {}): Check {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, 'must be an array');
    if (value.length < (options.minLength ?? 0))
      fail(path, `must hold at least ${options.minLength} entries`);
    for (const [i, entry] of value.entries()) item(entry, `${path}[${i}]`);
  };
}

/** Any one of several checks; the message of the last one is reported. */
export function either(...checks: Check[]): Check {
  return (value, path) => {
    let last: unknown;
    for (const check of checks) {
      try {
        check(value, path);
        return;
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
}

/** An object of arbitrary keys whose values each pass `item`. */
export function record(item: Check): Check {
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
    for (const [key, entry] of Object.entries(value)) item(entry, `${path}.${key}`);
  };
}

/** An object that has the named methods (a store, a client). */
export function withMethods(methods: readonly string[], what: string): Check {
  return (value, path) => {
    const missing = methods.filter(
      (m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function',
    );
    if (missing.length > 0) fail(path, `must be ${what} (missing ${missing.join(', ')})`);
  };
}

const HEADER_NAME = HTTP_TOKEN;

/** An HTTP header name (RFC 9110 token). */
export const headerName: Check = (value, path) => {
  if (typeof value !== 'string' || !HEADER_NAME.test(value))
    fail(path, `is not a header name: ${JSON.stringify(value)}`);
};

export function isHeaderName(value: string): boolean {
  return HEADER_NAME.test(value);
}

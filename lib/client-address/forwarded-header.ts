/**
 * RFC 7239 `Forwarded`, parsed by its grammar: elements separated by commas, pairs by
 * semicolons, each parameter at most once per element, values a token or a quoted string
 * (opaque: a `for=` or a comma inside quotes is text, not structure). Anything that does not
 * follow the grammar, or is ambiguous, yields null: the client address is then unknown.
 */

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const QDTEXT = /[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]/;
const QUOTED_PAIR = /[\t \x21-\x7e\x80-\xff]/;

type Element = Map<string, string>;

/** The elements of a `Forwarded` value, nearest proxy last; null when it is malformed. */
export function parseForwarded(value: string): Element[] | null {
  const elements: Element[] = [];
  let element: Element = new Map();
  let i = 0;
  const skipSpace = () => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  const token = (): string => {
    const start = i;
    while (i < value.length && TCHAR.test(value[i]!)) i++;
    return value.slice(start, i);
  };
  const quoted = (): string | null => {
    i++; // opening quote
    let out = '';
    while (i < value.length) {
      const c = value[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const next = value[i + 1];
        if (next === undefined || !QUOTED_PAIR.test(next)) return null;
        out += next;
        i += 2;
      } else if (QDTEXT.test(c)) {
        out += c;
        i++;
      } else {
        return null;
      }
    }
    return null; // unterminated
  };
  for (;;) {
    skipSpace();
    if (i >= value.length || value[i] === ',' || value[i] === ';') {
      // An empty pair or element: allowed by the list grammar, carries nothing.
    } else {
      const name = token().toLowerCase();
      if (name === '' || value[i] !== '=') return null;
      i++;
      const parsed = value[i] === '"' ? quoted() : token();
      if (parsed === null || (parsed === '' && value[i - 1] !== '"')) return null;
      if (element.has(name)) return null; // RFC 7239 §4: each parameter once per element
      element.set(name, parsed);
      skipSpace();
    }
    if (i >= value.length) break;
    if (value[i] === ';') {
      i++;
    } else if (value[i] === ',') {
      i++;
      if (element.size > 0) elements.push(element);
      element = new Map();
    } else {
      return null;
    }
  }
  if (element.size > 0) elements.push(element);
  return elements;
}

/**
 * The address part of a `for=` node name: `192.0.2.43`, `192.0.2.43:80`, `[2001:db8::1]`,
 * `[2001:db8::1]:4711`. `unknown`, obfuscated names and anything else give null.
 */
export function forwardedNodeAddress(node: string): string | null {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(node);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?$/.exec(node);
  return v4 ? v4[1]! : null;
}

/**
 * The `for=` address of every element, nearest proxy last (null for an element without a usable
 * one); null when the header does not parse at all.
 */
export function forwardedForChain(value: string): Array<string | null> | null {
  const elements = parseForwarded(value);
  if (elements === null) return null;
  return elements.map((element) => {
    const node = element.get('for');
    return node === undefined ? null : forwardedNodeAddress(node);
  });
}

/**
 * True when some object in a JSON text (already known to parse) names a member twice.
 * `JSON.parse` keeps the last of them silently; another parser may keep the first, so a body
 * that repeats a name can say two things and is never judged.
 */
export function hasDuplicateMembers(text: string): boolean {
  // One entry per open object (its member names) or array (null).
  const stack: Array<Set<string> | null> = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (expectName) {
        const names = stack[stack.length - 1]!;
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === '{') {
      stack.push(new Set());
      expectName = true;
    } else if (c === '[') {
      stack.push(null);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectName = stack[stack.length - 1] instanceof Set;
    }
  }
  return false;
}

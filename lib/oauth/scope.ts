import type { Scope } from '../model.js';

/**
 * The `scope` parameter: absent (null: the client did not say), `read`, or `write` (`read
 * write` is write). Anything else is undefined, answered with `invalid_scope`.
 */
export function parseScope(value: string | null): Scope | null | undefined {
  if (value === null || value.trim() === '') return null;
  const parts = new Set(value.trim().split(/ +/));
  for (const part of parts) if (part !== 'read' && part !== 'write') return undefined;
  return parts.has('write') ? 'write' : 'read';
}

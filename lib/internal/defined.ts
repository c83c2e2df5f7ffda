/** `T` with every key optional and no `undefined` value (what `exactOptionalPropertyTypes` wants). */
export type Defined<T> = { [K in keyof T]?: Exclude<T[K], undefined> };

/**
 * The fields of `fields` that are set: options handed on to an inner call without writing
 * `...(x === undefined ? {} : { x })` for each one.
 * @example new TokenService({ store, ...defined({ cache: options.cache, storeTimeoutMs }) })
 */
export function defined<T extends object>(fields: T): Defined<T> {
  const out: Record<string, unknown> = {};
  for (const key in fields) if (fields[key] !== undefined) out[key] = fields[key];
  return out as Defined<T>;
}

import { createRequire } from 'node:module';

/** A require that resolves from this package's own location (tsup shims `import.meta.url` in the CommonJS build). */
function localRequire(): NodeJS.Require {
  return createRequire(import.meta.url);
}

function notInstalled(err: unknown, name: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
    String((err as Error).message).includes(`'${name}`)
  );
}

/**
 * Loads an optional peer dependency when a feature needs it, so the package works without it.
 * A missing package is an Error that says what to install.
 */
export function requireOptional<T>(name: string, feature: string): T {
  try {
    return localRequire()(name) as T;
  } catch (err) {
    if (notInstalled(err, name))
      throw new Error(`${feature} needs the \`${name}\` package: npm install ${name}`, { cause: err });
    throw err;
  }
}

/** The version of an installed package, or undefined when it cannot be found. */
export function installedVersion(name: string): string | undefined {
  try {
    return (localRequire()(`${name}/package.json`) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

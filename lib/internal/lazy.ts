/**
 * A value made by an async `load` when first asked for (a module imported on first use): one
 * load shared by everyone waiting, kept once made, and tried again on the next ask after a
 * failure (which each asker sees).
 */
export interface Lazy<T> {
  /** The value, loading it if need be. */
  get(): Promise<T>;
  /** The value if it is already there, for callers that can skip a promise. */
  readonly loaded: T | undefined;
}

export function lazy<T>(load: () => Promise<T>): Lazy<T> {
  let loaded: T | undefined;
  let loading: Promise<T> | undefined;
  return {
    get() {
      loading ??= load().then(
        (value) => (loaded = value),
        (err: unknown) => {
          loading = undefined;
          throw err;
        },
      );
      return loading;
    },
    get loaded() {
      return loaded;
    },
  };
}

/**
 * Runs `use` on the value once it is there, as a handler's body: a failed load, and anything
 * `use` throws, go to `next` (Express's error handling) instead of becoming an unhandled rejection.
 */
export function whenLoaded<T>(value: Lazy<T>, next: (err: unknown) => void, use: (value: T) => void): void {
  const ready = value.loaded;
  if (ready !== undefined) {
    use(ready);
    return;
  }
  value.get().then(use).catch(next);
}

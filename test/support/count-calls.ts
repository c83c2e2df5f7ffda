/** Wraps an object so that every method call is recorded by name (a real object, not a mock). */
export function countCalls<T extends object>(
  target: T,
): { target: T; calls: string[]; count(method: string): number } {
  const calls: string[] = [];
  const wrapped = new Proxy(target, {
    get(object, key, receiver) {
      const value = Reflect.get(object, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(key));
        return value.apply(object, args);
      };
    },
  });
  return { target: wrapped, calls, count: (method) => calls.filter((c) => c === method).length };
}

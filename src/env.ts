/**
 * Reading the environment in either runtime, without throwing when Deno
 * was not given `--allow-env`.
 *
 * @module
 */

/** An environment variable's value; undefined when unset or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    const deno = Reflect.get(globalThis, "Deno") as
      | { env: { get(n: string): string | undefined } }
      | undefined;
    if (deno && !Reflect.get(globalThis, "Bun")) return deno.env.get(name);
    const proc = Reflect.get(globalThis, "process") as
      | { env: Record<string, string | undefined> }
      | undefined;
    return proc?.env[name];
  } catch {
    return undefined;
  }
}

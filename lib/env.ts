/**
 * Environment access that works in Deno, in Deno without `--allow-env`, and
 * in a browser (where there is no environment): a missing permission or a
 * missing `Deno` global reads as "unset".
 *
 * @example
 * ```ts
 * import { getEnv } from "./env.ts";
 * const backend = getEnv("DIFFUSERS_BACKEND") ?? "auto";
 * ```
 *
 * @module
 */

interface DenoEnvLike {
  env: { get(name: string): string | undefined };
}

/**
 * Returns the environment variable `name`, or `undefined` when it is unset,
 * unreadable, or there is no environment (browser).
 *
 * @example
 * ```ts
 * import { getEnv } from "./env.ts";
 * console.log(getEnv("HOME") !== undefined);
 * ```
 */
export function getEnv(name: string): string | undefined {
  const deno = (globalThis as { Deno?: DenoEnvLike }).Deno;
  if (!deno) return undefined;
  try {
    const value = deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

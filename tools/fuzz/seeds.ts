/**
 * Where the fuzzer's seed inputs come from: the project's reference
 * fixtures and real Hub configs under the shared folder (`../shared`, or
 * `DIFFUSERS_SHARED`), read once per worker.
 *
 * @example
 * ```ts
 * import { findFiles, SHARED_DIR } from "./seeds.ts";
 * const configs = await findFiles(`${SHARED_DIR}/configs`, /(^|\/)config\.json$/);
 * console.log(configs.length > 0);
 * ```
 *
 * @module
 */

import { getEnv } from "../../lib/env.ts";
import type { Rng } from "./rng.ts";

/**
 * The shared reference folder (override with `DIFFUSERS_SHARED`).
 *
 * @example
 * ```ts
 * import { SHARED_DIR } from "./seeds.ts";
 * console.log(SHARED_DIR.endsWith("shared"));
 * ```
 */
export const SHARED_DIR: string = getEnv("DIFFUSERS_SHARED") ??
  new URL("../../../shared", import.meta.url).pathname;

/**
 * The reference fixtures inside {@link SHARED_DIR}.
 *
 * @example
 * ```ts
 * import { FIXTURES_DIR } from "./seeds.ts";
 * console.log(`${FIXTURES_DIR}/pipelines/ddpm_tiny`);
 * ```
 */
export const FIXTURES_DIR: string = `${SHARED_DIR}/fixtures`;

/**
 * Every file under `dir` whose path matches `pattern`, sorted (so seed order,
 * and with it every mutation, is the same on every machine).
 *
 * @example
 * ```ts
 * import { findFiles, FIXTURES_DIR } from "./seeds.ts";
 * const indexes = await findFiles(`${FIXTURES_DIR}/pipelines`, /model_index\.json$/);
 * ```
 */
export async function findFiles(dir: string, pattern: RegExp): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await findFiles(path, pattern));
    else if (entry.isFile && pattern.test(path)) out.push(path);
  }
  return out.sort();
}

/**
 * Reads files as bytes, in the order given.
 *
 * @example
 * ```ts
 * import { readAll, FIXTURES_DIR } from "./seeds.ts";
 * const [bytes] = await readAll([`${FIXTURES_DIR}/pipelines/ddpm_tiny/model_index.json`]);
 * ```
 */
export function readAll(paths: readonly string[]): Promise<Uint8Array[]> {
  return Promise.all(paths.map((p) => Deno.readFile(p)));
}

/**
 * Two seeds for one input: the one to mutate and a splice partner.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { pickTwo } from "./seeds.ts";
 * const [a, b] = pickTwo(Rng.derive(1), ["x", "y"]);
 * ```
 */
export function pickTwo<T>(rng: Rng, seeds: readonly T[]): [T, T] {
  return [rng.pick(seeds), rng.pick(seeds)];
}

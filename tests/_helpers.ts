/**
 * Shared test helpers: where the reference fixtures live, how to read them,
 * and the relative-error check every numeric test uses
 * (`max|a - b| / max|ref|`, as the project's quality bar defines it).
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseSafetensors, type SafetensorsFile } from "../lib/weights/safetensors.ts";
import { type ConfigDict, parseConfigJson } from "../lib/config.ts";
import { type BackendName, ready } from "../lib/backend.ts";

/**
 * The backend every test file runs on: WASM unless `DIFFUSERS_TEST_BACKEND`
 * names another. Started here so importing the helpers is enough.
 */
export const TEST_BACKEND: BackendName = await ready(
  (Deno.env.get("DIFFUSERS_TEST_BACKEND") as BackendName | undefined) ?? "wasm",
);

/** Root of `../shared` (override with `DIFFUSERS_SHARED`). */
export const SHARED_DIR: string = Deno.env.get("DIFFUSERS_SHARED") ??
  new URL("../../shared", import.meta.url).pathname;

/** Root of the reference fixtures. */
export const FIXTURES_DIR: string = `${SHARED_DIR}/fixtures`;

/** Reads and parses a safetensors fixture (path relative to the fixtures root, or absolute). */
export async function readTensors(path: string): Promise<SafetensorsFile> {
  const full = path.startsWith("/") ? path : `${FIXTURES_DIR}/${path}`;
  return parseSafetensors(await Deno.readFile(full), full);
}

/** Reads a JSON fixture the way Python wrote it (NaN / Infinity tokens allowed). */
export async function readJson<T = ConfigDict>(path: string): Promise<T> {
  const full = path.startsWith("/") ? path : `${FIXTURES_DIR}/${path}`;
  return parseConfigJson(await Deno.readTextFile(full), full) as T;
}

/** `max|a - b| / max|ref|` (0 when both are all zeros). Lengths must match. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, "length mismatch");
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= diff)) diff = d; // also propagates NaN
    ref = Math.max(ref, Math.abs(expected[i]!));
  }
  return ref === 0 ? diff : diff / ref;
}

/** Asserts `relError(actual, expected) <= tol`, naming `label` and the error on failure. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  label = "value",
): void {
  const err = relError(actual, expected);
  assert(err <= tol, `${label}: relative error ${err.toExponential(3)} > ${tol}`);
}

/** Asserts that `fn` throws (or rejects with) an instance of `type` whose message matches `pattern`. */
export async function assertThrowsTyped(
  fn: () => unknown,
  type: abstract new (...args: never[]) => Error,
  pattern?: RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof type)) {
      throw new assert.AssertionError({
        message: `expected ${type.name}, got ${(e as Error)?.constructor?.name}: ${e}`,
      });
    }
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

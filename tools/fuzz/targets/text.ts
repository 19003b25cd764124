/**
 * Helpers shared by the text-file targets: decoding bytes the way
 * `Deno.readTextFile` does (invalid UTF-8 becomes U+FFFD), and mutating a
 * JSON text either as bytes or as a JSON tree.
 *
 * @example
 * ```ts
 * import { Rng } from "../rng.ts";
 * import { mutateJsonFile } from "./text.ts";
 * const seed = new TextEncoder().encode('{"a": 1}');
 * console.log(mutateJsonFile(Rng.derive(1), seed, seed).length > 0);
 * ```
 *
 * @module
 */

import { mutateBytes } from "../bytes.ts";
import { mutateJsonText } from "../json.ts";
import type { Rng } from "../rng.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Text as `Deno.readTextFile` would give it.
 *
 * @example
 * ```ts
 * import { decodeText } from "./text.ts";
 * console.log(decodeText(new Uint8Array([0xff]))); // "\ufffd"
 * ```
 */
export function decodeText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * A mutated JSON file: 60% JSON-tree edits, 40% byte edits.
 *
 * @example
 * ```ts
 * import { Rng } from "../rng.ts";
 * import { mutateJsonFile } from "./text.ts";
 * const a = new TextEncoder().encode("[1]");
 * console.log(mutateJsonFile(Rng.derive(2), a, a) instanceof Uint8Array); // true
 * ```
 */
export function mutateJsonFile(rng: Rng, seed: Uint8Array, donor: Uint8Array): Uint8Array {
  if (rng.chance(0.4)) return mutateBytes(rng, seed, donor);
  return encoder.encode(mutateJsonText(rng, decodeText(seed), decodeText(donor)));
}

/**
 * Every fuzz target, by name, in the order a full run visits them.
 *
 * @example
 * ```ts
 * import { TARGETS } from "./mod.ts";
 * console.log([...TARGETS.keys()]);
 * ```
 *
 * @module
 */

import type { FuzzTarget } from "../target.ts";
import { configTarget } from "./config.ts";
import { modelIndexTarget } from "./model_index.ts";
import { pngTarget } from "./png.ts";
import { safetensorsTarget } from "./safetensors.ts";
import { tokenizerTarget } from "./tokenizer.ts";
import { torchPickleTarget } from "./torch_pickle.ts";
import { torchZipTarget } from "./torch_zip.ts";

/**
 * The targets by parser name.
 *
 * @example
 * ```ts
 * import { TARGETS } from "./mod.ts";
 * console.log(TARGETS.get("png")?.ext); // "png"
 * ```
 */
export const TARGETS: ReadonlyMap<string, FuzzTarget<unknown>> = new Map(
  ([
    safetensorsTarget,
    torchZipTarget,
    torchPickleTarget,
    configTarget,
    modelIndexTarget,
    tokenizerTarget,
    pngTarget,
  ] as FuzzTarget<unknown>[]).map((t) => [t.name, t]),
);

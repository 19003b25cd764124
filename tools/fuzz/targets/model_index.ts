/**
 * Fuzz target: `model_index.json`, parsed with `parseConfigJson` and read
 * with `parseModelIndex`, and its pipeline class looked up as
 * `DiffusionPipeline.fromPretrained` does. Seeds: the fixture pipelines'
 * and the real Hub repos' indexes.
 *
 * @example
 * ```ts
 * import { modelIndexTarget } from "./model_index.ts";
 * const seeds = await modelIndexTarget.seeds();
 * await modelIndexTarget.run(seeds[0]!);
 * ```
 *
 * @module
 */

import { parseConfigJson } from "../../../lib/config.ts";
import { parseModelIndex } from "../../../lib/pipelines/diffusion_pipeline.ts";
import { pipelineClass } from "../../../lib/pipelines/pipeline.ts";
import type { Rng } from "../rng.ts";
import { findFiles, FIXTURES_DIR, pickTwo, readAll, SHARED_DIR } from "../seeds.ts";
import { BASE_BUDGET, type FuzzTarget } from "../target.ts";
import { decodeText, mutateJsonFile } from "./text.ts";

function run(input: Uint8Array): Promise<void> {
  const file = "model_index.json";
  const index = parseModelIndex(parseConfigJson(decodeText(input), file), file);
  pipelineClass(index.className, file);
  return Promise.resolve();
}

/**
 * The model_index.json target.
 *
 * @example
 * ```ts
 * import { modelIndexTarget } from "./model_index.ts";
 * console.log(modelIndexTarget.name);
 * ```
 */
export const modelIndexTarget: FuzzTarget<Uint8Array> = {
  name: "model_index",
  ext: "json",
  async seeds() {
    const pattern = /model_index(\.reconstructed)?\.json$/;
    return readAll([
      ...await findFiles(`${FIXTURES_DIR}/pipelines`, pattern),
      ...await findFiles(`${SHARED_DIR}/configs`, pattern),
    ]);
  },
  mutate: (rng: Rng, seeds: readonly Uint8Array[]) => mutateJsonFile(rng, ...pickTwo(rng, seeds)),
  run,
  allocationBudget: (n) => BASE_BUDGET + 64 * n,
};

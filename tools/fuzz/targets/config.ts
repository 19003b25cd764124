/**
 * Fuzz target: `config.json` and `scheduler_config.json`. Each input is
 * parsed with `parseConfigJson` and loaded with `loadConfig` against every
 * real spec (UNet2DModel and the ten schedulers), then written back as
 * `save_config` would; a scheduler config then builds its scheduler and
 * sets 4 inference steps. Seeds: every config of the fixtures and of the real
 * Hub repos under `shared/configs`.
 *
 * @example
 * ```ts
 * import { configTarget } from "./config.ts";
 * const seeds = await configTarget.seeds();
 * await configTarget.run(seeds[0]!);
 * ```
 *
 * @module
 */

import {
  type ConfigDict,
  type ConfigSpec,
  configToJSON,
  loadConfig,
  parseConfigJson,
  stringifyConfigJson,
} from "../../../lib/config.ts";
import { DiffusersError } from "../../../lib/errors.ts";
import { UNet2DModel } from "../../../models/unet_2d.ts";
import { schedulerFromConfig, SCHEDULERS } from "../../../schedulers/registry.ts";
import type { Rng } from "../rng.ts";
import { findFiles, FIXTURES_DIR, pickTwo, readAll, SHARED_DIR } from "../seeds.ts";
import { BASE_BUDGET, type FuzzTarget } from "../target.ts";
import { decodeText, mutateJsonFile } from "./text.ts";

function isSpec(v: unknown): v is ConfigSpec<ConfigDict> {
  const spec = v as Partial<ConfigSpec<ConfigDict>> | undefined;
  return typeof spec?.className === "string" && typeof spec.kinds === "object";
}

/** Every real config spec: the UNet's and each scheduler's. */
const SPECS: readonly ConfigSpec<ConfigDict>[] = [
  UNet2DModel.spec as unknown as ConfigSpec<ConfigDict>,
  ...[...SCHEDULERS.values()].map((c) => c.spec).filter(isSpec),
];

function run(input: Uint8Array): Promise<void> {
  const file = "config.json";
  const json = parseConfigJson(decodeText(input), file);
  let firstTyped: unknown;
  // Every spec sees the input; one spec refusing it must not hide another's crash.
  for (const spec of SPECS) {
    try {
      stringifyConfigJson(configToJSON(spec, loadConfig(spec, json, {}, file)));
    } catch (e) {
      if (!(e instanceof DiffusersError)) throw e;
      firstTyped ??= e;
    }
  }
  if (firstTyped !== undefined) throw firstTyped;
  // A scheduler config must also build its scheduler: tables sized by the config are made here.
  if (typeof json._class_name === "string" && SCHEDULERS.has(json._class_name)) {
    const scheduler = schedulerFromConfig(json);
    scheduler.setTimesteps(4);
    scheduler.dispose();
  }
  return Promise.resolve();
}

/**
 * The config target.
 *
 * @example
 * ```ts
 * import { configTarget } from "./config.ts";
 * console.log(configTarget.name);
 * ```
 */
export const configTarget: FuzzTarget<Uint8Array> = {
  name: "config",
  ext: "json",
  async seeds() {
    const pattern = /(^|\/)(config|scheduler_config)\.json$/;
    const paths = [
      ...await findFiles(`${FIXTURES_DIR}/pipelines`, pattern),
      ...await findFiles(`${SHARED_DIR}/configs`, pattern),
    ];
    return readAll(paths);
  },
  mutate: (rng: Rng, seeds: readonly Uint8Array[]) => mutateJsonFile(rng, ...pickTwo(rng, seeds)),
  run,
  // JSON parsing and frozen copies of the config, per spec.
  allocationBudget: (n) => BASE_BUDGET + 64 * n,
};

/**
 * Structural checks shared by model constructors: sizes that must be
 * positive integers and the transformers `model_type` a config must name.
 * Each failure is a {@link ConfigError} naming the key.
 *
 * @example
 * ```ts
 * import { checkModelType, checkPositive } from "./config_checks.ts";
 * const config = { model_type: "ldmbert", d_model: 32, encoder_layers: 2 };
 * checkModelType(config, "ldmbert", "LDMBertModel");
 * checkPositive(config, ["d_model", "encoder_layers"]);
 * ```
 *
 * @module
 */

import type { ConfigValue } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";

/**
 * Throws unless every named key holds a number > 0.
 *
 * @example
 * ```ts
 * import { checkPositive } from "./config_checks.ts";
 * checkPositive({ hidden_size: 0 }, ["hidden_size"]); // ConfigError: hidden_size: must be positive, got 0
 * ```
 */
export function checkPositive(
  config: Readonly<Record<string, ConfigValue>>,
  keys: readonly string[],
): void {
  for (const key of keys) {
    const value = config[key];
    if (typeof value !== "number" || !(value > 0)) {
      throw new ConfigError(`must be positive, got ${JSON.stringify(value)}`, { key });
    }
  }
}

/**
 * Throws when `model_type` is not `expected` (a config for another
 * architecture, e.g. a full CLIP config given to the text model).
 *
 * @example
 * ```ts
 * import { checkModelType } from "./config_checks.ts";
 * checkModelType({ model_type: "clip" }, "clip_text_model", "CLIPTextModel"); // throws ConfigError
 * ```
 */
export function checkModelType(
  config: Readonly<Record<string, ConfigValue>>,
  expected: string,
  className: string,
): void {
  if (config.model_type !== expected) {
    throw new ConfigError(
      `${className} needs model_type ${JSON.stringify(expected)}, got ${
        JSON.stringify(config.model_type)
      }`,
      { key: "model_type" },
    );
  }
}

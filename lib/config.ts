/**
 * Configs with diffusers' ConfigMixin semantics.
 *
 * Each class declares its defaults in a {@link ConfigSpec}. `loadConfig`
 * gives defaults + the keys of the given JSON + overrides (diffusers'
 * "load with a modified config"), checks every known key's type (a typed
 * {@link ConfigError} names the key and file), keeps unknown and legacy keys
 * (reported once at debug level) so a Hub config round-trips, and freezes
 * the result. {@link configToJSON} writes `_class_name` and
 * `_diffusers_version` back, keys sorted, like `save_config`.
 *
 * Python's `json` writes the bare tokens `Infinity`, `-Infinity` and `NaN`
 * (real scheduler configs contain `-Infinity`); {@link parseConfigJson} and
 * {@link stringifyConfigJson} read and write them.
 *
 * @example
 * ```ts
 * import { defineConfig, loadConfig, configToJSON } from "./config.ts";
 * const spec = defineConfig("MyScheduler", "scheduler_config.json", {
 *   num_train_timesteps: 1000,
 *   trained_betas: null,
 * }, { trained_betas: ["number[]", "null"] });
 * const config = loadConfig(spec, { num_train_timesteps: 500 }, { trained_betas: [0.1] });
 * console.log(config.num_train_timesteps, configToJSON(spec, config)._class_name); // 500 "MyScheduler"
 * ```
 *
 * @module
 */

import { ConfigError } from "./errors.ts";
import { logger } from "./log.ts";

/** A JSON value, with the non-finite numbers Python's json allows. */
export type ConfigValue =
  | null
  | boolean
  | number
  | string
  | ConfigValue[]
  | { [key: string]: ConfigValue };

/** A config as a JSON object. */
export type ConfigDict = { [key: string]: ConfigValue };

/** The value kinds a config key may be declared with. */
export type ConfigKind =
  | "number"
  | "integer"
  | "boolean"
  | "string"
  | "null"
  | "number[]"
  | "integer[]"
  | "string[]"
  | "array"
  | "object"
  | "any";

/** The diffusers version whose config format we write. */
export const DIFFUSERS_VERSION = "0.27.2";

/** A class's config declaration: its name, file name, defaults and key kinds. */
export interface ConfigSpec<C extends ConfigDict> {
  /** The `_class_name` written to JSON, e.g. `"DDIMScheduler"`. */
  readonly className: string;
  /** The file name in a model folder, e.g. `"scheduler_config.json"` or `"config.json"`. */
  readonly configName: string;
  /** Default value of every known key. */
  readonly defaults: Readonly<C>;
  /** Accepted kinds of every known key. */
  readonly kinds: Readonly<Record<string, readonly ConfigKind[]>>;
}

function inferKinds(key: string, value: ConfigValue, className: string): ConfigKind[] {
  if (typeof value === "number") return ["number"];
  if (typeof value === "boolean") return ["boolean"];
  if (typeof value === "string") return ["string"];
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every((v) => typeof v === "string")) return ["string[]"];
    if (value.length > 0 && value.every((v) => typeof v === "number")) return ["number[]"];
    return ["array"];
  }
  throw new Error(`${className}: default of ${key} needs an explicit kind`);
}

/**
 * Declares a config: kinds are inferred from the defaults (number, boolean,
 * string, string[] / number[]) unless given in `kinds`; a key whose default is
 * `null` or an object must have its kinds given.
 *
 * @example
 * ```ts
 * import { defineConfig } from "./config.ts";
 * const spec = defineConfig("UNet2DModel", "config.json", { sample_size: null, act_fn: "silu" },
 *   { sample_size: ["integer", "integer[]", "null"] });
 * ```
 */
export function defineConfig<C extends ConfigDict>(
  className: string,
  configName: string,
  defaults: C,
  kinds: Partial<Record<keyof C & string, readonly ConfigKind[]>> = {},
): ConfigSpec<C> {
  const all: Record<string, readonly ConfigKind[]> = {};
  for (const [key, value] of Object.entries(defaults)) {
    all[key] = kinds[key as keyof C & string] ?? inferKinds(key, value, className);
  }
  return Object.freeze({
    className,
    configName,
    defaults: Object.freeze({ ...defaults }),
    kinds: Object.freeze(all),
  });
}

function matchesKind(value: ConfigValue, kind: ConfigKind): boolean {
  switch (kind) {
    case "number":
      return typeof value === "number";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "null":
      return value === null;
    case "number[]":
      return Array.isArray(value) && value.every((v) => typeof v === "number");
    case "integer[]":
      return Array.isArray(value) &&
        value.every((v) => typeof v === "number" && Number.isInteger(v));
    case "string[]":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "array":
      return Array.isArray(value);
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    case "any":
      return true;
  }
}

/** Python writes tuples as lists; diffusers also accepts a bare value where a 1-list is meant. */
function checkKey(
  spec: ConfigSpec<ConfigDict>,
  key: string,
  value: ConfigValue,
  file: string | undefined,
): void {
  const kinds = spec.kinds[key]!;
  if (kinds.some((k) => matchesKind(value, k))) return;
  throw new ConfigError(
    `${spec.className} expects ${kinds.join(" or ")}, got ${describe(value)}`,
    { file, key },
  );
}

function describe(value: ConfigValue): string {
  const text = stringifyConfigJson(value, 0);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Builds a frozen config: defaults, then the keys of `json`, then
 * `overrides`. Known keys are type-checked; unknown keys are kept and
 * reported once at debug level. `file` is named in errors.
 *
 * @example
 * ```ts
 * import { defineConfig, loadConfig } from "./config.ts";
 * const spec = defineConfig("S", "scheduler_config.json", { beta_start: 0.0001 });
 * try {
 *   loadConfig(spec, { beta_start: "small" }, undefined, "scheduler_config.json");
 * } catch (e) {
 *   console.log((e as Error).message); // scheduler_config.json: beta_start: S expects number, got "small"
 * }
 * ```
 */
export function loadConfig<C extends ConfigDict>(
  spec: ConfigSpec<C>,
  json: Readonly<ConfigDict> = {},
  overrides: Readonly<ConfigDict> = {},
  file?: string,
): Readonly<C> {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(`${spec.className} config must be a JSON object`, { file });
  }
  const merged: ConfigDict = { ...spec.defaults };
  const unknown: string[] = [];
  for (const source of [json, overrides]) {
    for (const [key, value] of Object.entries(source)) {
      if (Object.hasOwn(spec.kinds, key)) {
        checkKey(
          spec as unknown as ConfigSpec<ConfigDict>,
          key,
          value,
          source === json ? file : undefined,
        );
      } else if (!key.startsWith("_")) {
        unknown.push(key);
      }
      merged[key] = value;
    }
  }
  if (unknown.length > 0) {
    logger.debugOnce(
      `${spec.className}: keeping config keys it does not use: ${unknown.sort().join(", ")}`,
    );
  }
  return deepFreeze(merged) as Readonly<C>;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The JSON that `save_config` would write: `_class_name`,
 * `_diffusers_version`, then every key (unknown ones too), sorted.
 *
 * @example
 * ```ts
 * import { configToJSON, defineConfig, loadConfig } from "./config.ts";
 * const spec = defineConfig("S", "scheduler_config.json", { a: 1 });
 * console.log(Object.keys(configToJSON(spec, loadConfig(spec, {})))); // ["_class_name", "_diffusers_version", "a"]
 * ```
 */
export function configToJSON<C extends ConfigDict>(
  spec: ConfigSpec<C>,
  config: Readonly<C>,
): ConfigDict {
  const out: ConfigDict = {
    _class_name: spec.className,
    _diffusers_version: DIFFUSERS_VERSION,
  };
  for (const key of Object.keys(config).sort()) {
    if (key === "_class_name" || key === "_diffusers_version") continue;
    out[key] = config[key] as ConfigValue;
  }
  return out;
}

/**
 * Parses JSON as Python's `json` writes it: the bare tokens `NaN`,
 * `Infinity` and `-Infinity` are accepted outside strings. A syntax error is
 * a {@link ConfigError} naming `file`.
 *
 * @example
 * ```ts
 * import { parseConfigJson } from "./config.ts";
 * console.log(parseConfigJson('{"lambda_min_clipped": -Infinity}').lambda_min_clipped); // -Infinity
 * ```
 */
export function parseConfigJson(text: string, file?: string): ConfigDict {
  let value: unknown;
  try {
    value = parsePythonJson(text, file);
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(`not valid JSON (${(cause as Error).message})`, { file, cause });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError("config is not a JSON object", { file });
  }
  return value as ConfigDict;
}

/** Configs nest a few levels; a hostile file nesting thousands would overflow every recursive walk. */
const MAX_DEPTH = 64;

/** Any JSON value, with Python's non-finite tokens mapped to numbers. */
function parsePythonJson(text: string, file: string | undefined): unknown {
  // Rewrite the non-finite tokens outside string literals: infinities become
  // 1e999 (which JSON.parse reads as Infinity), NaN a marker string revived below.
  const marker = `\u0000NaN${Math.random().toString(36).slice(2)}\u0000`;
  let out = "";
  let last = 0;
  let sawNaN = false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (c === "[" || c === "{") {
      if (++depth > MAX_DEPTH) {
        throw new ConfigError(`nested deeper than ${MAX_DEPTH} levels`, { file });
      }
      continue;
    }
    if (c === "]" || c === "}") {
      depth--;
      continue;
    }
    for (
      const [token, replacement] of [["-Infinity", "-1e999"], ["Infinity", "1e999"], ["NaN", ""]]
    ) {
      if (text.startsWith(token!, i)) {
        out += text.slice(last, i) + (token === "NaN" ? JSON.stringify(marker) : replacement);
        sawNaN ||= token === "NaN";
        i += token!.length - 1;
        last = i + 1;
        break;
      }
    }
  }
  out += text.slice(last);
  return sawNaN ? JSON.parse(out, (_k, v) => (v === marker ? NaN : v)) : JSON.parse(out);
}

/**
 * Serialises a config value as Python's `json.dumps(indent=2)` would:
 * non-finite numbers as bare `NaN` / `Infinity` / `-Infinity`.
 *
 * @example
 * ```ts
 * import { stringifyConfigJson } from "./config.ts";
 * console.log(stringifyConfigJson({ x: -Infinity })); // {\n  "x": -Infinity\n}
 * ```
 */
export function stringifyConfigJson(value: ConfigValue, indent = 2): string {
  const marker = `__nonfinite_${Math.random().toString(36).slice(2)}:`;
  const text = JSON.stringify(
    value,
    (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? `${marker}${v}` : v),
    indent,
  );
  return text.replaceAll(new RegExp(`"${marker}(NaN|-?Infinity)"`, "g"), "$1");
}

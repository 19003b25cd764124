/**
 * Special tokens as transformers 4.26.1 resolves them when loading a slow
 * tokenizer: the class defaults, overridden by `tokenizer_config.json`, then
 * by `special_tokens_map.json` (which wins: this is how SD 2's tokenizer pads
 * with "!" although its tokenizer_config says `<|endoftext|>`).
 *
 * A value is a plain string or an AddedToken object (`{"content": ...,
 * "lstrip": ..., "rstrip": ...}`, optionally with `"__type": "AddedToken"`).
 * The difference matters: text next to a plain-string special token loses its
 * surrounding whitespace, next to an AddedToken only where lstrip/rstrip say.
 *
 * @example
 * ```ts
 * import { resolveSpecialTokens } from "./special_tokens.ts";
 * const tokens = resolveSpecialTokens({
 *   defaults: { unk_token: "<|endoftext|>", pad_token: "<|endoftext|>" },
 *   config: {}, configFile: "tokenizer_config.json",
 *   map: { pad_token: "!" }, mapFile: "special_tokens_map.json",
 * });
 * tokens.named.get("pad_token")?.content; // "!"
 * ```
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** The single-token attributes of transformers' `SpecialTokensMixin`, in its order. */
export const SPECIAL_TOKEN_NAMES = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
] as const;

/** One of {@link SPECIAL_TOKEN_NAMES}. */
export type SpecialTokenName = typeof SPECIAL_TOKEN_NAMES[number];

/** A special or added token and how it treats the whitespace around it. */
export interface TokenSpec {
  /** The token text. */
  readonly content: string;
  /** True for an AddedToken object, false for a plain string. */
  readonly isAddedToken: boolean;
  /** AddedToken only: eat the whitespace on its left. */
  readonly lstrip: boolean;
  /** AddedToken only: eat the whitespace on its right. */
  readonly rstrip: boolean;
}

/** The resolved special tokens of one tokenizer. */
export interface SpecialTokens {
  /** The single-token attributes that are set. */
  readonly named: ReadonlyMap<SpecialTokenName, TokenSpec>;
  /** `additional_special_tokens`. */
  readonly additional: readonly TokenSpec[];
}

/** Inputs of {@link resolveSpecialTokens}. */
export interface SpecialTokenSources {
  /** The class's constructor defaults. */
  defaults: Partial<Record<SpecialTokenName, string>>;
  /** Attributes the class turns into non-stripping AddedTokens when they arrive as strings (CLIP: bos, eos, unk). */
  wrapAsAddedToken?: readonly SpecialTokenName[];
  /** Parsed `tokenizer_config.json` (`{}` when absent). */
  config: Record<string, unknown>;
  /** Its name, for errors. */
  configFile: string;
  /** Parsed `special_tokens_map.json` (`{}` when absent). */
  map: Record<string, unknown>;
  /** Its name, for errors. */
  mapFile: string;
}

/**
 * Resolves the special tokens: defaults, then the config, then the map.
 * A JSON `null` unsets an attribute, as `None` does in transformers.
 *
 * @example
 * ```ts
 * import { resolveSpecialTokens } from "./special_tokens.ts";
 * const t = resolveSpecialTokens({
 *   defaults: { bos_token: "<s>" }, wrapAsAddedToken: ["bos_token"],
 *   config: {}, configFile: "c", map: {}, mapFile: "m",
 * });
 * t.named.get("bos_token")?.isAddedToken; // true
 * ```
 */
export function resolveSpecialTokens(sources: SpecialTokenSources): SpecialTokens {
  const named = new Map<SpecialTokenName, TokenSpec>();
  for (const name of SPECIAL_TOKEN_NAMES) {
    const fallback = sources.defaults[name];
    const value = name in sources.config
      ? parseTokenSpec(sources.config[name], sources.configFile, name)
      : fallback === undefined
      ? undefined
      : plainToken(fallback);
    if (value === undefined) continue;
    const wrap = sources.wrapAsAddedToken?.includes(name) && !value.isAddedToken;
    named.set(name, wrap ? { ...value, isAddedToken: true, lstrip: false, rstrip: false } : value);
  }
  let additional = parseTokenList(sources.config, sources.configFile);
  for (const name of SPECIAL_TOKEN_NAMES) {
    if (!(name in sources.map)) continue;
    const value = parseTokenSpec(sources.map[name], sources.mapFile, name);
    if (value === undefined) named.delete(name);
    else named.set(name, value);
  }
  if ("additional_special_tokens" in sources.map) {
    additional = parseTokenList(sources.map, sources.mapFile);
  }
  return { named, additional };
}

/**
 * Every special token in transformers' order (`all_special_tokens_extended`),
 * duplicates included.
 *
 * @example
 * ```ts
 * import { allSpecialTokens, resolveSpecialTokens } from "./special_tokens.ts";
 * const t = resolveSpecialTokens({
 *   defaults: { unk_token: "[UNK]", cls_token: "[CLS]" },
 *   config: {}, configFile: "c", map: {}, mapFile: "m",
 * });
 * allSpecialTokens(t).map((s) => s.content); // ["[UNK]", "[CLS]"]
 * ```
 */
export function allSpecialTokens(tokens: SpecialTokens): TokenSpec[] {
  return [...tokens.named.values(), ...tokens.additional];
}

function plainToken(content: string): TokenSpec {
  return { content, isAddedToken: false, lstrip: false, rstrip: false };
}

/**
 * A config value as a token: a string, an AddedToken object, or null (unset).
 *
 * @example
 * ```ts
 * import { parseTokenSpec } from "./special_tokens.ts";
 * parseTokenSpec({ __type: "AddedToken", content: "<s>", lstrip: true }, "c", "bos_token");
 * // { content: "<s>", isAddedToken: true, lstrip: true, rstrip: false }
 * ```
 */
export function parseTokenSpec(value: unknown, file: string, key: string): TokenSpec | undefined {
  if (value === null) return undefined;
  if (typeof value === "string") return plainToken(value);
  if (typeof value === "object" && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o.content === "string") {
      return {
        content: o.content,
        isAddedToken: true,
        lstrip: o.lstrip === true,
        rstrip: o.rstrip === true,
      };
    }
  }
  throw new ConfigError(
    `expected a token string or an AddedToken object with a "content" string, got ${
      JSON.stringify(value)
    }`,
    { file, key },
  );
}

function parseTokenList(source: Record<string, unknown>, file: string): TokenSpec[] {
  const key = "additional_special_tokens";
  const value = source[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ConfigError("expected a list of tokens", { file, key });
  return value.map((v, i) => {
    const spec = parseTokenSpec(v, file, `${key}[${i}]`);
    if (!spec) throw new ConfigError("null in the token list", { file, key: `${key}[${i}]` });
    return spec;
  });
}

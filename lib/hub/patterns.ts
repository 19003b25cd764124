/**
 * File selection with huggingface_hub's `allow_patterns` semantics: Python
 * `fnmatch` globs over `/`-joined paths (`*` also matches `/`), and a
 * pattern ending in `/` means everything in that folder.
 *
 * @example
 * ```ts
 * import { matchesAny } from "./patterns.ts";
 * console.log(matchesAny("unet/config.json", ["unet/", "*.safetensors"])); // true
 * ```
 *
 * @module
 */

/**
 * Compiles one fnmatch pattern (`*`, `?`, `[seq]`, `[!seq]`) to a RegExp.
 *
 * @example
 * ```ts
 * import { patternToRegExp } from "./patterns.ts";
 * console.log(patternToRegExp("*.safetensors").test("vae/diffusion_pytorch_model.safetensors")); // true
 * ```
 */
export function patternToRegExp(pattern: string): RegExp {
  const glob = pattern.endsWith("/") ? `${pattern}*` : pattern;
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    const close = c === "[" ? glob.indexOf("]", i + 2) : -1;
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (close > 0) {
      const body = glob.slice(i + 1, close).replace(/\\/g, "\\\\");
      source += body.startsWith("!") ? `[^${body.slice(1)}]` : `[${body}]`;
      i = close;
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s");
}

/**
 * Whether `path` matches at least one of `patterns`.
 *
 * @example
 * ```ts
 * import { matchesAny } from "./patterns.ts";
 * console.log(matchesAny("README.md", ["*.json"])); // false
 * ```
 */
export function matchesAny(path: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => patternToRegExp(pattern).test(path));
}

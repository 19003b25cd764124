/**
 * Text tokenizers that give the same ids as transformers 4.26.1's slow
 * `BertTokenizer` and `CLIPTokenizer`, loaded from a Hub tokenizer folder
 * (a local path, file contents, or a reader function for the browser).
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./mod.ts";
 * const tok = await loadTokenizer("./sd-v1-5/tokenizer", "CLIPTokenizer");
 * const { inputIds, attentionMask } = tok.encode("a photo of an astronaut riding a horse", {
 *   padding: "max_length",
 *   truncation: true,
 * });
 * ```
 *
 * @module
 */

export {
  type EncodeOptions,
  type Encoding,
  loadTokenizer,
  type LoadTokenizerOptions,
  type Tokenizer,
} from "./tokenizer.ts";
export { BertTokenizer } from "./bert.ts";
export { CLIPTokenizer, type CLIPTokenizerOptions } from "./clip.ts";
export type { TokenizerFileFetcher, TokenizerSource } from "./files.ts";
export { fixText } from "./ftfy.ts";

/**
 * Fuzz target: tokenizer folders (`vocab.json` + `merges.txt` for CLIP,
 * `vocab.txt` for BERT, `tokenizer_config.json`, `special_tokens_map.json`,
 * `added_tokens.json`, or only a fast `tokenizer.json`), loaded with
 * `loadTokenizer` from a record of file contents and then used to encode a
 * few texts. An input is one JSON document, `{"class": name | null,
 * "files": {name: text}}` (null: the class comes from
 * `tokenizer_config.json`). Mutations edit one file (JSON-tree or byte
 * edits; for line files, lines deleted, duplicated or replaced by hostile
 * ones), drop or borrow files, or change the class.
 *
 * @example
 * ```ts
 * import { tokenizerTarget } from "./tokenizer.ts";
 * const seeds = await tokenizerTarget.seeds();
 * await tokenizerTarget.run(new TextEncoder().encode(JSON.stringify(seeds[0])));
 * ```
 *
 * @module
 */

import { loadTokenizer } from "../../../lib/tokenizers/tokenizer.ts";
import { mutateBytes } from "../bytes.ts";
import type { Rng } from "../rng.ts";
import { FIXTURES_DIR, pickTwo } from "../seeds.ts";
import { BASE_BUDGET, type FuzzTarget } from "../target.ts";
import { decodeText, mutateJsonFile } from "./text.ts";

/** One tokenizer folder as an input: the class to load and the files. */
export interface TokenizerCase {
  /** A transformers class name, or null to read it from `tokenizer_config.json`. */
  class: string | null;
  /** File contents by name. */
  files: Record<string, string>;
}

const TEXTS = [
  "a photo of an astronaut riding a horse",
  "",
  "Ünïcödé 😀 <|endoftext|> [SEP] don't\u0000\u200b",
  "x".repeat(500),
];

const HOSTILE_LINES = [
  "",
  " ",
  "#version: 0.2",
  "a b c",
  "a",
  "\u0000 \u0000",
  "[UNK]",
  "<|endoftext|>",
  "</w> </w>",
  "x".repeat(10_000),
  "\ud800",
];

async function folder(dir: string, names: readonly string[]): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of names) files[name] = await Deno.readTextFile(`${dir}/${name}`);
  return files;
}

/** `tokenizer.json` holding only the model section, as fast-only folders ship it. */
function fastJson(model: Record<string, unknown>): string {
  return JSON.stringify({ version: "1.0", model });
}

async function seeds(): Promise<TokenizerCase[]> {
  const common = ["tokenizer_config.json", "special_tokens_map.json"];
  const clip = await folder(`${FIXTURES_DIR}/tokenizers/clip_tiny`, [
    ...common,
    "vocab.json",
    "merges.txt",
  ]);
  const bert = await folder(`${FIXTURES_DIR}/tokenizers/bert_tiny`, [...common, "vocab.txt"]);
  const merges = clip["merges.txt"]!.split("\n").slice(1).filter((l) => l.trim() !== "");
  const vocab = Object.fromEntries(
    bert["vocab.txt"]!.split("\n").filter((l) => l !== "").map((t, i) => [t, i]),
  );
  return [
    { class: "CLIPTokenizer", files: clip },
    { class: null, files: clip },
    { class: "BertTokenizer", files: bert },
    { class: null, files: { ...bert, "added_tokens.json": '{"<new>": 1000}' } },
    {
      class: "CLIPTokenizer",
      files: {
        "tokenizer.json": fastJson({
          type: "BPE",
          vocab: JSON.parse(clip["vocab.json"]!),
          merges,
        }),
      },
    },
    {
      class: "BertTokenizerFast",
      files: { "tokenizer.json": fastJson({ type: "WordPiece", vocab }) },
    },
  ];
}

function mutateLines(rng: Rng, text: string): string {
  const lines = text.split("\n");
  const at = rng.int(lines.length);
  switch (rng.int(4)) {
    case 0:
      lines.splice(at, rng.smallLength(lines.length));
      break;
    case 1:
      lines.splice(at, 0, ...Array(rng.smallLength(100)).fill(lines[rng.int(lines.length)]));
      break;
    case 2:
      lines[at] = rng.pick(HOSTILE_LINES);
      break;
    default:
      lines.splice(at, 0, rng.pick(HOSTILE_LINES));
  }
  return lines.join("\n");
}

function mutateFile(rng: Rng, name: string, text: string, donor: string): string {
  const bytes = new TextEncoder().encode(text);
  const other = new TextEncoder().encode(donor);
  if (name.endsWith(".json")) return decodeText(mutateJsonFile(rng, bytes, other));
  return rng.chance(0.6) ? mutateLines(rng, text) : decodeText(mutateBytes(rng, bytes, other));
}

function mutate(rng: Rng, all: readonly TokenizerCase[]): Uint8Array {
  const [seed, donor] = pickTwo(rng, all);
  const files = { ...seed.files };
  let cls = seed.class;
  const names = Object.keys(files);
  const donorNames = Object.keys(donor.files);
  const roll = rng.float();
  if (roll < 0.75 && names.length > 0) {
    const name = rng.pick(names);
    const donorText = donor.files[rng.pick(donorNames)] ?? "";
    files[name] = mutateFile(rng, name, files[name]!, donorText);
  } else if (roll < 0.85 && names.length > 0) {
    delete files[rng.pick(names)];
  } else if (roll < 0.93 && donorNames.length > 0) {
    const name = rng.pick(donorNames);
    files[name] = donor.files[name]!;
  } else {
    cls = rng.pick([null, "CLIPTokenizer", "BertTokenizer", "CLIPTokenizerFast", "T5Tokenizer"]);
  }
  return new TextEncoder().encode(JSON.stringify({ class: cls, files }));
}

async function run(input: Uint8Array): Promise<void> {
  // Only the fuzzer writes these cases: a broken one fails loudly (SyntaxError), as it should.
  const { class: cls, files } = JSON.parse(decodeText(input)) as TokenizerCase;
  const tokenizer = await loadTokenizer(files, cls ?? undefined);
  for (const text of TEXTS) {
    tokenizer.encode(text, { padding: "max_length", truncation: true });
    tokenizer.encodeBatch([text, "a"], { padding: "longest" });
  }
}

/**
 * The tokenizer target.
 *
 * @example
 * ```ts
 * import { tokenizerTarget } from "./tokenizer.ts";
 * console.log(tokenizerTarget.name);
 * ```
 */
export const tokenizerTarget: FuzzTarget<TokenizerCase> = {
  name: "tokenizer",
  ext: "json",
  seeds,
  mutate,
  run,
  allocationBudget: (n) => BASE_BUDGET + 64 * n,
};

/**
 * Tokenizers against transformers 4.26.1: every case of every
 * `fixtures/tokenizers/cases_*.json` (tokens, untruncated ids, ids and masks
 * padded/truncated to 77, BERT's token type ids, CLIP's no-ftfy variants),
 * the emoji-sd-tiny reference ids, the ways to load a folder, and the typed
 * errors for bad input. Does not import `_helpers.ts`, so no tfjs backend starts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BertTokenizer,
  CLIPTokenizer,
  type Encoding,
  fixText,
  loadTokenizer,
  type Tokenizer,
} from "../lib/tokenizers/mod.ts";
import { ArgumentError, ConfigError, NotFoundError, UnknownNameError } from "../lib/errors.ts";

const SHARED = Deno.env.get("DIFFUSERS_SHARED") ??
  new URL("../../shared", import.meta.url).pathname;
const TOK_DIR = `${SHARED}/fixtures/tokenizers`;

interface Variant {
  tokens: string[];
  input_ids: number[];
  input_ids_max_length: number[];
  attention_mask_max_length: number[];
  token_type_ids_max_length?: number[];
}

interface Case extends Variant {
  prompt: string;
  truncated: boolean;
  no_ftfy?: Variant;
  openai_simple_tokenizer_encode?: number[];
}

interface CaseFile {
  tokenizer: string;
  class: string;
  cases: Case[];
}

async function readCases(name: string): Promise<CaseFile> {
  return JSON.parse(await Deno.readTextFile(`${TOK_DIR}/cases_${name}.json`));
}

/** Checks one variant; returns the failures so a file reports all of them at once. */
function compare(tok: Tokenizer, prompt: string, want: Variant): string[] {
  const failures: string[] = [];
  const check = (what: string, got: unknown, expected: unknown): void => {
    try {
      assert.deepEqual(got, expected);
    } catch {
      failures.push(`${JSON.stringify(prompt)} ${what}: got ${JSON.stringify(got)}`);
    }
  };
  check("tokens", tok.tokenize(prompt), want.tokens);
  check("input_ids", tok.encode(prompt).inputIds, want.input_ids);
  const padded: Encoding = tok.encode(prompt, {
    padding: "max_length",
    maxLength: 77,
    truncation: true,
  });
  check("input_ids_max_length", padded.inputIds, want.input_ids_max_length);
  check("attention_mask_max_length", padded.attentionMask, want.attention_mask_max_length);
  check("token_type_ids_max_length", padded.tokenTypeIds, want.token_type_ids_max_length);
  return failures;
}

for (
  const [name, folder] of [
    ["bert_tiny", "bert_tiny"],
    ["bert_base_uncased", "bert_base_uncased"],
    ["clip_tiny", "clip_tiny"],
    ["clip_vit_large_patch14", "clip_vit_large_patch14"],
  ] as const
) {
  Deno.test(`tokenizers: ${name} matches transformers on every fixture case`, async () => {
    const file = await readCases(name);
    const tok = await loadTokenizer(`${TOK_DIR}/${folder}`, file.class);
    assert.equal(tok.className, file.class);
    const failures = file.cases.flatMap((c) => compare(tok, c.prompt, c));
    assert.deepEqual(failures, [], `${failures.length} mismatches in ${file.cases.length} cases`);
  });
}

Deno.test("tokenizers: CLIP without ftfy matches transformers' BasicTokenizer fallback", async () => {
  const file = await readCases("clip_vit_large_patch14");
  const tok = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_vit_large_patch14`, {
    ftfy: false,
  });
  const variants = file.cases.filter((c) => c.no_ftfy);
  assert.equal(variants.length, 30);
  const failures = variants.flatMap((c) => compare(tok, c.prompt, c.no_ftfy!));
  assert.deepEqual(failures, []);
});

Deno.test("tokenizers: CLIP ids equal OpenAI's SimpleTokenizer between BOS and EOS", async () => {
  const file = await readCases("clip_vit_large_patch14");
  const tok = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_vit_large_patch14`);
  for (const c of file.cases) {
    assert.deepEqual(tok.encode(c.prompt).inputIds.slice(1, -1), c.openai_simple_tokenizer_encode);
  }
});

Deno.test("tokenizers: the real CLIP vocabulary and merges load fast, ids come from the files", async () => {
  const t0 = performance.now();
  const tok = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_vit_large_patch14`);
  const ms = performance.now() - t0;
  assert.equal(tok.vocabSize, 49408);
  assert.equal(tok.bosTokenId, 49406);
  assert.equal(tok.eosTokenId, 49407);
  assert.equal(tok.padToken, "<|endoftext|>");
  assert.equal(tok.padTokenId, 49407);
  assert.equal(tok.modelMaxLength, 77);
  // "Well under a second" on an idle core; generous here because cores are shared.
  assert(ms < 2000, `loading took ${ms.toFixed(0)} ms`);
  const tiny = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_tiny`);
  assert.deepEqual([tiny.bosTokenId, tiny.eosTokenId, tiny.padTokenId], [603, 604, 604]);
});

Deno.test("tokenizers: emoji-sd-tiny's tokenizer folder encodes 'cat face' as diffusers did", async () => {
  const tok = await loadTokenizer(`${SHARED}/models/emoji-sd-tiny/tokenizer`);
  assert(tok instanceof CLIPTokenizer);
  const reference = JSON.parse(
    await Deno.readTextFile(`${SHARED}/models/emoji-sd-tiny-samples/reference.json`),
  );
  const options = {
    padding: "max_length",
    maxLength: tok.modelMaxLength,
    truncation: true,
  } as const;
  assert.deepEqual(tok.encode("cat face", options).inputIds, reference.token_ids.cond);
  assert.deepEqual(tok.encode("", options).inputIds, reference.token_ids.uncond);
});

Deno.test("tokenizers: batches, padding to the longest, no special tokens", async () => {
  const tok = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_tiny`);
  const [a, b] = tok.encodeBatch(["a cat", "a red chair on the sea"], { padding: "longest" });
  assert.equal(a!.inputIds.length, b!.inputIds.length);
  assert.deepEqual(a!.attentionMask.slice(0, 4), [1, 1, 1, 1]);
  assert.equal(a!.attentionMask.at(-1), 0);
  assert.equal(a!.inputIds.at(-1), 604);
  assert.equal(a!.tokenTypeIds, undefined);
  assert.deepEqual(tok.encode("a cat", { addSpecialTokens: false }).inputIds, [320, 555]);
  // Truncation without padding keeps BOS + text + EOS within maxLength.
  assert.deepEqual(tok.encode("a cat on the sea", { truncation: true, maxLength: 4 }).inputIds, [
    603,
    320,
    555,
    604,
  ]);
  // Padding to max length without truncation never cuts a longer sequence.
  assert.equal(tok.encode("a a a a a", { padding: "max_length", maxLength: 3 }).inputIds.length, 7);
});

Deno.test("tokenizers: file contents or a reader function load like a folder", async () => {
  const names = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];
  const contents: Record<string, string> = {};
  for (const n of names) contents[n] = await Deno.readTextFile(`${TOK_DIR}/clip_tiny/${n}`);
  const fromFolder = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_tiny`);
  const fromContents = await CLIPTokenizer.fromPretrained(contents);
  const fromReader = await loadTokenizer((n) => Promise.resolve(contents[n]), "CLIPTokenizer");
  const prompt = "A photograph of a city street, high quality";
  const want = fromFolder.encode(prompt).inputIds;
  assert.deepEqual(fromContents.encode(prompt).inputIds, want);
  assert.deepEqual(fromReader.encode(prompt).inputIds, want);
});

Deno.test("tokenizers: tokenizer.json stands in for missing vocabulary files", async () => {
  const vocab = JSON.parse(await Deno.readTextFile(`${TOK_DIR}/clip_tiny/vocab.json`));
  const merges = (await Deno.readTextFile(`${TOK_DIR}/clip_tiny/merges.txt`)).trim().split("\n")
    .slice(1);
  const config = await Deno.readTextFile(`${TOK_DIR}/clip_tiny/tokenizer_config.json`);
  const clip = await CLIPTokenizer.fromPretrained({
    "tokenizer_config.json": config,
    "tokenizer.json": JSON.stringify({
      model: { type: "BPE", vocab, merges: merges.map((m) => m.split(" ")) },
    }),
  });
  const reference = await CLIPTokenizer.fromPretrained(`${TOK_DIR}/clip_tiny`);
  const prompt = "an oil painting of the sea at night";
  assert.deepEqual(clip.encode(prompt).inputIds, reference.encode(prompt).inputIds);

  const lines = (await Deno.readTextFile(`${TOK_DIR}/bert_tiny/vocab.txt`)).split("\n");
  const wordpiece = Object.fromEntries(lines.filter((l) => l !== "").map((l, i) => [l, i]));
  const bert = await BertTokenizer.fromPretrained({
    "tokenizer.json": JSON.stringify({ model: { type: "WordPiece", vocab: wordpiece } }),
  });
  assert.deepEqual(bert.tokenize("a painting"), ["a", "paint", "##ing"]);
});

Deno.test("tokenizers: SD 2's special_tokens_map.json pad '!' wins over tokenizer_config.json", async () => {
  const configs = `${SHARED}/configs`;
  const sd2 = await loadTokenizer(`${configs}/stabilityai__stable-diffusion-2-1-base/tokenizer`);
  const sd15 = await loadTokenizer(`${configs}/runwayml__stable-diffusion-v1-5/tokenizer`);
  assert.equal(sd2.padToken, "!");
  assert.equal(sd2.padTokenId, 0);
  assert.equal(sd15.padTokenId, 49407);
  const options = { padding: "max_length", maxLength: 6 } as const;
  assert.deepEqual(sd2.encode("a cat", options).inputIds, [49406, 320, 2368, 49407, 0, 0]);
  assert.deepEqual(sd15.encode("a cat", options).inputIds, [49406, 320, 2368, 49407, 49407, 49407]);
  // Like every special token, "!" is never split (transformers' no-split rule),
  // and as a plain string it strips the spaces around it.
  assert.deepEqual(sd2.tokenize("cat ! wow!"), ["cat</w>", "!", "wow</w>", "!"]);
  assert.deepEqual(sd15.tokenize("cat ! wow!"), ["cat</w>", "!</w>", "wow</w>", "!</w>"]);
  // The example of diffusers issue #4153, with the ids transformers gave there.
  assert.deepEqual(sd2.encode("! !! !!!").inputIds, [49406, 0, 0, 0, 0, 0, 0, 49407]);
});

Deno.test("tokenizers: added tokens are kept whole and use their ids", async () => {
  const read = (n: string): Promise<string> => Deno.readTextFile(`${TOK_DIR}/bert_tiny/${n}`);
  const tok = await BertTokenizer.fromPretrained({
    "vocab.txt": await read("vocab.txt"),
    "tokenizer_config.json": await read("tokenizer_config.json"),
    "added_tokens.json": '{"<Emoji>": 120}',
  });
  // A lower-casing tokenizer stores non-special added tokens lower-cased.
  assert.deepEqual(tok.tokenize("a <EMOJI> cat"), ["a", "<emoji>", "cat"]);
  assert.deepEqual(tok.encode("a <EMOJI> cat").inputIds.slice(1, -1), [
    tok.convertTokensToIds(["a"])[0],
    120,
    tok.convertTokensToIds(["cat"])[0],
  ]);
});

Deno.test("tokenizers: fixText reproduces ftfy 6.1.1 (its own entity tests and fixers)", () => {
  // Expected values from ftfy 6.1.1's tests/test_entities.py and fixer docstrings,
  // each checked against ftfy 6.1.1 itself.
  assert.equal(fixText("&amp;\n<html>\n&amp;"), "&\n<html>\n&amp;");
  assert.equal(fixText("&lt;&gt;"), "<>");
  assert.equal(fixText("jednocze&sacute;nie"), "jednocześnie");
  assert.equal(fixText("JEDNOCZE&Sacute;NIE"), "JEDNOCZEŚNIE");
  assert.equal(fixText("broken&#x81;"), "broken\x81");
  assert.equal(fixText("&amp;amp;amp;"), "&");
  assert.equal(fixText("euro &#x80;"), "euro €");
  assert.equal(fixText("EURO &EURO;"), "EURO €");
  assert.equal(fixText("not an entity &#20x6;"), "not an entity &#20x6;");
  assert.equal(fixText("V&SCARON;ICHNI"), "VŠICHNI");
  assert.equal(fixText("&#xffff;"), "");
  assert.equal(fixText("&#xffffffff;"), "\ufffd");
  assert.equal(
    fixText("this is just informal english &not html"),
    "this is just informal english &not html",
  );
  assert.equal(fixText("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "ñ Ñ Ñ &nTILDE;");
  assert.equal(fixText("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
  assert.equal(fixText("\u201chere\u2019s a test\u201d"), '"here\'s a test"');
  assert.equal(fixText("ﬂuﬃeﬆ"), "fluffiest");
  assert.equal(fixText("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
  assert.equal(fixText("Ｕﾀｰﾝ"), "Uターン");
  // U+0085 is read as Windows-1252 "…" (fix_c1_controls) before line breaks are fixed.
  assert.equal(fixText("a\r\nb\rc\u2028d\u2029e\x85f"), "a\nb\nc\nd\ne\u2026f");
  assert.equal(fixText("\x1b[36;44mI'm blue\x1b[0m"), "I'm blue");
  assert.equal(fixText("\ufeffbom\x00\x07 tab\t"), "bom tab\t");
  assert.equal(fixText("\ud83d lone"), "\ufffd lone");
  assert.equal(fixText("e\u0301"), "\u00e9");
});

Deno.test("tokenizers: missing and malformed files raise typed errors naming the file", async () => {
  const dir = `${TOK_DIR}/clip_tiny`;
  const config = await Deno.readTextFile(`${dir}/tokenizer_config.json`);
  await assert.rejects(
    CLIPTokenizer.fromPretrained({ "merges.txt": "#version: 0.2\n" }),
    (e) => e instanceof NotFoundError && /vocab\.json/.test(e.message),
  );
  await assert.rejects(
    BertTokenizer.fromPretrained(`${SHARED}/no/such/folder`),
    (e) => e instanceof NotFoundError && /no\/such\/folder\/vocab\.txt/.test(e.message),
  );
  await assert.rejects(
    CLIPTokenizer.fromPretrained({ "vocab.json": "{not json", "merges.txt": "" }),
    (e) => e instanceof ConfigError && /vocab\.json: not valid JSON/.test(e.message),
  );
  await assert.rejects(
    CLIPTokenizer.fromPretrained({ "vocab.json": '{"a": "zero"}', "merges.txt": "" }),
    (e) => e instanceof ConfigError && /vocab\.json.*"a"/.test(e.message),
  );
  await assert.rejects(
    CLIPTokenizer.fromPretrained({
      "vocab.json": '{"a": 0}',
      "merges.txt": "",
      "special_tokens_map.json": '{"pad_token": 5}',
    }),
    (e) => e instanceof ConfigError && /special_tokens_map\.json: pad_token/.test(e.message),
  );
  await assert.rejects(
    CLIPTokenizer.fromPretrained({ "vocab.json": '{"a": 0}', "merges.txt": "" }),
    (e) =>
      e instanceof ConfigError &&
      /unk_token "<\|endoftext\|>" is not in the vocabulary/.test(e.message),
  );
  await assert.rejects(
    CLIPTokenizer.fromPretrained({ "tokenizer.json": '{"model": {"type": "WordPiece"}}' }),
    (e) => e instanceof ConfigError && /tokenizer\.json: model: expected a BPE/.test(e.message),
  );
  await assert.rejects(
    BertTokenizer.fromPretrained({ "vocab.txt": "[UNK]\n", "tokenizer_config.json": "[]" }),
    (e) => e instanceof ConfigError && /tokenizer_config\.json/.test(e.message),
  );
  await assert.rejects(
    BertTokenizer.fromPretrained({
      "vocab.txt": "[UNK]\n",
      "tokenizer_config.json": '{"do_lower_case": "yes"}',
    }),
    (e) => e instanceof ConfigError && /do_lower_case/.test(e.message),
  );
  await assert.rejects(
    loadTokenizer({ "tokenizer_config.json": "{}" }),
    (e) => e instanceof ConfigError && /tokenizer_class/.test(e.message),
  );
  await assert.rejects(
    loadTokenizer({ "tokenizer_config.json": config }, "T5Tokenizer"),
    (e) => e instanceof UnknownNameError && e.validNames.includes("CLIPTokenizer"),
  );
  const tok = await CLIPTokenizer.fromPretrained(dir);
  assert.throws(() => tok.encode("a", { maxLength: 0 }), ArgumentError);
  assert.throws(() => tok.encode("a", { maxLength: 2, truncation: true }), ArgumentError);
});

/**
 * The regression corpus: every input that ever failed, saved under
 * `tests/fuzz_corpus/<parser>/<kind>-<sha256 prefix>.<ext>` and replayed by
 * the test suite. Failures are grouped by signature (kind and error with
 * numbers blanked) and only a few of each group are kept, smallest first,
 * so one bug does not flood the folder.
 *
 * @example
 * ```ts
 * import { readCorpus } from "./corpus.ts";
 * const cases = await readCorpus("tests/fuzz_corpus", "safetensors");
 * console.log(cases.map((c) => c.name));
 * ```
 *
 * @module
 */

import type { Failure } from "./protocol.ts";

/** Cases kept per signature, per run. */
const PER_SIGNATURE = 3;
/** Larger inputs are reported but not kept: the corpus holds small files only. */
const MAX_SAVED_BYTES = 256 * 1024;

/**
 * The group a failure belongs to: its kind and its error with numbers blanked.
 *
 * @example
 * ```ts
 * import { signature } from "./corpus.ts";
 * console.log(signature({ parser: "png", index: 3, kind: "untyped", detail: "RangeError: offset 12", input: new Uint8Array() }));
 * // "png untyped RangeError: offset #"
 * ```
 */
export function signature(f: Failure): string {
  return `${f.parser} ${f.kind} ${f.detail.replace(/\d+/g, "#").slice(0, 160)}`;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Saves failures to a corpus folder, a few per signature.
 *
 * @example
 * ```ts
 * import { CorpusWriter } from "./corpus.ts";
 * const writer = new CorpusWriter("tests/fuzz_corpus", () => "bin");
 * console.log(writer.saved); // []
 * ```
 */
export class CorpusWriter {
  readonly #dir: string;
  readonly #extOf: (parser: string) => string;
  readonly #kept = new Map<string, number>();
  /** Paths written so far. */
  readonly saved: string[] = [];

  /** `dir` is the corpus root; `extOf` gives a parser's file extension. */
  constructor(dir: string, extOf: (parser: string) => string) {
    this.#dir = dir;
    this.#extOf = extOf;
  }

  /**
   * Saves `f` unless its group is full or it is too large; returns the path, if written.
   *
   * @example
   * ```ts
   * import { CorpusWriter } from "./corpus.ts";
   * const w = new CorpusWriter("/tmp/corpus", () => "bin");
   * await w.save({ parser: "png", index: 0, kind: "slow", detail: "took 3000 ms", input: new Uint8Array(4) });
   * ```
   */
  async save(f: Failure): Promise<string | undefined> {
    const sig = signature(f);
    const kept = this.#kept.get(sig) ?? 0;
    if (kept >= PER_SIGNATURE || f.input.length > MAX_SAVED_BYTES) return undefined;
    this.#kept.set(sig, kept + 1);
    const folder = `${this.#dir}/${f.parser}`;
    await Deno.mkdir(folder, { recursive: true });
    const path = `${folder}/${f.kind}-${(await sha256Hex(f.input)).slice(0, 12)}.${
      this.#extOf(f.parser)
    }`;
    await Deno.writeFile(path, f.input);
    this.saved.push(path);
    return path;
  }
}

/**
 * The saved cases of one parser, sorted by name (empty when there are none).
 *
 * @example
 * ```ts
 * import { readCorpus } from "./corpus.ts";
 * console.log((await readCorpus("/nonexistent", "png")).length); // 0
 * ```
 */
export async function readCorpus(
  dir: string,
  parser: string,
): Promise<{ name: string; bytes: Uint8Array }[]> {
  const folder = `${dir}/${parser}`;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(folder)) if (e.isFile) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  names.sort();
  return Promise.all(
    names.map(async (name) => ({ name, bytes: await Deno.readFile(`${folder}/${name}`) })),
  );
}

/**
 * `deno task fuzz`: mutates valid inputs of every parser that reads
 * untrusted files (safetensors, PyTorch zip and pickle, config.json,
 * model_index.json, tokenizer files, PNG) and checks that each input
 * either loads or is refused with the library's typed error: never a hang,
 * another exception, an allocation larger than the input justifies, or a
 * crash. Seeded and reproducible; failing inputs are saved to the
 * regression corpus (`tests/fuzz_corpus/<parser>/`) that the tests replay.
 * The parsers run in child processes that may only read (no network, no
 * writes), so a hang or a crash is caught and named instead of ending the run.
 *
 * Task: `deno run --allow-read --allow-env --allow-run --allow-write=tests/fuzz_corpus tools/fuzz.ts`.
 *
 * ```sh
 * deno task fuzz                                  # every parser, 15,000 inputs each
 * deno task fuzz --seed 42 --parser safetensors   # reproduce one parser's run
 * deno task fuzz --iterations 500 --seconds 60 --no-save
 * deno task fuzz --replay                         # run the saved corpus only
 * ```
 *
 * Options: `--seed N` (default: random, printed), `--iterations N` inputs
 * per parser, `--seconds S` wall-clock limit for the whole run,
 * `--parser NAME[,NAME]` (repeatable), `--slow-ms`, `--hang-ms`,
 * `--corpus DIR`, `--no-save`, `--replay`. Exits 1 when any input failed.
 *
 * @example
 * ```ts
 * import { main } from "./fuzz.ts";
 * const code = await main(["--seed", "1", "--iterations", "100", "--parser", "png", "--no-save"]);
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CorpusWriter, readCorpus } from "./fuzz/corpus.ts";
import type { Failure } from "./fuzz/protocol.ts";
import { fuzz, type ParserReport, replay } from "./fuzz/runner.ts";
import { TARGETS } from "./fuzz/targets/mod.ts";

const DEFAULT_CORPUS = new URL("../tests/fuzz_corpus", import.meta.url).pathname;

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`--${name} must be a whole number, got ${value}`);
  }
  return n;
}

function table(reports: readonly ParserReport[]): string {
  const rows = [["parser", "inputs", "loaded", "typed errors", "failures", "seconds"]];
  for (const r of reports) {
    rows.push([
      r.parser,
      r.tried.toLocaleString("en-US"),
      r.loads.toLocaleString("en-US"),
      r.typed.toLocaleString("en-US"),
      String(r.failures.length),
      (r.ms / 1000).toFixed(1),
    ]);
  }
  const sum = (f: (r: ParserReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  rows.push([
    "total",
    sum((r) => r.tried).toLocaleString("en-US"),
    sum((r) => r.loads).toLocaleString("en-US"),
    sum((r) => r.typed).toLocaleString("en-US"),
    String(sum((r) => r.failures.length)),
    (sum((r) => r.ms) / 1000).toFixed(1),
  ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")
  ).join("\n");
}

function byClass(reports: readonly ParserReport[]): string {
  return reports.map((r) => {
    const classes = Object.entries(r.typedByClass).sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${n.toLocaleString("en-US")}`);
    return `  ${r.parser}: ${classes.join(", ") || "none"}`;
  }).join("\n");
}

function describeFailure(f: Failure, path: string | undefined): string {
  const where = f.caseName ?? `input ${f.index}`;
  return `FAIL ${f.parser} ${where}: ${f.kind}: ${f.detail}${path ? ` (saved ${path})` : ""}`;
}

/**
 * Runs the fuzzer with command-line `args`; returns the exit code.
 *
 * @example
 * ```ts
 * import { main } from "./fuzz.ts";
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      seed: { type: "string" },
      iterations: { type: "string" },
      seconds: { type: "string" },
      parser: { type: "string", multiple: true },
      "slow-ms": { type: "string" },
      "hang-ms": { type: "string" },
      corpus: { type: "string", default: DEFAULT_CORPUS },
      "no-save": { type: "boolean", default: false },
      replay: { type: "boolean", default: false },
    },
  });
  const parsers = (values.parser ?? [...TARGETS.keys()]).flatMap((p) => p.split(","));
  for (const p of parsers) {
    if (!TARGETS.has(p)) {
      throw new Error(`unknown parser ${p}; known: ${[...TARGETS.keys()].join(", ")}`);
    }
  }
  const slowMs = integer("slow-ms", values["slow-ms"], 2000);
  const hangMs = integer("hang-ms", values["hang-ms"], 20_000);
  let reports: ParserReport[];
  if (values.replay) {
    reports = [];
    for (const parser of parsers) {
      const r = await replay(parser, await readCorpus(values.corpus, parser), { slowMs, hangMs });
      r.failures.forEach((f) => console.error(describeFailure(f, undefined)));
      reports.push(r);
    }
    console.log(`replayed the corpus in ${values.corpus}\n${table(reports)}`);
  } else {
    const seed = integer("seed", values.seed, crypto.getRandomValues(new Uint32Array(1))[0]!);
    const iterations = integer("iterations", values.iterations, 15_000);
    console.error(
      `fuzz seed ${seed} (reproduce with --seed ${seed}), ${iterations} inputs per parser`,
    );
    const writer = values["no-save"]
      ? undefined
      : new CorpusWriter(values.corpus, (p) => TARGETS.get(p)!.ext);
    reports = await fuzz({
      seed,
      iterations,
      seconds: integer("seconds", values.seconds, 900),
      parsers,
      slowMs,
      hangMs,
      onFailure: async (f) => console.error(describeFailure(f, await writer?.save(f))),
      onParserDone: (r) =>
        console.error(
          `${r.parser}: ${r.tried} inputs, ${r.failures.length} failures, ${
            (r.ms / 1000).toFixed(1)
          } s`,
        ),
    });
    console.log(`seed ${seed}\n${table(reports)}\ntyped errors by class:\n${byClass(reports)}`);
  }
  return reports.some((r) => r.failures.length > 0) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

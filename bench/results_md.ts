/**
 * Renders benchmark rows as bench/RESULTS.md: one table per section, with
 * ms per call (wall and CPU medians), FLOPs and achieved GFLOP/s, the WASM
 * heap's peak, and PyTorch's reference time and our ratio to it where
 * issue #7 gives one.
 *
 * @example
 * ```ts
 * import { renderResults } from "./results_md.ts";
 * const md = renderResults({ title: "t", preamble: [], sections: [] });
 * ```
 *
 * @module
 */

/** One measured (or skipped) case. */
export interface Row {
  /** What was run. */
  name: string;
  /** Median wall ms per call (absent when skipped). */
  wallMs?: number;
  /** Median CPU ms per call. */
  cpuMs?: number;
  /** Timed calls. */
  reps?: number;
  /** FLOPs per call, from bench/flops.ts. */
  flops?: number;
  /** WASM heap high-water mark after the case, MiB. */
  heapMiB?: number | null;
  /** PyTorch CPU reference ms for the same call (issue #7). */
  torchMs?: number;
  /** Load average when the case ended. */
  load?: number;
  /** Anything else: errors, throughput, why it was skipped. */
  note?: string;
}

/** A titled table with optional text under the title. */
export interface Section {
  /** Heading. */
  title: string;
  /** Paragraphs before the table. */
  text?: string[];
  /** Rows. */
  rows: Row[];
}

/** The whole document. */
export interface Results {
  /** H1 title. */
  title: string;
  /** Lines under the title (machine, how it was measured). */
  preamble: string[];
  /** Sections in order. */
  sections: Section[];
}

function ms(v: number | undefined): string {
  if (v === undefined) return "–";
  return v >= 1000
    ? `${(v / 1000).toFixed(2)} s`
    : v >= 10
    ? `${v.toFixed(0)} ms`
    : `${v.toFixed(2)} ms`;
}

function row(r: Row): string {
  const gflop = r.flops === undefined ? "–" : (r.flops / 1e9).toFixed(r.flops < 1e10 ? 2 : 1);
  const rate = (t: number | undefined): string =>
    r.flops === undefined || t === undefined ? "–" : (r.flops / t / 1e6).toFixed(1);
  const ratio = r.torchMs === undefined || r.wallMs === undefined
    ? "–"
    : `${(r.wallMs / r.torchMs).toFixed(2)}×`;
  return `| ${r.name} | ${ms(r.wallMs)} | ${ms(r.cpuMs)} | ${r.reps ?? "–"} | ${gflop} | ${
    rate(r.wallMs)
  } | ${rate(r.cpuMs)} | ${r.heapMiB == null ? "–" : r.heapMiB.toFixed(0)} | ${
    ms(r.torchMs)
  } | ${ratio} | ${r.load === undefined ? "–" : r.load.toFixed(2)} | ${r.note ?? ""} |`;
}

/**
 * The markdown text.
 *
 * @example
 * ```ts
 * // await Deno.writeTextFile("bench/RESULTS.md", renderResults(results));
 * ```
 */
export function renderResults(results: Results): string {
  const out = [`# ${results.title}`, "", ...results.preamble, ""];
  for (const s of results.sections) {
    out.push(`## ${s.title}`, "");
    if (s.text) out.push(...s.text, "");
    out.push(
      "| case | wall/call | CPU/call | n | GFLOP | GFLOP/s (wall) | GFLOP/s (CPU) | WASM heap MiB | PyTorch | ours ÷ PyTorch | load | notes |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
      ...s.rows.map(row),
      "",
    );
  }
  return out.join("\n");
}

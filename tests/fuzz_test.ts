/**
 * The parsers under fuzzing (tools/fuzz.ts): a short seeded run of every
 * parser, the regression corpus replayed, reproducibility, and proof that
 * the runner really catches each kind of failure it reports (using targets
 * that misbehave on purpose), so "zero failures" means something.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readCorpus } from "../tools/fuzz/corpus.ts";
import type { Failure, FailureKind } from "../tools/fuzz/protocol.ts";
import { Rng } from "../tools/fuzz/rng.ts";
import { fuzz, replay } from "../tools/fuzz/runner.ts";
import { TARGETS } from "../tools/fuzz/targets/mod.ts";
import { BAD } from "./_fuzz_faulty_targets.ts";

const CORPUS = new URL("./fuzz_corpus", import.meta.url).pathname;
const FAULTY = new URL("./_fuzz_faulty_targets.ts", import.meta.url).href;
/** Fixed, so the suite tries the same inputs everywhere; `deno task fuzz` draws new seeds. */
const SEED = 20_240_925;

function explain(failures: readonly Failure[]): string {
  return failures.map((f) => `${f.parser} input ${f.caseName ?? f.index}: ${f.kind}: ${f.detail}`)
    .join("\n");
}

Deno.test("fuzz: 300 mutated inputs per parser each load or raise a typed library error", async () => {
  const reports = await fuzz({
    seed: SEED,
    iterations: 300,
    seconds: 120,
    parsers: [...TARGETS.keys()],
    // A busy CI machine must not turn a 200 ms input into a "slow" failure; hangs still end at 20 s.
    slowMs: 10_000,
  });
  assert.deepEqual(reports.map((r) => r.parser), [...TARGETS.keys()]);
  for (const r of reports) {
    assert.equal(r.failures.length, 0, explain(r.failures));
    assert.equal(r.tried, 300, `${r.parser} ran every input`);
    assert.equal(r.loads + r.typed, r.tried);
    // Mutations must reach both outcomes, or the run proves little.
    assert(r.loads > 0 && r.typed > 0, `${r.parser}: ${r.loads} loaded, ${r.typed} refused`);
  }
});

Deno.test("fuzz: every input that ever failed now loads or raises a typed error", async () => {
  let total = 0;
  for (const parser of TARGETS.keys()) {
    const cases = await readCorpus(CORPUS, parser);
    if (cases.length === 0) continue;
    total += cases.length;
    const r = await replay(parser, cases);
    assert.equal(r.failures.length, 0, explain(r.failures));
    assert.equal(r.tried, cases.length);
  }
  assert(total >= 10, `the corpus holds the regression cases (${total})`);
});

Deno.test("fuzz: an input is a pure function of seed, parser and index", async () => {
  for (const target of TARGETS.values()) {
    const seeds = await target.seeds();
    const make = (seed: number, i: number) =>
      target.mutate(Rng.derive(seed, target.name, i), seeds);
    for (let i = 0; i < 20; i++) assert.deepEqual(make(7, i), make(7, i), `${target.name} ${i}`);
    const distinct = new Set(
      Array.from({ length: 20 }, (_, i) => make(7, i).join(",")),
    );
    assert(distinct.size > 10, `${target.name}: inputs differ (${distinct.size} of 20)`);
  }
});

Deno.test("fuzz: hangs, crashes, untyped errors, allocations, stray rejections and slow inputs are all caught", async () => {
  const expected: Record<string, FailureKind> = {
    hang: "hang",
    crash: "crash",
    untyped: "untyped",
    allocation: "allocation",
    wrapped_allocation: "allocation",
    uncaught: "uncaught",
    slow: "slow",
  };
  const iterations = 12;
  const reports = await fuzz({
    seed: 3,
    iterations,
    seconds: 120,
    parsers: Object.keys(expected),
    slowMs: 150,
    hangMs: 1000,
    targets: FAULTY,
  });
  for (const r of reports) {
    // The faulty targets' inputs are one byte: rebuild them to know which ones misbehave.
    const bytes = Array.from({ length: iterations }, (_, i) => Rng.derive(3, r.parser, i).int(4));
    const bad = bytes.flatMap((b, i) => (b === BAD ? [i] : []));
    assert(bad.length > 0, `${r.parser}: the seed gives at least one bad input`);
    assert.deepEqual(
      r.failures.map((f) => [f.index, f.kind]),
      bad.map((i) => [i, expected[r.parser]]),
      r.parser,
    );
    assert(r.failures.every((f) => f.input.length === 1 && f.input[0] === BAD), r.parser);
    assert.equal(r.tried, iterations, `${r.parser}: the run went on past each failure`);
    assert.equal(
      r.typed,
      bytes.filter((b) => b === 2).length + (r.parser === "wrapped_allocation" ? bad.length : 0),
    );
  }
});

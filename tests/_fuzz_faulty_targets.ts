/**
 * Test helper: fuzz targets that misbehave on purpose (hang, throw a
 * non-library error, allocate far past their budget, leave an unhandled
 * rejection behind, run slowly, kill their process), so the fuzz tests can prove the runner
 * catches every kind of failure it claims to. An input is one byte; byte
 * 0 misbehaves, anything else loads or is refused with a typed error.
 *
 * @module
 */

import { ConfigError } from "../lib/errors.ts";
import type { Rng } from "../tools/fuzz/rng.ts";
import type { FuzzTarget } from "../tools/fuzz/target.ts";

/** The byte that makes every faulty target misbehave. */
export const BAD = 0;

function target(name: string, misbehave: () => unknown): FuzzTarget<Uint8Array> {
  return {
    name,
    ext: "bin",
    seeds: () => Promise.resolve([new Uint8Array([1])]),
    // One input in four is bad.
    mutate: (rng: Rng) => new Uint8Array([rng.int(4)]),
    async run(input) {
      if (input[0] === BAD) {
        await misbehave();
        return;
      }
      if (input[0]! % 2 === 0) throw new ConfigError("even byte", { file: "x" });
    },
    allocationBudget: () => 1024 * 1024,
  };
}

/** Faulty targets by name. */
export const TARGETS: ReadonlyMap<string, FuzzTarget<Uint8Array>> = new Map([
  [
    "hang",
    target("hang", () => {
      while (true) { /* spins until the runner terminates the worker */ }
    }),
  ],
  [
    "untyped",
    target("untyped", () => {
      throw new TypeError("cannot read properties of undefined");
    }),
  ],
  ["allocation", target("allocation", () => new Float64Array(1e9))],
  [
    "wrapped_allocation",
    target("wrapped_allocation", () => {
      try {
        return new Uint8Array(2 ** 30);
      } catch (cause) {
        // A parser that wraps every error must not hide the overrun.
        throw new ConfigError("wrapped", { cause });
      }
    }),
  ],
  [
    "uncaught",
    target("uncaught", () => {
      void Promise.reject(new Error("stray rejection"));
    }),
  ],
  ["crash", target("crash", () => Deno.exit(134))],
  [
    "slow",
    target("slow", () => {
      const end = performance.now() + 300;
      while (performance.now() < end) { /* busy */ }
    }),
  ],
].map(([name, t]) => [name as string, t as FuzzTarget<Uint8Array>]));

/**
 * What the fuzzer needs of each parser: valid seed inputs, a mutator, the
 * call that loads an input the way the library would, and how much memory
 * an input may justify.
 *
 * @example
 * ```ts
 * import type { FuzzTarget } from "./target.ts";
 * const echo: FuzzTarget<Uint8Array> = {
 *   name: "echo",
 *   ext: "bin",
 *   seeds: () => Promise.resolve([new Uint8Array(1)]),
 *   mutate: (_rng, seeds) => seeds[0]!.slice(),
 *   run: () => Promise.resolve(),
 *   allocationBudget: (n) => 1024 + n,
 * };
 * ```
 *
 * @module
 */

import type { Rng } from "./rng.ts";

/** One parser under test; `S` is its seed type (bytes, or a parsed form mutations start from). */
export interface FuzzTarget<S = Uint8Array> {
  /** The parser's name, as `--parser` takes it and as the corpus folder is named. */
  readonly name: string;
  /** File extension of saved corpus cases. */
  readonly ext: string;
  /** The valid inputs mutations start from (small fixtures and crafted files). */
  seeds(): Promise<S[]>;
  /** A new input derived from the seeds; a pure function of `rng`'s state. */
  mutate(rng: Rng, seeds: readonly S[]): Uint8Array;
  /** Loads `input` as the library would; resolves when it loads, rejects when it does not. */
  run(input: Uint8Array): Promise<void>;
  /** The most bytes loading an input of `inputBytes` may allocate. */
  allocationBudget(inputBytes: number): number;
}

/**
 * 64 MiB: room for tables, decoders and JSON, whatever the input.
 *
 * @example
 * ```ts
 * import { BASE_BUDGET } from "./target.ts";
 * const budget = (n: number) => BASE_BUDGET + 16 * n;
 * ```
 */
export const BASE_BUDGET = 64 * 2 ** 20;

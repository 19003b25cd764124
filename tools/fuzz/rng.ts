/**
 * The fuzzer's seeded random numbers: sfc32, seeded by hashing the run seed,
 * the parser name and the input's index together, so input `i` of a parser
 * is the same on every run with that seed, whatever ran before it. That is
 * what makes a failure reproducible from `--seed S --parser P` alone, and
 * lets a hung worker be restarted at `i + 1`.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = Rng.derive(42, "safetensors", 7).int(1000);
 * const b = Rng.derive(42, "safetensors", 7).int(1000);
 * console.log(a === b); // true
 * ```
 *
 * @module
 */

/** 32-bit FNV-1a over the UTF-8 text of `parts`, mixed once more (murmur3's finaliser). */
function hash32(text: string, salt: number): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A small, fast, seedable generator (sfc32); not for cryptography.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * console.log(Rng.derive(1, "png", 0).int(10) < 10); // true
 * ```
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Seeds the four state words directly; prefer {@link Rng.derive}. */
  constructor(a: number, b: number, c: number, d: number) {
    this.#a = a >>> 0;
    this.#b = b >>> 0;
    this.#c = c >>> 0;
    this.#d = d >>> 0;
    // sfc32 needs a few rounds before its output is well mixed.
    for (let i = 0; i < 12; i++) this.next();
  }

  /**
   * The generator for one input: a pure function of the run seed and the
   * parts that name the input.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const rng = Rng.derive(1, "png", 0);
   * console.log(rng.float() < 1); // true
   * ```
   */
  static derive(seed: number, ...parts: readonly (string | number)[]): Rng {
    const text = `${seed}\u0000${parts.join("\u0000")}`;
    return new Rng(hash32(text, 1), hash32(text, 2), hash32(text, 3), hash32(text, 4));
  }

  /**
   * The next 32-bit unsigned integer.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(Rng.derive(0).next() >= 0); // true
   * ```
   */
  next(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /**
   * A float in [0, 1).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const x = Rng.derive(3).float();
   * console.log(x >= 0 && x < 1); // true
   * ```
   */
  float(): number {
    return this.next() / 2 ** 32;
  }

  /**
   * An integer in [0, n) (0 when n <= 0).
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(Rng.derive(3).int(6) < 6); // true
   * ```
   */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /**
   * True with probability `p`.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(Rng.derive(3).chance(0)); // false
   * ```
   */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /**
   * One item of a non-empty list.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(["a", "b"].includes(Rng.derive(3).pick(["a", "b"]))); // true
   * ```
   */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /**
   * A length biased towards small values (most mutations are local), up to `max`.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * console.log(Rng.derive(3).smallLength(16) <= 16); // true
   * ```
   */
  smallLength(max: number): number {
    const cap = Math.max(1, max);
    return Math.min(cap, Math.floor(2 ** (this.float() * Math.log2(cap + 1))));
  }
}

/**
 * Format-blind byte mutations, the AFL family: truncation, bit flips,
 * random and "interesting" bytes and integers (0, -1, 2^31, 2^63, ... in
 * both byte orders), inserted, deleted and duplicated ranges, and splicing
 * with a second input. Each returns a new array; the input is never
 * changed. The structure-aware mutators of each target build on these.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { mutateBytes } from "./bytes.ts";
 * const out = mutateBytes(Rng.derive(1), new Uint8Array([1, 2, 3]), new Uint8Array([9]));
 * console.log(out instanceof Uint8Array); // true
 * ```
 *
 * @module
 */

import type { Rng } from "./rng.ts";

/** One mutation: a new input from `input` (and, for splicing, `other`). */
export type ByteMutation = (rng: Rng, input: Uint8Array, other: Uint8Array) => Uint8Array;

/**
 * Values that sit on the edges parsers get wrong: zero, signs, powers of two, saturated fields.
 *
 * @example
 * ```ts
 * import { INTERESTING } from "./bytes.ts";
 * console.log(INTERESTING.includes(0xffffffffn)); // true
 * ```
 */
export const INTERESTING: readonly bigint[] = [
  0n,
  1n,
  2n,
  7n,
  8n,
  0x7fn,
  0x80n,
  0xffn,
  0x100n,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x10000n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x1fffffffffffffn,
  0x20000000000000n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffffffffffn,
];

/**
 * Writes `value` (wrapped to `width` bytes) at `offset`, little- or big-endian.
 *
 * @example
 * ```ts
 * import { writeInt } from "./bytes.ts";
 * const b = new Uint8Array(4);
 * writeInt(b, 0, 4, 0x01020304n, true);
 * console.log(b); // Uint8Array [4, 3, 2, 1]
 * ```
 */
export function writeInt(
  bytes: Uint8Array,
  offset: number,
  width: number,
  value: bigint,
  littleEndian: boolean,
): void {
  for (let k = 0; k < width && offset + k < bytes.length; k++) {
    const byte = Number((value >> BigInt(8 * k)) & 0xffn);
    bytes[offset + (littleEndian ? k : width - 1 - k)] = byte;
  }
}

/**
 * An integer worth planting in a field of `width` bytes: an interesting value
 * or one off from it.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { interestingInt } from "./bytes.ts";
 * console.log(typeof interestingInt(Rng.derive(1), 4)); // "bigint"
 * ```
 */
export function interestingInt(rng: Rng, width: number): bigint {
  const mask = (1n << BigInt(8 * width)) - 1n;
  const base = rng.pick(INTERESTING) + BigInt(rng.pick([0, 0, 0, 1, -1]));
  return base & mask;
}

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const truncate: ByteMutation = (rng, input) =>
  input.slice(0, rng.chance(0.5) ? rng.int(input.length) : input.length - rng.smallLength(64));

const flipBits: ByteMutation = (rng, input) => {
  const out = input.slice();
  for (let n = rng.smallLength(8); n > 0 && out.length > 0; n--) {
    out[rng.int(out.length)]! ^= 1 << rng.int(8);
  }
  return out;
};

const setBytes: ByteMutation = (rng, input) => {
  const out = input.slice();
  for (let n = rng.smallLength(8); n > 0 && out.length > 0; n--) {
    out[rng.int(out.length)] = rng.chance(0.5) ? rng.int(256) : rng.pick([0, 0x7f, 0x80, 0xff]);
  }
  return out;
};

const setInteger: ByteMutation = (rng, input) => {
  const out = input.slice();
  const width = rng.pick([1, 2, 4, 8]);
  writeInt(out, rng.int(out.length), width, interestingInt(rng, width), rng.chance(0.7));
  return out;
};

const insertBytes: ByteMutation = (rng, input) => {
  const at = rng.int(input.length + 1);
  const n = rng.smallLength(256);
  const fill = rng.chance(0.5) ? randomBytes(rng, n) : new Uint8Array(n).fill(rng.int(256));
  return concat(input.subarray(0, at), fill, input.subarray(at));
};

const deleteRange: ByteMutation = (rng, input) => {
  const at = rng.int(input.length);
  return concat(input.subarray(0, at), input.subarray(at + rng.smallLength(256)));
};

const duplicateRange: ByteMutation = (rng, input) => {
  const at = rng.int(input.length);
  const piece = input.subarray(at, at + rng.smallLength(512));
  const to = rng.int(input.length + 1);
  const copies = rng.chance(0.1) ? rng.smallLength(64) : 1;
  return concat(input.subarray(0, to), ...Array(copies).fill(piece), input.subarray(to));
};

/** The head of one input and the tail of the other, or a piece of the other pasted over. */
const splice: ByteMutation = (rng, input, other) => {
  if (rng.chance(0.5)) {
    return concat(
      input.subarray(0, rng.int(input.length + 1)),
      other.subarray(rng.int(other.length)),
    );
  }
  const out = input.slice();
  const at = rng.int(out.length);
  const from = rng.int(other.length);
  out.set(other.subarray(from, from + Math.min(rng.smallLength(1024), out.length - at)), at);
  return out;
};

const MUTATIONS: readonly ByteMutation[] = [
  truncate,
  flipBits,
  flipBits,
  setBytes,
  setInteger,
  setInteger,
  insertBytes,
  deleteRange,
  duplicateRange,
  splice,
];

/**
 * One to four stacked byte mutations of `input` (`other` is the splice partner).
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { mutateBytes } from "./bytes.ts";
 * const seed = new TextEncoder().encode('{"a": 1}');
 * console.log(mutateBytes(Rng.derive(5), seed, seed).length >= 0); // true
 * ```
 */
export function mutateBytes(rng: Rng, input: Uint8Array, other: Uint8Array): Uint8Array {
  let out = input;
  for (let n = 1 + rng.int(rng.chance(0.7) ? 1 : 4); n > 0; n--) {
    out = rng.pick(MUTATIONS)(rng, out, other);
  }
  return out === input ? input.slice() : out;
}

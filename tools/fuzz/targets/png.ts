/**
 * Fuzz target: PNG input images, read with `decodeImage`. Mutations: bytes,
 * and the IHDR fields and chunk lengths set to edge values (huge or zero
 * width and height, odd bit depths and colour types, interlacing), so
 * "decompression bomb" headers are tried as well as broken data.
 *
 * @example
 * ```ts
 * import { pngTarget } from "./png.ts";
 * const seeds = await pngTarget.seeds();
 * await pngTarget.run(seeds[0]!);
 * ```
 *
 * @module
 */

import { encode } from "fast-png";
import { decodeImage } from "../../../lib/image.ts";
import { interestingInt, mutateBytes, writeInt } from "../bytes.ts";
import type { Rng } from "../rng.ts";
import { pickTwo, readAll, SHARED_DIR } from "../seeds.ts";
import { BASE_BUDGET, type FuzzTarget } from "../target.ts";

/** Small images in each colour type and depth the decoder handles. */
function craftedSeeds(): Uint8Array[] {
  const pixels = (n: number, max: number): Uint8Array =>
    Uint8Array.from({ length: n }, (_, i) => (i * 37) % (max + 1));
  const wide = (n: number): Uint16Array => Uint16Array.from({ length: n }, (_, i) => i * 4099);
  return [
    encode({ width: 4, height: 3, data: pixels(36, 255), channels: 3, depth: 8 }),
    encode({ width: 3, height: 3, data: pixels(36, 255), channels: 4, depth: 8 }),
    encode({ width: 5, height: 2, data: pixels(10, 255), channels: 1, depth: 8 }),
    encode({ width: 2, height: 2, data: pixels(8, 255), channels: 2, depth: 8 }),
    encode({ width: 2, height: 2, data: wide(12), channels: 3, depth: 16 }),
    // Sub-byte depths take rows packed into whole bytes.
    encode({ width: 9, height: 2, data: pixels(4, 255), channels: 1, depth: 1 }),
    encode({ width: 3, height: 2, data: pixels(4, 255), channels: 1, depth: 4 }),
    encode({
      width: 3,
      height: 2,
      data: pixels(6, 2),
      depth: 8,
      channels: 1,
      palette: [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
    }),
  ];
}

/** Offsets of each chunk's length field. */
function chunkStarts(png: Uint8Array): number[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const starts: number[] = [];
  for (let at = 8; at + 8 <= png.length && starts.length < 64;) {
    starts.push(at);
    at += 12 + view.getUint32(at, false);
  }
  return starts;
}

function mutateHeader(rng: Rng, seed: Uint8Array): Uint8Array {
  const out = seed.slice();
  if (rng.chance(0.6) && out.length >= 29) {
    // IHDR data: width, height (u32 BE), bit depth, colour type, compression, filter, interlace.
    const [offset, width] = rng.pick([[16, 4], [20, 4], [24, 1], [25, 1], [26, 1], [27, 1], [
      28,
      1,
    ]]);
    const value = width === 1 && rng.chance(0.6)
      ? BigInt(rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255]))
      : interestingInt(rng, width!);
    writeInt(out, offset!, width!, value, false);
  } else {
    const starts = chunkStarts(out);
    if (starts.length > 0) writeInt(out, rng.pick(starts), 4, interestingInt(rng, 4), false);
  }
  return out;
}

function mutate(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  const [seed, other] = pickTwo(rng, seeds);
  return rng.chance(0.4) ? mutateHeader(rng, seed) : mutateBytes(rng, seed, other);
}

/**
 * The PNG target.
 *
 * @example
 * ```ts
 * import { pngTarget } from "./png.ts";
 * console.log(pngTarget.name);
 * ```
 */
export const pngTarget: FuzzTarget<Uint8Array> = {
  name: "png",
  ext: "png",
  async seeds() {
    return [
      ...craftedSeeds(),
      ...await readAll([`${SHARED_DIR}/models/emoji-sd-tiny-samples/reference.png`]),
    ];
  },
  mutate,
  run: (input) => {
    decodeImage(input, "fuzz.png");
    return Promise.resolve();
  },
  // Deflate expands at most ~1032:1, and 1-bit grey becomes 24 bits of RGB: the decoder's
  // inflated and unfiltered copies plus the RGB image come to at most ~26 times that.
  allocationBudget: (n) => BASE_BUDGET + 30 * 1100 * n,
};

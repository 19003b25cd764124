/**
 * Which algorithm {@link Conv2d} uses for stride-1, padding-1 3×3
 * convolutions: XNNPACK's direct convolution, or Winograd F(2,3) / F(4,3)
 * (models/layers/winograd.ts), on the WASM backend only (other backends
 * always convolve directly). `auto` picks F(4,3) for layers where it was
 * measured faster on WASM and whose transformed weights stay small (see
 * {@link winogradTileFor}); `direct` turns the fast path off, which tests use
 * as the reference. The starting value comes from `DIFFUSERS_CONV`
 * (`auto`, `direct`, `winograd2`, `winograd4`), else `auto`.
 *
 * @example
 * ```ts
 * import { setConvAlgorithm } from "./conv_algorithm.ts";
 * const previous = setConvAlgorithm("direct");
 * // ... run the plain path ...
 * setConvAlgorithm(previous);
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { ArgumentError } from "../../lib/errors.ts";
import { getEnv } from "../../lib/env.ts";
import { winogradLiveBytes, type WinogradTile } from "./winograd.ts";

/** `auto` (per layer), `direct`, or Winograd with 2×2 or 4×4 output tiles for every eligible layer. */
export type ConvAlgorithm = "auto" | "direct" | "winograd2" | "winograd4";

const ALGORITHMS: readonly ConvAlgorithm[] = ["auto", "direct", "winograd2", "winograd4"];

function parse(value: string, source: string): ConvAlgorithm {
  if ((ALGORITHMS as readonly string[]).includes(value)) return value as ConvAlgorithm;
  throw new ArgumentError(
    `${source}: unknown conv algorithm ${JSON.stringify(value)}; valid: ${ALGORITHMS.join(", ")}`,
  );
}

const fromEnv = getEnv("DIFFUSERS_CONV");
let current: ConvAlgorithm = fromEnv === undefined ? "auto" : parse(fromEnv, "DIFFUSERS_CONV");

/**
 * Sets the algorithm for every later conv call; returns the previous one.
 *
 * @example
 * ```ts
 * import { setConvAlgorithm } from "./conv_algorithm.ts";
 * setConvAlgorithm("winograd2");
 * ```
 */
export function setConvAlgorithm(algorithm: ConvAlgorithm): ConvAlgorithm {
  const previous = current;
  current = parse(algorithm, "setConvAlgorithm");
  return previous;
}

/**
 * The algorithm in force.
 *
 * @example
 * ```ts
 * import { getConvAlgorithm } from "./conv_algorithm.ts";
 * console.log(getConvAlgorithm()); // "auto"
 * ```
 */
export function getConvAlgorithm(): ConvAlgorithm {
  return current;
}

/**
 * Most bytes of transformed Winograd kernels kept at once (1 GiB; XNNPACK
 * keeps a packed copy of the same size). Past it, layers convolve directly.
 */
export const WINOGRAD_BUDGET_BYTES = 2 ** 30;

/**
 * Most live tensor bytes plus twice the Winograd kernels (theirs and the
 * packed copies) for a new Winograd layer (2.5 GiB): the rest of the 4 GiB
 * WASM heap is left to XNNPACK's packed weights and the activations.
 * Models whose weights alone come near it (SD's UNet, 3.4 GB) convolve
 * directly.
 */
export const WINOGRAD_HEAP_BYTES = 2.5 * 2 ** 30;

/** A stride-1 3×3 conv layer's shape, as seen at its call. */
export interface ConvShape {
  /** Output height (= input height). */
  height: number;
  /** Output width. */
  width: number;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
}

/**
 * The Winograd tile size for an eligible conv layer (stride 1, 3×3,
 * padding 1) under the current algorithm, or null to convolve directly.
 * `auto` uses F(4,3) on WASM when both channel counts are at least 32 and
 * the map is at least 32×32: the saving per byte of transformed kernel
 * (36·Cin·Cout floats, 4× the kernel, twice over with XNNPACK's packed copy)
 * grows with the map, so small maps with many channels (SD's 1280-channel
 * 16² and 8² levels) stay direct and the 4 GiB WASM heap is not spent on
 * them. Layers whose weights are not made yet also need room under
 * {@link WINOGRAD_BUDGET_BYTES} and {@link WINOGRAD_HEAP_BYTES}.
 *
 * @example
 * ```ts
 * import { winogradTileFor } from "./conv_algorithm.ts";
 * winogradTileFor({ height: 64, width: 64, inChannels: 256, outChannels: 256 }, false); // 4 on wasm
 * ```
 */
export function winogradTileFor(shape: ConvShape, cached: boolean): WinogradTile | null {
  if (current === "direct" || tf.getBackend() !== "wasm") return null;
  const { height, width, inChannels, outChannels } = shape;
  const tile: WinogradTile | null = current === "winograd2" ? 2 : current === "winograd4" ||
      (inChannels >= 32 && outChannels >= 32 && height >= 32 && width >= 32)
    ? 4
    : null;
  if (tile === null || cached) return tile;
  const bytes = 4 * (tile + 2) ** 2 * inChannels * outChannels;
  const kernels = winogradLiveBytes() + bytes;
  const heap = tf.memory().numBytes + 2 * kernels;
  return kernels <= WINOGRAD_BUDGET_BYTES && heap <= WINOGRAD_HEAP_BYTES ? tile : null;
}

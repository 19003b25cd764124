/**
 * The kernel {@link Parameter} of a 3×3 conv, which also owns the conv's
 * Winograd-transformed weights: made on first use from the current value,
 * and freed when the value is replaced or disposed (so
 * `module.dispose()` frees them too).
 *
 * @example
 * ```ts
 * import { ready } from "../../lib/backend.ts";
 * import { ConvKernel } from "./conv_kernel.ts";
 * await ready("wasm");
 * const k = new ConvKernel([8, 8, 3, 3], "conv", { kind: "uniform", bound: 0.1 });
 * k.assignFromTorch(new Float32Array(8 * 8 * 9));
 * const u = k.winograd(4); // WinogradWeights, cached until k changes
 * k.dispose();
 * ```
 *
 * @module
 */

import type { tf } from "../../lib/tf.ts";
import { Parameter } from "./module.ts";
import { type WinogradTile, WinogradWeights } from "./winograd.ts";

/**
 * A conv kernel parameter with a cached Winograd transform.
 *
 * @example
 * ```ts
 * import { ConvKernel } from "./conv_kernel.ts";
 * const k = new ConvKernel([64, 64, 3, 3], "conv", { kind: "uniform", bound: 0.04 });
 * ```
 */
export class ConvKernel extends Parameter {
  #winograd: WinogradWeights | null = null;

  /**
   * Whether the transform for `tile` is made for the current value and backend.
   *
   * @example
   * ```ts
   * // if (!conv.weight.hasWinograd(4)) console.log("first call builds it");
   * ```
   */
  hasWinograd(tile: WinogradTile): boolean {
    const cached = this.#winograd;
    return cached !== null && cached.tile === tile && cached.usable;
  }

  /**
   * The transformed kernel for `tile`, made now if there is none for the
   * current value, tile and backend. Needs the wasm backend.
   *
   * @example
   * ```ts
   * // const u = conv.weight.winograd(4);
   * ```
   */
  winograd(tile: WinogradTile): WinogradWeights {
    if (this.hasWinograd(tile)) return this.#winograd!;
    this.#release();
    this.#winograd = WinogradWeights.fromKernel(this.value as tf.Tensor4D, tile);
    return this.#winograd;
  }

  /** Replaces the value and drops the transform made from the old one. */
  override assign(t: tf.Tensor): void {
    this.#release();
    super.assign(t);
  }

  /** Frees the value and the transform. */
  override dispose(): void {
    this.#release();
    super.dispose();
  }

  #release(): void {
    this.#winograd?.dispose();
    this.#winograd = null;
  }
}

/**
 * The one tfjs namespace the library runs on, with the CPU, WASM and WebGPU
 * backends registered. Import `tf` from here (or from `mod.ts`), never from
 * `@tensorflow/tfjs-core` directly, so there is one engine in the process.
 *
 * Under Deno, tfjs-core loads its CommonJS build, where the chained tensor
 * methods (`x.reshape(...)`) are not installed: use the functional API
 * (`tf.reshape(x, ...)`) everywhere.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * const y = tf.add(tf.scalar(1), tf.scalar(2));
 * console.log((await y.data())[0]); // 3
 * y.dispose();
 * ```
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgpu";

export { tf };

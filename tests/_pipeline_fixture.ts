/**
 * Reading pipeline fixtures: stored NCHW tensors as NHWC inputs, and a step
 * callback that records every step's latents in the fixtures' NCHW order.
 *
 * @module
 */

import { tf } from "../lib/tf.ts";
import { type SafetensorsFile, toFloat32 } from "../lib/weights/safetensors.ts";
import type { StepInfo } from "../lib/pipelines/pipeline.ts";

/** A stored NCHW feature map as an NHWC tensor. */
export function nhwc(file: SafetensorsFile, key: string): tf.Tensor4D {
  const t = file.tensors.get(key)!;
  const [b, c, h, w] = t.shape as [number, number, number, number];
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(toFloat32(t), [b, c, h, w]), [0, 2, 3, 1])
  ) as tf.Tensor4D;
}

/** Records every step's latents in NCHW order (as the fixtures store them). */
export function recorder(): { steps: Float32Array[]; onStep: (info: StepInfo) => Promise<void> } {
  const steps: Float32Array[] = [];
  return {
    steps,
    onStep: async ({ latents }) => {
      const nchw = tf.transpose(latents, [0, 3, 1, 2]);
      steps.push((await nchw.data()) as Float32Array);
      nchw.dispose();
    },
  };
}

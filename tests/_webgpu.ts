/**
 * What the WebGPU test files share: the skip switch, running a test body on
 * the webgpu backend (back to the test backend afterwards), and the last test
 * of each file, which destroys the GPU device before the process exits.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describeAdapter, ready, shutdownWebGPU, tf } from "../lib/backend.ts";
import { TEST_BACKEND } from "./_helpers.ts";

/** `DIFFUSERS_SKIP_WEBGPU=1` skips the WebGPU tests where there is no adapter. */
export const SKIP_WEBGPU: boolean = Deno.env.get("DIFFUSERS_SKIP_WEBGPU") === "1";

/** Runs `fn` on the webgpu backend, then `cleanup` and a return to the test backend. */
export async function onWebGPU(fn: () => Promise<void>, cleanup?: () => void): Promise<void> {
  assert(
    (await describeAdapter()).available,
    "no WebGPU adapter (set DIFFUSERS_SKIP_WEBGPU=1 to skip)",
  );
  assert.equal(await ready("webgpu"), "webgpu");
  try {
    await fn();
  } finally {
    cleanup?.();
    await ready(TEST_BACKEND);
  }
}

/** Registers the file's last test: `shutdownWebGPU()` destroys the device (twice is harmless). */
export function testShutdownWebGPU(): void {
  Deno.test({
    name: "webgpu: shutdownWebGPU() destroys the device before the process exits",
    ignore: SKIP_WEBGPU,
    async fn() {
      await shutdownWebGPU();
      const instances = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
      assert.equal(instances.webgpu, undefined);
      await shutdownWebGPU(); // nothing left to do
    },
  });
}

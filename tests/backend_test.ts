import assert from "node:assert/strict";
import {
  describeAdapter,
  ensureReady,
  pickBackend,
  ready,
  releaseGpuBufferPool,
  tf,
} from "../lib/backend.ts";
import { ArgumentError } from "../lib/errors.ts";
import { assertClose, assertThrowsTyped, TEST_BACKEND } from "./_helpers.ts";
import { testShutdownWebGPU } from "./_webgpu.ts";

async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const old = Deno.env.get(name);
  Deno.env.set(name, value);
  try {
    return await fn();
  } finally {
    if (old === undefined) Deno.env.delete(name);
    else Deno.env.set(name, old);
  }
}

Deno.test("backend: auto prefers a hardware adapter, else wasm", async () => {
  const adapter = await describeAdapter();
  const expected = adapter.available && !adapter.software ? "webgpu" : "wasm";
  assert.equal(await pickBackend("auto"), expected, `adapter: ${adapter.description}`);
});

Deno.test("backend: DIFFUSERS_BACKEND overrides auto, an explicit choice overrides both", async () => {
  await withEnv("DIFFUSERS_BACKEND", "cpu", async () => {
    assert.equal(await pickBackend(), "cpu");
    assert.equal(await pickBackend("auto"), "cpu");
    assert.equal(await pickBackend("wasm"), "wasm");
  });
  await withEnv("DIFFUSERS_BACKEND", "tpu", async () => {
    await assertThrowsTyped(
      () => pickBackend(),
      ArgumentError,
      /DIFFUSERS_BACKEND: unknown backend "tpu"/,
    );
  });
});

Deno.test("backend: ready() switches between cpu and wasm", async () => {
  try {
    assert.equal(await ready("cpu"), "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.equal(await ready("wasm"), "wasm");
    assert.equal(tf.getBackend(), "wasm");
  } finally {
    await ready(TEST_BACKEND);
  }
});

Deno.test({
  name: "backend: webgpu (software adapter here) computes what wasm computes; pool release",
  // Deno exposes Mesa's software adapter on these machines; set DIFFUSERS_SKIP_WEBGPU=1 where there is none.
  ignore: Deno.env.get("DIFFUSERS_SKIP_WEBGPU") === "1",
  fn: async () => {
    const x = tf.randomNormal([1, 8, 8, 4], 0, 1, "float32", 1) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 4, 6], 0, 1, "float32", 2) as tf.Tensor4D;
    const a = tf.randomNormal([16, 24], 0, 1, "float32", 3);
    const b = tf.randomNormal([24, 8], 0, 1, "float32", 4);
    const compute = () =>
      tf.tidy(() => [
        tf.conv2d(x, w, 1, "same"),
        tf.matMul(a, b),
        tf.softmax(tf.reshape(x, [64, 4])),
      ]);
    const reference = await Promise.all(
      compute().map(async (t) => {
        const v = await t.data();
        t.dispose();
        return v;
      }),
    );
    assert(
      (await describeAdapter()).available,
      "no WebGPU adapter (set DIFFUSERS_SKIP_WEBGPU=1 to skip)",
    );
    try {
      assert.equal(await ready("webgpu"), "webgpu");
      const before = tf.memory().numTensors;
      const outs = compute();
      for (let i = 0; i < outs.length; i++) {
        assertClose(await outs[i]!.data(), reference[i]!, 1e-5, `op ${i}`);
      }
      tf.dispose(outs);
      assert.equal(tf.memory().numTensors, before);
      assert(releaseGpuBufferPool() > 0, "disposed outputs should leave pooled buffers");
      assert.equal(releaseGpuBufferPool(), 0);
    } finally {
      await ready(TEST_BACKEND);
      tf.dispose([x, w, a, b]);
    }
  },
});

Deno.test("backend: ensureReady() in a fresh process starts a backend (regression)", async () => {
  const code = `import { ensureReady, tf } from "${
    new URL("../lib/backend.ts", import.meta.url).href
  }";
    const name = await ensureReady();
    tf.dispose(tf.scalar(1));
    console.log(name, tf.getBackend());`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp", DIFFUSERS_BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "wasm wasm");
});

Deno.test("backend: ensureReady() keeps a backend the user chose", async () => {
  try {
    await ready("cpu");
    assert.equal(await ensureReady(), "cpu");
    assert.equal(await ensureReady("auto"), "cpu");
    assert.equal(await ensureReady("wasm"), "wasm");
  } finally {
    await ready(TEST_BACKEND);
  }
});

testShutdownWebGPU();

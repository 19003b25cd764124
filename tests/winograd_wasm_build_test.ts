/**
 * The WebAssembly embedded in models/layers/winograd_simd/wasm_bytes.ts is
 * what `deno task build:wasm` makes from assembly/transforms.ts with the
 * pinned AssemblyScript compiler (a few seconds): the source and the bytes
 * cannot drift apart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { compileWinogradWasm, renderWasmModule } from "../tools/build_wasm.ts";

Deno.test("Winograd SIMD: wasm_bytes.ts equals a fresh compile of assembly/transforms.ts", async () => {
  const plain = await compileWinogradWasm(false);
  const shared = await compileWinogradWasm(true);
  const embedded = await Deno.readTextFile(
    new URL("../models/layers/winograd_simd/wasm_bytes.ts", import.meta.url),
  );
  assert.equal(embedded, renderWasmModule(plain, shared), "run `deno task build:wasm`");
});

/**
 * The first module of the page bundle: points tfjs-wasm at the `.wasm` files
 * that `deno task bundle` copies beside `diffusers.js`. It must run before
 * the library's modules, since the first tensor op starts the backend.
 *
 * @example
 * ```ts
 * import "./bundle_wasm_paths.ts"; // as the bundle's first import
 * ```
 *
 * @module
 */

import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";

// In the bundle, import.meta.url is the bundle's own URL.
setWasmPaths(new URL("./", import.meta.url).href);

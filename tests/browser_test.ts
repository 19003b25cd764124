/**
 * The web example in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): builds the bundle, serves the page and the ddim_tiny
 * fixture pipeline as a URL folder, generates 10 DDIM steps from seed 0 on
 * each browser backend and compares the page's pixels with diffusers'
 * image. Screenshots go to `out/browser/`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { bundle } from "../tools/bundle.ts";
import { serveExample } from "../tools/serve.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { FIXTURES_DIR, readTensors } from "./_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OUT = `${REPO}/out/browser`;
// The flags that give a working (SwiftShader) WebGPU adapter on these machines.
const ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

/** What the page leaves on `window.diffusersResult`. */
interface PageResult {
  width?: number;
  height?: number;
  data?: number[];
  backend?: string;
  error?: string;
}

/** ‖a − b‖ / ‖b‖ over 8-bit pixels. */
function relativeError(actual: readonly number[], expected: readonly number[]): number {
  let num = 0, den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

async function chromiumPath(): Promise<string> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `${CHROMIUM} is missing: the browser test needs Debian's chromium (apt-get install -y chromium)`,
    );
  }
  return CHROMIUM;
}

Deno.test({
  name: "browser: the web example reproduces diffusers' DDIM image in headless Chromium",
  // playwright-core keeps pipes and timers of its own across steps.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const executablePath = await chromiumPath();
    await bundle();
    const fixture = `${FIXTURES_DIR}/pipelines/ddim_tiny`;
    const ref = await readTensors(`${fixture}/expected.safetensors`);
    const expected = Array.from(
      toFloat32(ref.tensors.get("image")!),
      (v) => Math.round(Math.min(1, Math.max(0, v)) * 255),
    );
    const server = serveExample({
      port: 0,
      roots: {
        "/dist/": `${REPO}/dist`,
        "/fixtures/": `${FIXTURES_DIR}/pipelines`,
        "/": `${REPO}/examples/web`,
      },
    });
    const browser = await chromium.launch({ executablePath, headless: true, args: ARGS });
    await Deno.mkdir(OUT, { recursive: true });
    try {
      for (const backend of ["wasm", "webgpu"]) {
        await t.step(backend, async () => {
          const page = await browser.newPage();
          try {
            const query = "model=fixtures/ddim_tiny&steps=10&seed=0&scheduler=DDIMScheduler" +
              `&backend=${backend}&run=1`;
            await page.goto(`http://127.0.0.1:${server.addr.port}/?${query}`);
            await page.waitForFunction(() => "diffusersResult" in globalThis, undefined, {
              timeout: 240_000,
            });
            const result = await page.evaluate(() =>
              (globalThis as unknown as { diffusersResult: PageResult }).diffusersResult
            );
            await page.screenshot({ path: `${OUT}/ddim_tiny_${backend}.png` });
            assert(!result.error, `page error: ${result.error}`);
            assert(result.backend === backend, `ran on ${result.backend}, not ${backend}`);
            const err = relativeError(result.data!, expected);
            console.log(`${backend}: ${result.width}x${result.height}, relative error ${err}`);
            assert(err <= 1e-3, `relative error ${err} > 1e-3`);
          } finally {
            await page.close();
          }
        });
      }
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});

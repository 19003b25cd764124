/**
 * The web example in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): builds the bundle, serves the page and the ddim_tiny
 * fixture pipeline as a URL folder, generates 10 DDIM steps from seed 0 on
 * each browser backend and compares the page's pixels with diffusers'
 * image; then loads the same pipeline by Hub id from a local Hub server
 * (tests/hub_server.ts, another origin, like huggingface.co) and checks that
 * a second visit is served from the browser's cache. Screenshots go to
 * `out/browser/`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import { bundle } from "../tools/bundle.ts";
import { serveExample } from "../tools/serve.ts";
import { toFloat32 } from "../lib/weights/safetensors.ts";
import { FIXTURES_DIR, readTensors } from "./_helpers.ts";
import { startHubServer } from "./hub_server.ts";

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

/** Opens `url` in a new page, waits for the page's result and takes a screenshot. */
async function runPage(
  browser: Browser | BrowserContext,
  url: string,
  screenshot?: string,
): Promise<PageResult> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction(() => "diffusersResult" in globalThis, undefined, {
      timeout: 240_000,
    });
    if (screenshot) await page.screenshot({ path: screenshot });
    return await page.evaluate(() =>
      (globalThis as unknown as { diffusersResult: PageResult }).diffusersResult
    );
  } finally {
    await page.close();
  }
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
    const hub = await startHubServer({ repos: { "test/ddim-tiny": fixture } });
    const browser = await chromium.launch({ executablePath, headless: true, args: ARGS });
    await Deno.mkdir(OUT, { recursive: true });
    const page = `http://127.0.0.1:${server.addr.port}/?steps=10&seed=0&scheduler=DDIMScheduler`;
    const checkImage = (result: PageResult, backend: string): void => {
      assert(!result.error, `page error: ${result.error}`);
      assert(result.backend === backend, `ran on ${result.backend}, not ${backend}`);
      const err = relativeError(result.data!, expected);
      console.log(`${backend}: ${result.width}x${result.height}, relative error ${err}`);
      assert(err <= 1e-3, `relative error ${err} > 1e-3`);
    };
    try {
      for (const backend of ["wasm", "webgpu"]) {
        await t.step(`${backend}, model folder URL`, async () => {
          const result = await runPage(
            browser,
            `${page}&model=./fixtures/ddim_tiny&backend=${backend}&run=1`,
            `${OUT}/ddim_tiny_${backend}.png`,
          );
          checkImage(result, backend);
        });
      }
      await t.step("wasm, Hub id from a Hub endpoint, cached by the page", async () => {
        const context = await browser.newContext();
        try {
          const url = `${page}&model=test/ddim-tiny&endpoint=${hub.url}&backend=wasm&run=1`;
          checkImage(await runPage(context, url, `${OUT}/ddim_tiny_hub.png`), "wasm");
          const weights = "/test/ddim-tiny/resolve/main/unet/diffusion_pytorch_model.safetensors";
          const fetched = () => hub.requests.filter((r) => r.path === weights).length;
          assert.equal(
            fetched(),
            1,
            "the page fetched the UNet weights from the Hub endpoint once",
          );
          // A second visit reads every file from the browser's Cache API.
          const before = hub.requests.length;
          checkImage(await runPage(context, url), "wasm");
          assert.deepEqual(hub.requests.slice(before).map((r) => r.path), []);
        } finally {
          await context.close();
        }
      });
    } finally {
      await browser.close();
      await server.shutdown();
      await hub.close();
    }
  },
});

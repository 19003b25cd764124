/**
 * The example page's logic: reads the form, calls `generate()` from the
 * bundle, shows download and step progress, a preview every few steps and
 * the final image. The final pixels are also left on `globalThis.diffusersResult`
 * (for the browser test).
 *
 * @module
 */

import { generate } from "../dist/diffusers.js";

const $ = (id) => document.getElementById(id);
const PREVIEW_EVERY = 2;

/** Fills the form from the query string (`?model=…&endpoint=…&steps=…&backend=…&run=1`). */
function applyQuery() {
  const query = new URLSearchParams(location.search);
  for (const id of ["prompt", "model", "endpoint", "steps", "seed", "scheduler", "backend"]) {
    if (query.has(id)) $(id).value = query.get(id);
  }
  return query.has("run");
}

/** Draws 8-bit RGB pixels on the canvas. */
function draw(width, height, rgb) {
  const canvas = $("canvas");
  canvas.width = width;
  canvas.height = height;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
}

/**
 * A preview of a step's sample: a 3-channel sample in [-1, 1] is the image
 * itself; latents show their first three channels, stretched to [0, 255]
 * (decoding them every few steps would cost a VAE pass).
 */
async function preview(latents) {
  const [, height, width, channels] = latents.shape;
  const data = await latents.data();
  const rgb = new Uint8Array(width * height * 3);
  let lo = -1, hi = 1;
  if (channels !== 3) {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < width * height * channels; i++) {
      lo = Math.min(lo, data[i]);
      hi = Math.max(hi, data[i]);
    }
  }
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const v = data[p * channels + Math.min(c, channels - 1)];
      rgb[p * 3 + c] = Math.round(((v - lo) / (hi - lo || 1)) * 255);
    }
  }
  draw(width, height, rgb);
}

/**
 * The model argument: a Hub id stays an id (the library fetches it from the
 * endpoint); anything that looks like a path or URL becomes an absolute URL.
 */
function modelArgument(value) {
  const isPath = /^(\.{1,2}\/|\/|[a-z][a-z0-9+.-]*:)/i.test(value);
  return isPath ? new URL(value, location.href).href : value;
}

async function run() {
  $("go").disabled = true;
  const progress = $("progress");
  const model = modelArgument($("model").value.trim());
  progress.removeAttribute("value"); // indeterminate until the first download or step
  $("status").textContent = "loading the model";
  try {
    const result = await generate({
      model,
      endpoint: $("endpoint").value || undefined,
      prompt: $("prompt").value,
      steps: Number($("steps").value),
      seed: Number($("seed").value),
      scheduler: $("scheduler").value || undefined,
      backend: $("backend").value,
      eta: 0,
      onDownload: ({ file, loaded, total }) => {
        progress.value = total ? loaded / total : 0;
        const mb = (n) => (n / 1e6).toFixed(1);
        $("status").textContent = `downloading ${file.split("/").slice(-2).join("/")} ` +
          `(${mb(loaded)} / ${mb(total)} MB)`;
      },
      onStep: async ({ step, numSteps, latents }) => {
        progress.value = (step + 1) / numSteps;
        $("status").textContent = `step ${step + 1} / ${numSteps}`;
        if ((step + 1) % PREVIEW_EVERY === 0 && step + 1 < numSteps) await preview(latents);
      },
    });
    const image = result.images[0];
    draw(image.width, image.height, image.data);
    const ms = Math.round(result.timings.generateMs);
    $("status").textContent = `done on ${result.backend} in ${ms} ms (seed ${result.seed})`;
    globalThis.diffusersResult = {
      width: image.width,
      height: image.height,
      data: Array.from(image.data),
      backend: result.backend,
      timings: result.timings,
    };
  } catch (e) {
    $("status").textContent = `error: ${e.message}`;
    globalThis.diffusersResult = { error: String(e.stack ?? e) };
  } finally {
    $("go").disabled = false;
  }
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
if (applyQuery()) run();

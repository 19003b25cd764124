import assert from "node:assert/strict";
import { resolveComponentDir, selectPipelineFiles } from "../lib/model_source.ts";
import { UNet2DModel } from "../models/unet_2d.ts";
import { startHubServer } from "./hub_server.ts";
import { parseModelIndex, readModelIndex } from "../lib/pipelines/diffusion_pipeline.ts";
import { ConfigError, NotFoundError, PathEscapeError } from "../lib/errors.ts";
import { assertThrowsTyped, FIXTURES_DIR } from "./_helpers.ts";

const SD_REPO = [
  ".gitattributes",
  "README.md",
  "model_index.json",
  "v1-5-pruned.ckpt",
  "v1-5-pruned-emaonly.safetensors",
  "feature_extractor/preprocessor_config.json",
  "safety_checker/config.json",
  "safety_checker/model.safetensors",
  "safety_checker/pytorch_model.bin",
  "safety_checker/model.fp16.safetensors",
  "scheduler/scheduler_config.json",
  "text_encoder/config.json",
  "text_encoder/model.safetensors",
  "text_encoder/model.fp16.safetensors",
  "text_encoder/pytorch_model.bin",
  "text_encoder/flax_model.msgpack",
  "tokenizer/merges.txt",
  "tokenizer/special_tokens_map.json",
  "tokenizer/tokenizer_config.json",
  "tokenizer/vocab.json",
  "unet/config.json",
  "unet/diffusion_pytorch_model.safetensors",
  "unet/diffusion_pytorch_model.fp16.safetensors",
  "unet/diffusion_pytorch_model.bin",
  "unet/diffusion_pytorch_model.non_ema.bin",
  "vae/config.json",
  "vae/diffusion_pytorch_model.bin",
  "vae/diffusion_pytorch_model.fp16.bin",
];

Deno.test("select: SD 1.5 layout picks configs, tokenizer files and safetensors, nothing at the root", () => {
  const files = selectPipelineFiles(SD_REPO, {});
  assert.deepEqual(files.sort(), [
    "feature_extractor/preprocessor_config.json",
    "model_index.json",
    "safety_checker/config.json",
    "safety_checker/model.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.bin",
  ]);
});

Deno.test("select: a variant is preferred where it exists, with fallback to the plain files", () => {
  const files = selectPipelineFiles(SD_REPO, { variant: "fp16" }).filter((f) =>
    /\.(bin|safetensors)$/.test(f)
  );
  assert.deepEqual(files.sort(), [
    "safety_checker/model.fp16.safetensors",
    "text_encoder/model.fp16.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.fp16.bin",
  ]);
});

Deno.test("select: shards come with their index; flat repos keep root weights", () => {
  const sharded = [
    "model_index.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors.index.json",
    "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
    "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
    "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
    "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
  ];
  assert.deepEqual(
    selectPipelineFiles(sharded, {}).filter((f) => f.startsWith("unet/diffusion")).sort(),
    [
      "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
      "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
      "unet/diffusion_pytorch_model.safetensors.index.json",
    ],
  );
  assert.deepEqual(
    selectPipelineFiles(sharded, { variant: "fp16" }).filter((f) => f.startsWith("unet/diffusion"))
      .sort(),
    [
      "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
      "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
      "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
    ],
  );
  const flat = ["README.md", "config.json", "diffusion_pytorch_model.bin", "scheduler_config.json"];
  assert.deepEqual(selectPipelineFiles(flat, {}).sort(), [
    "config.json",
    "diffusion_pytorch_model.bin",
    "scheduler_config.json",
  ]);
});

Deno.test("model_index: components, [null, null], options; bad names and shapes are typed errors", async () => {
  const index = parseModelIndex({
    _class_name: "StableDiffusionPipeline",
    _diffusers_version: "0.6.0",
    unet: ["diffusers", "UNet2DConditionModel"],
    safety_checker: [null, null],
    requires_safety_checker: true,
  });
  assert.equal(index.className, "StableDiffusionPipeline");
  assert.deepEqual(index.components, {
    unet: ["diffusers", "UNet2DConditionModel"],
    safety_checker: null,
  });
  await assertThrowsTyped(
    () => parseModelIndex({ unet: ["diffusers", "UNet2DModel"] }),
    ConfigError,
    /_class_name/,
  );
  await assertThrowsTyped(
    () => parseModelIndex({ _class_name: "P", "../unet": ["diffusers", "UNet2DModel"] }),
    PathEscapeError,
    /not a plain folder name/,
  );
  await assertThrowsTyped(
    () => parseModelIndex({ _class_name: "P", "..": ["diffusers", "UNet2DModel"] }),
    PathEscapeError,
  );
  await assertThrowsTyped(
    () => parseModelIndex({ _class_name: "P", unet: ["diffusers", 3] }),
    ConfigError,
    /unet: expected \[library, class\]/,
  );
});

Deno.test("model_index: a flat repo (config.json + scheduler_config.json at the root) reads as DDPMPipeline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(
      `${FIXTURES_DIR}/pipelines/ddpm_tiny/unet/config.json`,
      `${dir}/config.json`,
    );
    await Deno.copyFile(
      `${FIXTURES_DIR}/pipelines/ddpm_tiny/scheduler/scheduler_config.json`,
      `${dir}/scheduler_config.json`,
    );
    const index = await readModelIndex(dir);
    assert.equal(index.className, "DDPMPipeline");
    assert.equal(index.flat, true);
    assert.deepEqual(index.components.unet, ["diffusers", "UNet2DModel"]);
    await Deno.remove(`${dir}/scheduler_config.json`);
    await assertThrowsTyped(
      () => readModelIndex(dir),
      NotFoundError,
      /not a diffusers pipeline folder/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("component dirs: subfolders that leave the model folder are refused", async () => {
  const root = `${FIXTURES_DIR}/pipelines/ddpm_tiny`;
  assert.equal(await resolveComponentDir(root, { subfolder: "unet" }), `${root}/unet`);
  for (const subfolder of ["../ddim_tiny/unet", "/etc", "unet/../../x", "..\\x"]) {
    await assertThrowsTyped(
      () => resolveComponentDir(root, { subfolder }),
      PathEscapeError,
      /subfolder/,
    );
    await assertThrowsTyped(() => UNet2DModel.fromPretrained(root, { subfolder }), PathEscapeError);
  }
});

Deno.test("component dirs: UNet2DModel.fromPretrained by Hub id and subfolder fetches only that component", async () => {
  const cache = await Deno.makeTempDir({ prefix: "hf-cache-" });
  const server = await startHubServer({
    repos: { "fixtures/ddpm": `${FIXTURES_DIR}/pipelines/ddpm_tiny` },
  });
  try {
    const unet = await UNet2DModel.fromPretrained("fixtures/ddpm", {
      subfolder: "unet",
      cacheDir: cache,
      endpoint: server.url,
    });
    assert.equal(unet.parameterCount(), 253_123);
    unet.dispose();
    const paths = server.requests.map((r) => r.path).filter((p) => p.includes("/resolve/"));
    assert(paths.every((p) => p.includes("/unet/")), `only unet files: ${paths.join(", ")}`);
    assert(!paths.some((p) => p.endsWith(".bin")));
  } finally {
    await server.close();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("select: with the pipeline's folders, unused components (safety checker) are not fetched", () => {
  const folders = ["vae", "text_encoder", "tokenizer", "unet", "scheduler"];
  const files = selectPipelineFiles(SD_REPO, { folders });
  assert(files.includes("model_index.json"));
  assert(files.includes("unet/diffusion_pytorch_model.safetensors"));
  assert(
    !files.some((f) => f.startsWith("safety_checker/") || f.startsWith("feature_extractor/")),
    files.join(),
  );
});

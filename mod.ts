/**
 * diffusers-tfjs: Hugging Face diffusers pipelines on TensorFlow.js, for
 * Deno and the browser. Same models, same configs, same schedulers, same
 * seeds, same pictures as diffusers.
 *
 * As a library:
 *
 * ```ts
 * import { generate } from "./mod.ts";
 * const { images } = await generate({ model: "google/ddpm-cat-256", steps: 50,
 *   scheduler: "DDIMScheduler", seed: 0 });
 * await images[0].save("cat.png");
 * ```
 *
 * Importing this module starts the default backend (`DIFFUSERS_BACKEND`,
 * else `auto`), so `tf` can be used right away; `ready("wasm" | "webgpu" |
 * "cpu")` switches.
 *
 * As a program: `deno run -A mod.ts --model google/ddpm-cat-256 --steps 50 --out cat.png`
 * (`--help` lists the options).
 *
 * @module
 */

export { tf } from "./lib/tf.ts";
import { ensureReady as ensureReadyOnImport } from "./lib/backend.ts";
export {
  type BackendChoice,
  type BackendName,
  describeAdapter,
  ensureReady,
  pickBackend,
  ready,
  releaseGpuBufferPool,
  shutdownWebGPU,
} from "./lib/backend.ts";
export { setWgslKernels, wgslKernelsEnabled } from "./models/layers/webgpu/wgsl_kernels.ts";
export * from "./lib/errors.ts";
export {
  type ConfigDict,
  type ConfigValue,
  parseConfigJson,
  stringifyConfigJson,
} from "./lib/config.ts";
export {
  defaultGenerator,
  Generator,
  manualSeed,
  rand,
  randn,
  randnTensor,
  type RandomDType,
  type RandomOptions,
  type RandomTensorOptions,
} from "./lib/random.ts";
export { decodeImage, DiffusionImage, imagesFromTensor } from "./lib/image.ts";
export { loadSafetensors } from "./lib/weights/load_safetensors.ts";
export {
  parseSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
  serializeSafetensors,
} from "./lib/weights/safetensors.ts";
export { type Scheduler, type SchedulerOutput, type StepOptions } from "./schedulers/scheduler.ts";
export { DDPMScheduler } from "./schedulers/ddpm.ts";
export { DDIMScheduler } from "./schedulers/ddim.ts";
export { PNDMScheduler } from "./schedulers/pndm.ts";
export { LMSDiscreteScheduler } from "./schedulers/lms_discrete.ts";
export { EulerDiscreteScheduler } from "./schedulers/euler_discrete.ts";
export { EulerAncestralDiscreteScheduler } from "./schedulers/euler_ancestral_discrete.ts";
export { HeunDiscreteScheduler } from "./schedulers/heun_discrete.ts";
export { KDPM2DiscreteScheduler } from "./schedulers/k_dpm_2_discrete.ts";
export { DPMSolverMultistepScheduler } from "./schedulers/dpmsolver_multistep.ts";
export { UniPCMultistepScheduler } from "./schedulers/unipc_multistep.ts";
export { schedulerClass, schedulerFromConfig, SCHEDULERS } from "./schedulers/registry.ts";
export {
  UNet2DModel,
  type UNet2DModelConfig,
  type UNet2DModelLoadOptions,
} from "./models/unet_2d.ts";
export {
  DiffusionPipeline,
  type FromPretrainedOptions,
} from "./lib/pipelines/diffusion_pipeline.ts";
export { DDPMPipeline } from "./lib/pipelines/ddpm.ts";
export { DDIMPipeline } from "./lib/pipelines/ddim.ts";
export { PNDMPipeline } from "./lib/pipelines/pndm.ts";
export { LDMTextToImagePipeline } from "./lib/pipelines/latent_diffusion.ts";
export { LDMPipeline } from "./lib/pipelines/latent_diffusion_uncond.ts";
export { StableDiffusionPipeline } from "./lib/pipelines/stable_diffusion.ts";
export { StableDiffusionImg2ImgPipeline } from "./lib/pipelines/stable_diffusion_img2img.ts";
export { UNet2DConditionModel } from "./models/unet_2d_condition.ts";
export { AutoencoderKL } from "./models/autoencoder_kl.ts";
export { VQModel } from "./models/vq_model.ts";
export { CLIPTextModel } from "./models/clip_text.ts";
export { LDMBertModel } from "./models/ldm_bert.ts";
export {
  BertTokenizer,
  CLIPTokenizer,
  loadTokenizer,
  type Tokenizer,
} from "./lib/tokenizers/mod.ts";
export type { PipelineOutput, StepCallback, StepInfo } from "./lib/pipelines/pipeline.ts";
export {
  DEFAULT_MODEL,
  generate,
  type GenerateOptions,
  type GenerateResult,
} from "./lib/generate.ts";

// Start the default backend (DIFFUSERS_BACKEND, else auto) on import, so `tf` is usable at once;
// `ready("cpu")` and friends still switch later.
await ensureReadyOnImport();

if (import.meta.main) {
  const { main } = await import("./lib/cli.ts");
  Deno.exit(await main(Deno.args));
}

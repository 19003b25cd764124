/**
 * Backend choice. `auto` picks WebGPU when a hardware adapter exists; when
 * the only adapter is a software one (lavapipe, llvmpipe, SwiftShader) it
 * picks WASM, which is about 6x faster there; with no adapter at all, WASM,
 * then CPU. `DIFFUSERS_BACKEND=webgpu|wasm|cpu` (or the `backend` argument)
 * overrides the choice.
 *
 * WebGPU is started with an adapter and device created here rather than by
 * tfjs' own factory, which passes a malformed `requiredFeatures` list that
 * Deno's WebGPU rejects.
 *
 * @example
 * ```ts
 * import { ready, tf } from "./backend.ts";
 * const name = await ready("wasm");
 * console.log(name, tf.getBackend()); // "wasm" "wasm"
 * ```
 *
 * @module
 */

import { tf } from "./tf.ts";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { ArgumentError, DiffusersError } from "./errors.ts";
import { getEnv } from "./env.ts";
import { logger } from "./log.ts";

export { tf };

/** A concrete tfjs backend. */
export type BackendName = "webgpu" | "wasm" | "cpu";

/** A backend request: a concrete backend, or `auto`. */
export type BackendChoice = BackendName | "auto";

const BACKEND_NAMES: readonly BackendName[] = ["webgpu", "wasm", "cpu"];

/** What {@link describeAdapter} found about the WebGPU adapter. */
export interface AdapterReport {
  /** Whether `navigator.gpu` returned an adapter. */
  available: boolean;
  /** Whether that adapter is a software renderer. */
  software: boolean;
  /** The adapter's description (vendor, device), for reports. */
  description: string;
}

interface GpuLike {
  requestAdapter(options?: unknown): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: {
    description?: string;
    vendor?: string;
    architecture?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  requestDevice(descriptor?: unknown): Promise<unknown>;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|softpipe/i;

function gpu(): GpuLike | undefined {
  return (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
}

let adapterPromise: Promise<AdapterLike | null> | undefined;

function requestAdapter(): Promise<AdapterLike | null> {
  adapterPromise ??= (async () => {
    try {
      return (await gpu()?.requestAdapter({ powerPreference: "high-performance" })) ?? null;
    } catch (e) {
      logger.debug(`navigator.gpu.requestAdapter failed: ${e}`);
      return null;
    }
  })();
  return adapterPromise;
}

/**
 * Reports the WebGPU adapter this process would use.
 *
 * @example
 * ```ts
 * import { describeAdapter } from "./backend.ts";
 * const a = await describeAdapter();
 * console.log(a.available ? a.description : "no WebGPU adapter");
 * ```
 */
export async function describeAdapter(): Promise<AdapterReport> {
  const adapter = await requestAdapter();
  if (!adapter) return { available: false, software: false, description: "none" };
  const info = adapter.info ?? {};
  const description = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ");
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) ||
    SOFTWARE_ADAPTER.test(description);
  return { available: true, software, description: description || "unknown adapter" };
}

let webgpuRegistered = false;

/** Replaces tfjs' webgpu factory with one that uses our own adapter and device. */
function registerWebGPU(): void {
  if (webgpuRegistered) return;
  webgpuRegistered = true;
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = await requestAdapter();
    if (!adapter) throw new DiffusersError("WebGPU requested but no adapter is available");
    const features = ["timestamp-query", "shader-f16"].filter((f) => adapter.features.has(f));
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    // deno-lint-ignore no-explicit-any
    return new WebGPUBackend(device as any, adapter.info as any);
  }, 3);
}

function parseChoice(value: string, source: string): BackendChoice {
  const v = value.toLowerCase();
  if (v === "auto" || (BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendChoice;
  throw new ArgumentError(
    `${source}: unknown backend ${JSON.stringify(value)}; valid: auto, ${BACKEND_NAMES.join(", ")}`,
  );
}

/**
 * Resolves `auto` (or `DIFFUSERS_BACKEND`) to a concrete backend name
 * without starting it.
 *
 * @example
 * ```ts
 * import { pickBackend } from "./backend.ts";
 * console.log(await pickBackend("auto")); // "wasm" on a machine with only a software adapter
 * ```
 */
export async function pickBackend(choice?: BackendChoice): Promise<BackendName> {
  const env = getEnv("DIFFUSERS_BACKEND");
  const wanted = choice && choice !== "auto"
    ? choice
    : env
    ? parseChoice(env, "DIFFUSERS_BACKEND")
    : "auto";
  if (wanted !== "auto") return parseChoice(wanted, "backend") as BackendName;
  const adapter = await describeAdapter();
  if (adapter.available && !adapter.software) return "webgpu";
  return "wasm";
}

/**
 * Starts a backend and makes it tfjs' current one. With no argument, uses
 * `DIFFUSERS_BACKEND` or `auto`. If `auto` fails to start WASM it falls back
 * to CPU. Returns the backend that is active.
 *
 * @example
 * ```ts
 * import { ready } from "./backend.ts";
 * await ready();        // auto
 * await ready("cpu");   // explicit
 * ```
 */
export async function ready(choice?: BackendChoice): Promise<BackendName> {
  registerWebGPU();
  const name = await pickBackend(choice);
  started = await start(name, choice);
  return started;
}

/** The backend the last {@link ready} call started, if any. */
let started: BackendName | undefined;

/**
 * Starts a backend only if needed: an explicit `choice` is always honoured;
 * with none, a backend already started by {@link ready} is kept (so a user's
 * earlier `ready("cpu")` is not overridden by a pipeline's default).
 *
 * @example
 * ```ts
 * import { ensureReady, ready } from "./backend.ts";
 * await ready("cpu");
 * console.log(await ensureReady()); // "cpu"
 * ```
 */
export async function ensureReady(choice?: BackendChoice): Promise<BackendName> {
  const noPreference = choice === undefined || choice === "auto";
  if (noPreference && started !== undefined && started === tf.getBackend()) return started;
  return await ready(choice);
}

async function start(name: BackendName, choice?: BackendChoice): Promise<BackendName> {
  if (tf.getBackend() === name) return name;
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    logger.debug(`backend ${name} failed to start: ${e}`);
  }
  if (!ok) {
    const explicit = choice !== undefined && choice !== "auto";
    if (explicit || getEnv("DIFFUSERS_BACKEND") !== undefined || name === "cpu") {
      throw new DiffusersError(`the ${name} backend could not be started`);
    }
    logger.warning(`the ${name} backend could not be started; falling back to cpu`);
    await tf.setBackend("cpu");
    return "cpu";
  }
  await tf.ready();
  return name;
}

interface PooledBufferManager {
  freeBuffers: Map<unknown, { destroy(): void }[]>;
}

/**
 * Frees the GPU buffers tfjs' WebGPU backend keeps pooled after tensors are
 * disposed (the pool never shrinks on its own). A no-op on other backends.
 * Returns the number of buffers destroyed.
 *
 * @example
 * ```ts
 * import { releaseGpuBufferPool } from "./backend.ts";
 * const destroyed = releaseGpuBufferPool();
 * ```
 */
export function releaseGpuBufferPool(): number {
  if (tf.getBackend() !== "webgpu") return 0;
  const manager = (tf.backend() as unknown as { bufferManager?: PooledBufferManager })
    .bufferManager;
  if (!manager) return 0;
  let n = 0;
  // Empty each list but keep the keys: releaseBuffer() returns early for a size whose key is gone.
  for (const list of manager.freeBuffers.values()) {
    for (const buffer of list.splice(0)) {
      buffer.destroy();
      n++;
    }
  }
  return n;
}

/**
 * Shuts the WebGPU backend down, if it was started: waits for submitted
 * work, removes the backend from tfjs (its tensors are gone) and destroys
 * the GPU device, so the driver is torn down while the program still runs
 * rather than at process exit (Mesa's software Vulkan driver has aborted
 * there). A later `ready("webgpu")` starts a new device.
 *
 * @example
 * ```ts
 * import { ready, shutdownWebGPU } from "./backend.ts";
 * await ready("wasm");
 * await shutdownWebGPU(); // nothing to do: WebGPU never started
 * ```
 */
export async function shutdownWebGPU(): Promise<void> {
  // The engine's instances (tf.findBackend would start a backend that is only registered).
  const instances = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  const backend = instances.webgpu as
    | { device?: { queue: { onSubmittedWorkDone(): Promise<void> }; destroy(): void } }
    | undefined;
  const device = backend?.device;
  if (!device) return;
  await device.queue.onSubmittedWorkDone();
  tf.removeBackend("webgpu");
  device.destroy();
  webgpuRegistered = false;
  registerWebGPU();
}

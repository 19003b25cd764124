/**
 * A tiny `nn.Module`: parameters and child modules found by reflection, so a
 * layer's field names *are* its PyTorch state-dict keys (tinygrad style) and
 * checkpoints load with no renaming table.
 *
 * A field holding a {@link Parameter} or a {@link Module} contributes
 * `field` to the dotted path; an array of modules contributes `field.0`,
 * `field.1`, ... (nulls are skipped but keep their index, like an
 * `nn.ModuleList` entry of `None`). That is why layer fields are snake_case
 * (`time_emb_proj`, `to_out`): they mirror diffusers' attribute names.
 *
 * Each parameter declares its PyTorch shape and how a PyTorch tensor maps
 * into tfjs' layout (conv OIHW → HWIO, linear [out, in] → [in, out]), once,
 * at load time. {@link Module.loadStateDict} checks every key and shape
 * before it assigns anything, and reports every missing key, unexpected key
 * and shape mismatch in one {@link WeightsError}.
 *
 * @example
 * ```ts
 * import { Module, Parameter } from "./module.ts";
 * class Scale extends Module {
 *   readonly weight = new Parameter([4], "none", { kind: "constant", value: 1 });
 * }
 * const m = new Scale().initialize(0);
 * console.log(m.namedParameters().map(([k]) => k), m.parameterCount()); // ["weight"] 4
 * m.dispose();
 * ```
 *
 * @module
 */

import { tf } from "../../lib/tf.ts";
import { DiffusersError, WeightsError } from "../../lib/errors.ts";
import { initValues, type ParamInit } from "./init.ts";
import { packsWeights } from "./weight_packing.ts";

/**
 * How a PyTorch tensor is laid out in tfjs: `"none"` as is, `"conv"` OIHW →
 * HWIO (tfjs' NHWC conv filter), `"linear"` [out, in] → [in, out] (so the
 * forward pass is a plain 2-D `matMul`, the fast path on WASM).
 */
export type ParamLayout = "none" | "conv" | "linear";

/** A host tensor in PyTorch layout; `data` may be a getter that decodes lazily. */
export interface HostTensor {
  /** PyTorch shape. */
  readonly shape: readonly number[];
  /** Row-major float32 values. */
  readonly data: Float32Array;
}

/** One state-dict value: a host tensor or a tfjs tensor, in PyTorch layout. */
export type WeightTensor = HostTensor | tf.Tensor;

/** Weights held in memory: PyTorch key → tensor, in PyTorch layout. */
export type WeightMap = ReadonlyMap<string, WeightTensor>;

/**
 * Weights read lazily, one tensor at a time, with every shape known up
 * front (the `StateDict` that lib/weights/state_dict.ts's `loadStateDict`
 * returns is one).
 */
export interface WeightReader {
  /** Every tensor's PyTorch shape, by key. */
  readonly entries: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  /** Reads and decodes one tensor. */
  get(name: string): Promise<{ readonly data: Float32Array | Int32Array }>;
}

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Throw on missing or unexpected keys (default true). Shape mismatches always throw. */
  strict?: boolean;
  /** The file the weights came from, named in errors. */
  file?: string;
}

/** Keys that did not match, when `strict` is false. */
export interface LoadStateDictResult {
  /** Parameters of the module with no value in the state dict (left as they were). */
  missing: string[];
  /** State-dict keys that are not parameters of the module (ignored). */
  unexpected: string[];
}

const PERMUTATIONS: Readonly<Record<ParamLayout, readonly number[] | null>> = {
  none: null,
  conv: [2, 3, 1, 0],
  linear: [1, 0],
};

/**
 * One weight: its PyTorch shape, its tfjs layout, its random init, and its
 * value once loaded or initialised.
 *
 * @example
 * ```ts
 * import { Parameter } from "./module.ts";
 * const w = new Parameter([8, 4, 3, 3], "conv", { kind: "uniform", bound: 0.1 });
 * console.log(w.shape); // [3, 3, 4, 8]
 * ```
 */
export class Parameter {
  /** Shape in PyTorch's layout (what checkpoints hold). */
  readonly torchShape: readonly number[];
  /** How the PyTorch tensor is transposed into tfjs' layout. */
  readonly layout: ParamLayout;
  /** The distribution {@link Module.initialize} fills it from. */
  readonly init: ParamInit;
  #value: tf.Tensor | null = null;

  /** `torchShape` as in PyTorch; `layout` says how it is stored here. */
  constructor(torchShape: readonly number[], layout: ParamLayout, init: ParamInit) {
    this.torchShape = Object.freeze([...torchShape]);
    this.layout = layout;
    this.init = init;
  }

  /** Shape of the stored tensor (tfjs layout). */
  get shape(): number[] {
    const perm = PERMUTATIONS[this.layout];
    return perm ? perm.map((p) => this.torchShape[p]!) : [...this.torchShape];
  }

  /** Number of elements. */
  get size(): number {
    return this.torchShape.reduce((a, b) => a * b, 1);
  }

  /** Whether a value has been loaded or initialised. */
  get loaded(): boolean {
    return this.#value !== null;
  }

  /** The stored tensor (tfjs layout); throws if nothing was loaded. */
  get value(): tf.Tensor {
    if (!this.#value) {
      throw new DiffusersError(
        "parameter has no value: load weights (loadStateDict) or call initialize() first",
      );
    }
    return this.#value;
  }

  /** Takes ownership of `t` (tfjs layout), disposing the previous value. */
  assign(t: tf.Tensor): void {
    this.#value?.dispose();
    this.#value = tf.keep(t);
  }

  /** Takes a tensor in PyTorch layout, transposed into tfjs' layout; the input is not consumed. */
  assignFromTorch(data: Float32Array | tf.Tensor): void {
    const perm = PERMUTATIONS[this.layout];
    this.assign(tf.tidy(() => {
      const t = data instanceof tf.Tensor
        ? tf.reshape(data, this.torchShape as number[])
        : tf.tensor(data, this.torchShape as number[], "float32");
      return perm ? tf.transpose(t, perm as number[]) : tf.clone(t);
    }));
  }

  /** Frees the value. */
  dispose(): void {
    this.#value?.dispose();
    this.#value = null;
  }
}

/**
 * Base class of every layer: reflection over fields gives the state-dict
 * tree; subclasses only declare fields.
 *
 * @example
 * ```ts
 * import { Module, Parameter } from "./module.ts";
 * class Pair extends Module {
 *   readonly layers: Module[] = [new Leaf(), new Leaf()];
 * }
 * class Leaf extends Module {
 *   readonly bias = new Parameter([2], "none", { kind: "constant", value: 0 });
 * }
 * console.log(new Pair().namedParameters().map(([k]) => k)); // ["layers.0.bias", "layers.1.bias"]
 * ```
 */
export abstract class Module {
  /**
   * Old checkpoint key → current key, both relative to this module. Keys of
   * the first kind are renamed on load (a current key present too wins and
   * the old one is dropped). Empty by default.
   */
  protected legacyKeys(): Readonly<Record<string, string>> {
    return {};
  }

  /**
   * Called once this module's own parameters are loaded, in a model too
   * large to hold its weights twice on WASM (see weight_packing.ts): layers
   * with matmul weights (Linear, Conv2d) keep only XNNPACK's packed copy.
   * Nothing by default.
   */
  packWeights(): void {}

  /**
   * Every parameter with its key, grouped by the module that holds it
   * directly, modules in {@link namedModules} order.
   */
  #parametersByModule(): [Module, [string, Parameter][]][] {
    return this.namedModules().map(([path, module]) => [
      module,
      module.#entries().flatMap(([name, value]) =>
        value instanceof Parameter ? [[join(path, name), value] as [string, Parameter]] : []
      ),
    ]);
  }

  /** Direct children and parameters with their local names, in declaration order. */
  #entries(): [string, Module | Parameter][] {
    const out: [string, Module | Parameter][] = [];
    for (const [name, value] of Object.entries(this)) {
      if (value instanceof Module || value instanceof Parameter) out.push([name, value]);
      else if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (item instanceof Module) out.push([`${name}.${i}`, item]);
        });
      }
    }
    return out;
  }

  /**
   * Every module of the tree with its dotted path (`""` for this one).
   *
   * @example
   * ```ts
   * // unet.namedModules().map(([k]) => k) → ["", "conv_in", "time_proj", ...]
   * ```
   */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, value] of this.#entries()) {
      if (value instanceof Module) out.push(...value.namedModules(join(prefix, name)));
    }
    return out;
  }

  /**
   * Every parameter with its PyTorch state-dict key.
   *
   * @example
   * ```ts
   * // unet.namedParameters()[0][0] → "conv_in.weight"
   * ```
   */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, value] of this.#entries()) {
      if (value instanceof Parameter) out.push([join(prefix, name), value]);
      else out.push(...value.namedParameters(join(prefix, name)));
    }
    return out;
  }

  /**
   * Number of scalar weights (PyTorch's `sum(p.numel() for p in parameters())`).
   *
   * @example
   * ```ts
   * // UNet2DModel.fromConfig(catConfig).parameterCount() → 113673219
   * ```
   */
  parameterCount(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.size, 0);
  }

  /**
   * Fills every parameter from its PyTorch-default distribution, seeded.
   *
   * @example
   * ```ts
   * // const unet = new UNet2DModel(config).initialize(0);
   * ```
   */
  initialize(seed = 0): this {
    const params = this.namedParameters();
    // WASM copies tensor data into its heap, so one scratch buffer can serve
    // every parameter: faulting in fresh pages costs as much as drawing the
    // values (SD's 3.4 GB). Other backends keep a reference to the array.
    const scratch = tf.getBackend() === "wasm"
      ? new Float32Array(params.reduce((n, [, p]) => Math.max(n, p.size), 0))
      : undefined;
    const index = new Map(params.map(([, p], i) => [p, i]));
    const pack = packsWeights(4 * this.parameterCount());
    for (const [module, own] of this.#parametersByModule()) {
      for (const [, p] of own) {
        const s = Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index.get(p)! + 1, 0x85ebca6b);
        p.assign(tf.tensor(initValues(p.init, p.size, s, scratch), p.shape, "float32"));
      }
      if (pack) module.packWeights();
    }
    return this;
  }

  /**
   * Loads PyTorch-layout tensors by key, from memory ({@link WeightMap}) or
   * lazily from files ({@link WeightReader}, one tensor in host memory at a
   * time). Checks every key and shape first (missing and unexpected keys
   * when `strict`, shapes always) and throws one {@link WeightsError} listing
   * every problem before anything is assigned. Legacy keys declared by a
   * module (see `legacyKeys`) are renamed. If reading a tensor fails, the
   * parameters assigned by this call are released again.
   *
   * @example
   * ```ts
   * // await unet.loadStateDict(new Map([["conv_in.weight", { shape: [32, 3, 3, 3], data }], ...]));
   * // await unet.loadStateDict(await loadStateDict("/models/ddpm/unet")); // lib/weights/state_dict.ts
   * ```
   */
  async loadStateDict(
    weights: WeightMap | WeightReader,
    options: LoadStateDictOptions = {},
  ): Promise<LoadStateDictResult> {
    const strict = options.strict ?? true;
    const shapes = new Map<string, readonly number[]>();
    const entries = weights instanceof Map ? weights : (weights as WeightReader).entries;
    for (const [key, t] of entries) shapes.set(key, t.shape);
    const resolved = this.#resolveLegacyKeys(shapes);
    const params = this.namedParameters();
    const expected = new Set(params.map(([k]) => k));
    const missing = params.filter(([k]) => !resolved.has(k)).map(([k]) => k);
    const unexpected = [...resolved.keys()].filter((k) => !expected.has(k)).map((k) =>
      resolved.get(k)!
    );
    const mismatchedKeys: string[] = [];
    const mismatches: string[] = [];
    for (const [key, p] of params) {
      const source = resolved.get(key);
      const shape = source === undefined ? undefined : shapes.get(source)!;
      if (shape && !sameShape(shape, p.torchShape)) {
        mismatchedKeys.push(source!);
        mismatches.push(`${source}: expected shape [${p.torchShape}], got [${shape}]`);
      }
    }
    const bad = [...(strict ? [...missing, ...unexpected] : []), ...mismatchedKeys];
    if (bad.length > 0) {
      const problems = [
        ...(strict ? [list("missing key", missing), list("unexpected key", unexpected)] : []),
        list("shape mismatch", mismatches),
      ].filter((s) => s !== "");
      throw new WeightsError(
        `state dict does not match ${this.constructor.name}: ${problems.join("; ")}`,
        { file: options.file, key: bad.length === 1 ? bad[0] : undefined },
      );
    }
    const assigned: Parameter[] = [];
    const pack = packsWeights(4 * this.parameterCount());
    try {
      for (const [module, own] of this.#parametersByModule()) {
        for (const [key, p] of own) {
          const source = resolved.get(key);
          if (source === undefined) continue;
          const data = await readTensor(weights, source);
          const n = data instanceof tf.Tensor ? data.size : data.length;
          if (n !== p.size) {
            throw new WeightsError(`holds ${n} values; shape [${p.torchShape}] needs ${p.size}`, {
              file: options.file,
              key: source,
            });
          }
          p.assignFromTorch(data);
          assigned.push(p);
        }
        // Packed as soon as loaded: the heap never holds two copies of more than one layer.
        if (pack && own.every(([, p]) => p.loaded)) module.packWeights();
      }
    } catch (e) {
      for (const p of assigned) p.dispose();
      throw e;
    }
    return { missing, unexpected };
  }

  /** Current key → key as found in the checkpoint, for every checkpoint key. */
  #resolveLegacyKeys(shapes: ReadonlyMap<string, readonly number[]>): Map<string, string> {
    const out = new Map<string, string>();
    for (const k of shapes.keys()) out.set(k, k);
    for (const [path, module] of this.namedModules()) {
      for (const [oldKey, newKey] of Object.entries(module.legacyKeys())) {
        const from = join(path, oldKey);
        const source = out.get(from);
        if (source === undefined) continue;
        out.delete(from);
        const to = join(path, newKey);
        if (!out.has(to)) out.set(to, source);
      }
    }
    return out;
  }

  /**
   * Frees every weight of the tree.
   *
   * @example
   * ```ts
   * // unet.dispose(); // tf.memory().numTensors drops by the parameter count
   * ```
   */
  dispose(): void {
    for (const [, p] of this.namedParameters()) p.dispose();
  }
}

/** One tensor's values, as float32 data or a tfjs tensor. */
async function readTensor(
  weights: WeightMap | WeightReader,
  key: string,
): Promise<Float32Array | tf.Tensor> {
  if (weights instanceof Map) {
    const t = (weights as WeightMap).get(key)!;
    return t instanceof tf.Tensor ? t : t.data;
  }
  const { data } = await (weights as WeightReader).get(key);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

function join(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}.${name}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** "2 missing keys: a, b" (at most 20 names), or "" for none. */
function list(what: string, names: readonly string[]): string {
  if (names.length === 0) return "";
  const shown = names.slice(0, 20).join(", ");
  const more = names.length > 20 ? `, ... (${names.length - 20} more)` : "";
  return `${names.length} ${what}${names.length === 1 ? "" : "s"}: ${shown}${more}`;
}

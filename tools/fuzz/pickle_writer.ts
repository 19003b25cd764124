/**
 * Writes the pickles `torch.save(state_dict)` produces (protocol 2: an
 * `OrderedDict` of `_rebuild_tensor_v2` calls over persistent storages,
 * with memo puts as torch writes them), so the fuzzer has small,
 * varied and valid checkpoints to start from.
 *
 * @example
 * ```ts
 * import { stateDictPickle } from "./pickle_writer.ts";
 * const pkl = stateDictPickle([{ name: "w", storage: "FloatStorage", key: "0", numel: 1,
 *   offset: 0, size: [1], stride: [1] }]);
 * console.log(pkl[0] === 0x80); // true (PROTO)
 * ```
 *
 * @module
 */

/** One tensor of the state dict. */
export interface PickledTensor {
  /** State-dict key. */
  name: string;
  /** Storage class in `torch`, e.g. `FloatStorage`. */
  storage: string;
  /** Storage record key (`archive/data/<key>`). */
  key: string;
  /** Elements in the storage. */
  numel: number;
  /** Offset into the storage, in elements. */
  offset: number;
  /** Shape. */
  size: number[];
  /** Stride per dimension, in elements. */
  stride: number[];
  /** Wrap the tensor in `torch._utils._rebuild_parameter` (an `nn.Parameter`). */
  parameter?: boolean;
}

class Out {
  readonly bytes: number[] = [];
  private memo = 0;
  op(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }
  put(): this {
    return this.op(0x71, this.memo++ & 0xff);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0, ...b).put();
  }
  int(n: number): this {
    if (n < 256) return this.op(0x4b, n);
    if (n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    return this.op(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff);
  }
  ints(values: readonly number[]): this {
    if (values.length === 0) return this.op(0x29);
    this.op(0x28);
    for (const v of values) this.int(v);
    return this.op(0x74).put();
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)).put();
  }
  emptyOrderedDict(): this {
    return this.global("collections", "OrderedDict").op(0x29).op(0x52).put();
  }
}

/**
 * The pickle of an `OrderedDict` holding `tensors`.
 *
 * @example
 * ```ts
 * import { stateDictPickle } from "./pickle_writer.ts";
 * console.log(stateDictPickle([]).at(-1)); // 46 (STOP)
 * ```
 */
export function stateDictPickle(tensors: readonly PickledTensor[]): Uint8Array {
  const p = new Out().op(0x80, 2).emptyOrderedDict().op(0x28);
  for (const t of tensors) {
    p.str(t.name);
    if (t.parameter) p.global("torch._utils", "_rebuild_parameter").op(0x28);
    p.global("torch._utils", "_rebuild_tensor_v2").op(0x28);
    p.op(0x28).str("storage").global("torch", t.storage).str(t.key).str("cpu").int(t.numel)
      .op(0x74).put().op(0x51).put();
    p.int(t.offset).ints(t.size).ints(t.stride).op(0x89).emptyOrderedDict().op(0x74).put()
      .op(0x52).put();
    if (t.parameter) p.op(0x89).emptyOrderedDict().op(0x74).put().op(0x52).put();
  }
  return new Uint8Array(p.op(0x75).op(0x2e).bytes);
}

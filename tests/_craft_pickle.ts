/**
 * Test helper: assembles pickles opcode by opcode, and whole PyTorch
 * checkpoints shaped like `torch.save`'s (OrderedDict of
 * `_rebuild_tensor_v2` calls over persistent storages), so tests can craft
 * both valid and malicious inputs without Python.
 *
 * @module
 */

import { craftZip, type ZipOptions } from "./_craft_zip.ts";

/** Builds a pickle; each method appends one opcode and its argument. */
export class Pickle {
  private readonly out: number[] = [];

  /** Raw opcode bytes. */
  op(...codes: number[]): this {
    this.out.push(...codes);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  mark(): this {
    return this.op(0x28);
  }
  /** BINUNICODE. */
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x58, ...le(b.byteLength, 4), ...b);
  }
  /** SHORT_BINUNICODE. */
  shortStr(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.op(0x8c, b.byteLength, ...b);
  }
  /** BININT1 / BININT2 / BININT. */
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, ...le(n, 2));
    return this.op(0x4a, ...le(n >>> 0, 4));
  }
  /** GLOBAL `module\nname\n`. */
  global(module: string, name: string): this {
    return this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  /** A tuple of ints (MARK … TUPLE). */
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.op(0x74);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  tuple(): this {
    return this.op(0x74);
  }
  reduce(): this {
    return this.op(0x52);
  }
  stop(): this {
    return this.op(0x2e);
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.out);
  }
}

function le(v: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(v / 256 ** i) & 0xff);
}

/** One tensor of a crafted checkpoint. */
export interface CraftTensor {
  name: string;
  /** e.g. `FloatStorage`. */
  storageType: string;
  key: string;
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
}

/** The pickle `torch.save(state_dict)` writes for `tensors` (an OrderedDict). */
export function stateDictPickle(tensors: readonly CraftTensor[]): Pickle {
  const p = new Pickle().proto().global("collections", "OrderedDict").emptyTuple().reduce().mark();
  for (const t of tensors) {
    p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", t.storageType).str(t.key).str("cpu").int(t.numel)
      .tuple();
    p.op(0x51).int(t.offset).ints(t.size).ints(t.stride).op(0x89);
    p.global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  }
  return p.op(0x75);
}

/** A torch-style zip: `archive/data.pkl`, `archive/data/<key>` records and `archive/version`. */
export async function torchZip(
  pickle: Uint8Array,
  storages: Readonly<Record<string, Uint8Array>> = {},
  options: ZipOptions = {},
): Promise<Uint8Array> {
  const entries: [string, Uint8Array][] = [["archive/data.pkl", pickle]];
  for (const [k, v] of Object.entries(storages)) entries.push([`archive/data/${k}`, v]);
  entries.push(["archive/version", new TextEncoder().encode("3\n")]);
  return (await craftZip(entries, options)).bytes;
}

/** Little-endian bytes of float32 values. */
export function f32(values: readonly number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

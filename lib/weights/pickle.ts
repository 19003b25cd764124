/**
 * A restricted unpickler: it decodes the binary pickle opcodes (protocols
 * 2–5) that `torch.save` emits and builds plain values, and it never runs
 * code. The only functions it calls are the allow-listed ones its caller
 * passes in (for PyTorch checkpoints, the `torch.load(weights_only=True)`
 * set in `torch_bin.ts`). Any other GLOBAL / STACK_GLOBAL is refused with a
 * {@link PickleError} naming `module.name` at the moment it is named, before
 * anything can call it; INST, OBJ, NEWOBJ, NEWOBJ_EX and the extension
 * registry are always refused. Lengths are checked against the bytes left,
 * and the stack, mark nesting and memo are bounded.
 *
 * Python values map to: `None` → `null`, bool → boolean, int → number (or
 * bigint when beyond 2^53), float → number, str → string, bytes →
 * Uint8Array, list → array, tuple → {@link PyTuple}, dict → {@link PyDict},
 * an allow-listed global → {@link PyGlobal}.
 *
 * @example
 * ```ts
 * import { PyDict, unpickle } from "./pickle.ts";
 * // {"a": 1} pickled with protocol 2
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x58, 1, 0, 0, 0, 0x61, 0x4b, 1, 0x73, 0x2e]);
 * const value = unpickle(bytes, { globals: {} });
 * console.log((value as PyDict).map.get("a")); // 1
 * ```
 *
 * @module
 */

import { PickleError } from "../errors.ts";

/** A Python tuple (kept distinct from a list, which is a JS array). */
export class PyTuple {
  /** The items. */
  readonly items: readonly unknown[];
  /** Wraps `items` (not copied). */
  constructor(items: readonly unknown[]) {
    this.items = items;
  }
}

/** Keys a dict may have: the hashable scalar types. */
export type PyKey = string | number | bigint | boolean | null;

/** A Python `dict` or `collections.OrderedDict`, in insertion order. */
export class PyDict {
  /** Items in insertion order. */
  readonly map: Map<PyKey, unknown> = new Map();
  /** The state a BUILD opcode set (an OrderedDict's `__dict__`, e.g. torch's `_metadata`). */
  state: unknown = undefined;
}

/** A function an allow-listed global stands for: REDUCE calls it with the argument tuple's items. */
export type PickleFunction = (args: readonly unknown[]) => unknown;

/** An allow-listed global as pushed by GLOBAL: its `module.name` and, if callable, its function. */
export class PyGlobal {
  /** `module.name`. */
  readonly name: string;
  /** The function REDUCE may call, or `null` for a global that is only a marker (a storage type). */
  readonly call: PickleFunction | null;
  /** `call` is `null` for globals that may be named but not called. */
  constructor(name: string, call: PickleFunction | null) {
    this.name = name;
    this.call = call;
  }
}

/** What the unpickler may touch. */
export interface UnpickleOptions {
  /**
   * The allow-list, by `module.name`: a function REDUCE may call, or `null`
   * for a global that may only be named. Everything else is refused.
   */
  readonly globals: Readonly<Record<string, PickleFunction | null>>;
  /** Resolves a persistent id (BINPERSID); without it, persistent ids are refused. */
  readonly persistentLoad?: (pid: unknown) => unknown;
  /** The file, for error messages. */
  readonly file?: string;
}

/** More than any checkpoint needs; stops a hostile pickle from exhausting memory. */
const MAX_STACK = 1_000_000;
const MAX_MARKS = 10_000;
const MAX_MEMO = 10_000_000;
/** Widest LONG1 / LONG4 integer accepted; weights never need more, and wider ones cost quadratic time. */
const MAX_LONG_BYTES = 64;
/** Longest module or name line accepted by GLOBAL / INST. */
const MAX_NAME_LINE = 1024;
const HIGHEST_PROTOCOL = 5;

/** Opcode bytes, named as in CPython's pickle.py. */
const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  POP: 0x30, // 0
  POP_MARK: 0x31, // 1
  DUP: 0x32, // 2
  BINFLOAT: 0x47, // G
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  BINUNICODE: 0x58, // X
  EMPTY_LIST: 0x5d, // ]
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  DICT: 0x64, // d
  APPENDS: 0x65, // e
  BINGET: 0x68, // h
  INST: 0x69, // i
  LONG_BINGET: 0x6a, // j
  LIST: 0x6c, // l
  OBJ: 0x6f, // o
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  SETITEMS: 0x75, // u
  EMPTY_DICT: 0x7d, // }
  EMPTY_TUPLE: 0x29, // )
  BINBYTES: 0x42, // B
  SHORT_BINBYTES: 0x43, // C
  PROTO: 0x80,
  NEWOBJ: 0x81,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  LONG4: 0x8b,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES8: 0x8e,
  NEWOBJ_EX: 0x92,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
  BYTEARRAY8: 0x96,
} as const;

function typeName(v: unknown): string {
  if (v === null) return "None";
  if (v instanceof PyGlobal) return v.name;
  if (v instanceof PyTuple) return "tuple";
  if (v instanceof PyDict) return "dict";
  if (Array.isArray(v)) return "list";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v;
}

function isKey(v: unknown): v is PyKey {
  return v === null || ["string", "number", "bigint", "boolean"].includes(typeof v);
}

/** The machine state of one unpickling run. */
class Machine {
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly opts: UnpickleOptions;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });
  private pos = 0;
  private opStart = 0;
  private stack: unknown[] = [];
  private readonly marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();

  constructor(data: Uint8Array, opts: UnpickleOptions) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.opts = opts;
  }

  private fail(message: string): never {
    throw new PickleError(`pickle byte ${this.opStart}: ${message}`, { file: this.opts.file });
  }

  /** Claims `n` bytes, failing when fewer remain (so no length can overrun the input). */
  private take(n: number): number {
    if (!(n >= 0 && n <= this.data.byteLength - this.pos)) {
      this.fail(`needs ${n} bytes but only ${this.data.byteLength - this.pos} remain`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.data[this.take(1)]!;
  }
  private u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  private u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  private u64(): number {
    const v = this.view.getBigUint64(this.take(8), true);
    // Larger than the input can hold; take() then reports it.
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  }

  private bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.data.subarray(at, at + n);
  }

  private text(n: number): string {
    try {
      return this.utf8.decode(this.bytes(n));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      return this.fail("string is not valid UTF-8");
    }
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > MAX_NAME_LINE) this.fail("unterminated or overlong name line");
    const s = this.text(end - this.pos);
    this.pos++;
    return s;
  }

  private long(n: number): number | bigint {
    if (n > MAX_LONG_BYTES) this.fail(`integer of ${n} bytes is too large`);
    const b = this.bytes(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }

  private push(v: unknown): void {
    if (this.stack.length >= MAX_STACK) this.fail(`stack deeper than ${MAX_STACK}`);
    this.stack.push(v);
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail("stack underflow");
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail("stack underflow");
    return this.stack[this.stack.length - 1];
  }

  /** Pops everything above the newest MARK, and the MARK. */
  private popMark(): unknown[] {
    const items = this.stack;
    const outer = this.marks.pop();
    if (outer === undefined) this.fail("no MARK on the stack");
    this.stack = outer;
    return items;
  }

  private put(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= MAX_MEMO) {
      this.fail(`memo larger than ${MAX_MEMO}`);
    }
    this.memo.set(index, this.top());
  }

  private get(index: number): void {
    if (!this.memo.has(index)) this.fail(`memo key ${index} was never stored`);
    this.push(this.memo.get(index));
  }

  private resolve(module: string, name: string, how: string): PyGlobal {
    const qual = `${module}.${name}`;
    if (!Object.hasOwn(this.opts.globals, qual)) {
      this.fail(`refusing to import ${qual} (${how}): not an allowed weights-only global`);
    }
    return new PyGlobal(qual, this.opts.globals[qual]!);
  }

  private setItems(dict: unknown, items: readonly unknown[]): void {
    if (!(dict instanceof PyDict)) this.fail(`SETITEM on a ${typeName(dict)}, not a dict`);
    if (items.length % 2 !== 0) this.fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (!isKey(k)) this.fail(`dict key of type ${typeName(k)} is not supported`);
      dict.map.set(k, items[i + 1]);
    }
  }

  private append(list: unknown, items: readonly unknown[]): void {
    if (!Array.isArray(list)) this.fail(`APPEND to a ${typeName(list)}, not a list`);
    for (const v of items) list.push(v);
  }

  private reduce(): void {
    const args = this.pop();
    const fn = this.pop();
    if (!(fn instanceof PyGlobal) || fn.call === null) {
      this.fail(`REDUCE target ${typeName(fn)} is not an allowed callable`);
    }
    if (!(args instanceof PyTuple)) {
      this.fail(`REDUCE arguments are a ${typeName(args)}, not a tuple`);
    }
    this.push(fn.call(args.items));
  }

  /** Runs opcodes until STOP and returns the result. */
  run(): unknown {
    while (true) {
      this.opStart = this.pos;
      const op = this.u8();
      switch (op) {
        case OP.PROTO: {
          const v = this.u8();
          if (v > HIGHEST_PROTOCOL) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case OP.FRAME:
          // A frame is an I/O hint; its length must still fit what is left.
          if (this.u64() > this.data.byteLength - this.pos) this.fail("frame runs past the end");
          break;
        case OP.STOP: {
          const result = this.pop();
          if (this.stack.length !== 0 || this.marks.length !== 0) {
            this.fail("STOP with items left on the stack");
          }
          return result;
        }
        case OP.MARK:
          if (this.marks.length >= MAX_MARKS) this.fail(`MARKs nested deeper than ${MAX_MARKS}`);
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case OP.POP:
          this.pop();
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.BININT:
          this.push(this.view.getInt32(this.take(4), true));
          break;
        case OP.BININT1:
          this.push(this.u8());
          break;
        case OP.BININT2:
          this.push(this.u16());
          break;
        case OP.LONG1:
          this.push(this.long(this.u8()));
          break;
        case OP.LONG4: {
          const n = this.view.getInt32(this.take(4), true);
          if (n < 0) this.fail("negative LONG4 length");
          this.push(this.long(n));
          break;
        }
        case OP.BINFLOAT:
          this.push(this.view.getFloat64(this.take(8), false));
          break;
        case OP.SHORT_BINUNICODE:
          this.push(this.text(this.u8()));
          break;
        case OP.BINUNICODE:
          this.push(this.text(this.u32()));
          break;
        case OP.BINUNICODE8:
          this.push(this.text(this.u64()));
          break;
        case OP.SHORT_BINBYTES:
          this.push(this.bytes(this.u8()));
          break;
        case OP.BINBYTES:
          this.push(this.bytes(this.u32()));
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.push(this.bytes(this.u64()));
          break;
        case OP.EMPTY_DICT:
          this.push(new PyDict());
          break;
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.EMPTY_TUPLE:
          this.push(new PyTuple([]));
          break;
        case OP.TUPLE:
          this.push(new PyTuple(this.popMark()));
          break;
        case OP.TUPLE1: {
          const a = this.pop();
          this.push(new PyTuple([a]));
          break;
        }
        case OP.TUPLE2: {
          const b = this.pop();
          const a = this.pop();
          this.push(new PyTuple([a, b]));
          break;
        }
        case OP.TUPLE3: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(new PyTuple([a, b, c]));
          break;
        }
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.DICT: {
          const items = this.popMark();
          const d = new PyDict();
          this.setItems(d, items);
          this.push(d);
          break;
        }
        case OP.APPEND: {
          const v = this.pop();
          this.append(this.top(), [v]);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case OP.BINPUT:
          this.put(this.u8());
          break;
        case OP.LONG_BINPUT:
          this.put(this.u32());
          break;
        case OP.MEMOIZE:
          this.put(this.memo.size);
          break;
        case OP.BINGET:
          this.get(this.u8());
          break;
        case OP.LONG_BINGET:
          this.get(this.u32());
          break;
        case OP.BINPERSID: {
          const pid = this.pop();
          if (!this.opts.persistentLoad) this.fail("persistent ids are not allowed here");
          this.push(this.opts.persistentLoad(pid));
          break;
        }
        case OP.GLOBAL: {
          const module = this.line();
          this.push(this.resolve(module, this.line(), "GLOBAL"));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            this.fail("STACK_GLOBAL needs two strings");
          }
          this.push(this.resolve(module, name, "STACK_GLOBAL"));
          break;
        }
        case OP.REDUCE:
          this.reduce();
          break;
        case OP.BUILD: {
          const state = this.pop();
          const target = this.top();
          if (!(target instanceof PyDict)) {
            this.fail(`BUILD on a ${typeName(target)} is not allowed`);
          }
          target.state = state;
          break;
        }
        case OP.INST: {
          const module = this.line();
          const name = this.line();
          this.fail(`refusing to import ${module}.${name} (INST): instantiation is not allowed`);
          break;
        }
        case OP.OBJ: {
          const cls = this.popMark()[0];
          this.fail(`refusing to instantiate ${typeName(cls)} (OBJ)`);
          break;
        }
        case OP.NEWOBJ:
        case OP.NEWOBJ_EX: {
          if (op === OP.NEWOBJ_EX) this.pop();
          this.pop();
          const cls = this.pop();
          this.fail(`refusing to instantiate ${typeName(cls)} (NEWOBJ)`);
          break;
        }
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4:
          this.fail("refusing the copyreg extension registry (EXT opcodes)");
          break;
        default:
          this.fail(`unsupported opcode 0x${op.toString(16).padStart(2, "0")}`);
      }
    }
  }
}

/**
 * Unpickles `data`, calling only the functions in `options.globals` (which
 * should report bad arguments with a {@link PickleError}).
 *
 * @example
 * ```ts
 * import { PyTuple, unpickle } from "./pickle.ts";
 * // (1, 2) with protocol 2: PROTO 2, BININT1 1, BININT1 2, TUPLE2, STOP
 * const t = unpickle(new Uint8Array([0x80, 2, 0x4b, 1, 0x4b, 2, 0x86, 0x2e]), { globals: {} });
 * console.log((t as PyTuple).items); // [1, 2]
 * ```
 */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  return new Machine(data, options).run();
}

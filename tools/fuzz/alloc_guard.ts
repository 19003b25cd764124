/**
 * Watches what a parser allocates: the global `ArrayBuffer`, typed-array and
 * `Array` constructors are wrapped (in the fuzz worker only) so every
 * allocation is counted against a budget for the current input. An
 * allocation past the budget is refused with {@link AllocationLimitError}
 * before it happens, and the overrun is remembered even if the parser
 * catches and wraps that error, so the runner can report "this input made
 * the parser allocate more than its size justifies".
 *
 * Views over an existing buffer (`new Uint8Array(buffer, offset, n)`) are
 * free; `slice()` and other copies made through a prototype method are not
 * seen, but they are bounded by memory already counted.
 *
 * @example
 * ```ts
 * import { installAllocationGuard, measureAllocations } from "./alloc_guard.ts";
 * installAllocationGuard();
 * const { bytes, exceeded } = await measureAllocations(1024, () => new Uint8Array(10));
 * console.log(bytes, exceeded); // 10 false
 * ```
 *
 * @module
 */

/**
 * Thrown when a single input's allocations would pass its budget (not a library error).
 *
 * @example
 * ```ts
 * import { AllocationLimitError } from "./alloc_guard.ts";
 * console.log(new AllocationLimitError("x") instanceof Error); // true
 * ```
 */
export class AllocationLimitError extends Error {}

interface Budget {
  limit: number;
  used: number;
  largest: number;
  exceeded: boolean;
}

let current: Budget | undefined;

function charge(bytes: number, what: string): void {
  if (!current || !(bytes > 0)) return;
  current.largest = Math.max(current.largest, bytes);
  if (current.used + bytes > current.limit) {
    current.exceeded = true;
    throw new AllocationLimitError(
      `${what} of ${bytes} bytes would pass the ${current.limit}-byte budget`,
    );
  }
  current.used += bytes;
}

function isBuffer(v: unknown): boolean {
  return v instanceof ArrayBuffer || v instanceof SharedArrayBuffer;
}

type Ctor = { new (...args: never[]): unknown; BYTES_PER_ELEMENT?: number; name: string };

function guard<C extends Ctor>(ctor: C, elementBytes: number): C {
  return new Proxy(ctor, {
    construct(target, args: unknown[], newTarget) {
      const first = args[0];
      if (typeof first === "number") {
        charge(first * elementBytes, `new ${target.name}(${first})`);
        return Reflect.construct(target, args, newTarget);
      }
      const made = Reflect.construct(target, args, newTarget) as { length?: number };
      if (!isBuffer(first)) charge((made.length ?? 0) * elementBytes, `new ${target.name}(copy)`);
      return made;
    },
    apply(target, thisArg, args: unknown[]) {
      // Only Array may be called without `new`; `Array(n)` allocates like `new Array(n)`.
      if (typeof args[0] === "number" && args.length === 1) {
        charge(args[0] * elementBytes, `${target.name}(${args[0]})`);
      }
      return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args);
    },
  });
}

const TYPED = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as const;

let installed = false;

/**
 * Wraps the global allocating constructors (once per realm). Call it in the
 * fuzz worker before any parser runs; outside a {@link measureAllocations}
 * call nothing is counted.
 *
 * @example
 * ```ts
 * import { installAllocationGuard } from "./alloc_guard.ts";
 * installAllocationGuard();
 * ```
 */
export function installAllocationGuard(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, Ctor>;
  g.ArrayBuffer = guard(ArrayBuffer as unknown as Ctor, 1);
  for (const ctor of TYPED) g[ctor.name] = guard(ctor as unknown as Ctor, ctor.BYTES_PER_ELEMENT);
  // A JS array slot is at least a pointer.
  g.Array = guard(Array as unknown as Ctor, 8);
}

/** What one run allocated. */
export interface AllocationReport {
  /** Bytes allocated in total through the watched constructors. */
  bytes: number;
  /** The largest single allocation asked for (including a refused one). */
  largest: number;
  /** Whether the budget was passed (the allocation was refused). */
  exceeded: boolean;
}

/**
 * Runs `fn` with an allocation budget of `limit` bytes and reports what it
 * allocated; `fn`'s own outcome is returned in `result` / `error`.
 *
 * @example
 * ```ts
 * import { installAllocationGuard, measureAllocations } from "./alloc_guard.ts";
 * installAllocationGuard();
 * const r = await measureAllocations(8, () => new Float64Array(4));
 * console.log(r.exceeded); // true: 32 bytes > 8
 * ```
 */
export async function measureAllocations(
  limit: number,
  fn: () => unknown,
): Promise<AllocationReport & { error?: unknown; failed: boolean }> {
  const budget: Budget = { limit, used: 0, largest: 0, exceeded: false };
  current = budget;
  try {
    await fn();
    return {
      bytes: budget.used,
      largest: budget.largest,
      exceeded: budget.exceeded,
      failed: false,
    };
  } catch (error) {
    return {
      bytes: budget.used,
      largest: budget.largest,
      exceeded: budget.exceeded,
      failed: true,
      error,
    };
  } finally {
    current = undefined;
  }
}

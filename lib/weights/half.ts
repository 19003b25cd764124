/**
 * IEEE half precision (float16) and bfloat16 conversions. tfjs has no 16-bit
 * float dtype, so fp16/bf16 weights are widened to float32 on load, and
 * narrowed (round to nearest even) when a model is saved as fp16.
 *
 * @example
 * ```ts
 * import { float16ToFloat32, float32ToFloat16 } from "./half.ts";
 * const h = float32ToFloat16(new Float32Array([1.5, -2, 65504]));
 * console.log(float16ToFloat32(h)); // Float32Array [1.5, -2, 65504]
 * ```
 *
 * @module
 */

/** Float32 value of every float16 bit pattern, built once on first use. */
let table: Float32Array | undefined;

function halfTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
}

/**
 * Widens raw float16 words to float32 (exact).
 *
 * @example
 * ```ts
 * import { float16ToFloat32 } from "./half.ts";
 * console.log(float16ToFloat32(new Uint16Array([0x3c00]))[0]); // 1
 * ```
 */
export function float16ToFloat32(words: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(words.length);
  for (let i = 0; i < words.length; i++) out[i] = t[words[i]!]!;
  return out;
}

/**
 * Widens raw bfloat16 words to float32 (exact: bf16 is the top half of f32).
 *
 * @example
 * ```ts
 * import { bfloat16ToFloat32 } from "./half.ts";
 * console.log(bfloat16ToFloat32(new Uint16Array([0x3f80]))[0]); // 1
 * ```
 */
export function bfloat16ToFloat32(words: Uint16Array): Float32Array {
  const bits = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) bits[i] = words[i]! << 16;
  return new Float32Array(bits.buffer);
}

/**
 * Narrows float32 to float16 words, rounding to nearest even; values beyond
 * the float16 range become ±Infinity, as PyTorch's `.half()` does.
 *
 * @example
 * ```ts
 * import { float32ToFloat16 } from "./half.ts";
 * console.log(float32ToFloat16(new Float32Array([1]))[0].toString(16)); // "3c00"
 * ```
 */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      // Subnormal: shift the mantissa (with its implicit 1) into place and round to nearest even.
      const m = mant | 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = m & ((1 << shift) - 1);
      let h = m >>> shift;
      if (rest > half || (rest === half && (h & 1))) h++;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
      out[i] = sign | h;
    }
  }
  return out;
}

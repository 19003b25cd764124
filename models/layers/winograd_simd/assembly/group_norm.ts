// AssemblyScript source of the fused GroupNorm (+ SiLU) passes
// (models/layers/group_norm_simd.ts) with 128-bit SIMD, four channels per
// vector, re-exported by transforms.ts so both live in one module. Like the
// transforms, it owns no memory: every function reads and writes only the
// byte addresses it is given (tfjs-wasm heap buffers).
//
// Layouts (float32 unless said, channels innermost, c a multiple of 4):
//   x, y   [pixels, c]   one image's rows (or a run of them)
//   mean, scale, beta    [c] per-channel group mean, γ/√(var+ε), β
//   acc    [c]           working space for the float32 block sums
//   total  [c] float64   running per-channel sums (8-byte aligned)
//
// Sums run in blocks of BLOCK pixels in float32 (one add per value), each
// block then added into the float64 totals, so rounding grows with the
// block's 16 terms, not with the 64K pixels of a 256² map.

const VEC: usize = 16;
const BLOCK: i32 = 16;

/** Adds the float32 block sums in `acc` into the float64 `total`, c channels. */
// @ts-ignore: decorator
@inline function flush(acc: usize, total: usize, rowBytes: usize): void {
  for (let off: usize = 0; off < rowBytes; off += VEC) {
    const a = v128.load(acc + off);
    const t = total + (off << 1);
    v128.store(t, f64x2.add(v128.load(t), f64x2.promote_low_f32x4(a)));
    const high = v128.shuffle<f32>(a, a, 2, 3, 2, 3);
    v128.store(t + VEC, f64x2.add(v128.load(t + VEC), f64x2.promote_low_f32x4(high)));
  }
}

/**
 * Adds, per channel, Σ x over `pixels` rows of `c` floats at `x` into the
 * float64 `total` [c]; with `mean` (an address, 0 for none) Σ (x − mean)²
 * instead. `acc` is c floats of working space.
 */
export function groupNormSums(
  x: usize, pixels: i32, c: i32, mean: usize, acc: usize, total: usize,
): void {
  const rowBytes = <usize>c << 2;
  let row = x;
  for (let p0 = 0; p0 < pixels; p0 += BLOCK) {
    const n = min(BLOCK, pixels - p0);
    if (mean == 0) {
      for (let off: usize = 0; off < rowBytes; off += VEC) {
        v128.store(acc + off, v128.load(row + off));
      }
      row += rowBytes;
      for (let p = 1; p < n; p++, row += rowBytes) {
        for (let off: usize = 0; off < rowBytes; off += VEC) {
          v128.store(acc + off, f32x4.add(v128.load(acc + off), v128.load(row + off)));
        }
      }
    } else {
      for (let off: usize = 0; off < rowBytes; off += VEC) {
        const d = f32x4.sub(v128.load(row + off), v128.load(mean + off));
        v128.store(acc + off, f32x4.mul(d, d));
      }
      row += rowBytes;
      for (let p = 1; p < n; p++, row += rowBytes) {
        for (let off: usize = 0; off < rowBytes; off += VEC) {
          const d = f32x4.sub(v128.load(row + off), v128.load(mean + off));
          v128.store(acc + off, f32x4.add(v128.load(acc + off), f32x4.mul(d, d)));
        }
      }
    }
    flush(acc, total, rowBytes);
  }
}

/**
 * eˣ on four lanes for x clamped to [−87, 88] (so 2ⁿ stays normal; NaN
 * stays NaN): Cody–Waite reduction x = n·ln 2 + r (ln 2 in two parts,
 * n·ln2_hi exact), then XNNPACK's degree-5 minimax eʳ (9.2e-8 relative on
 * |r| ≤ ln2/2). n = round(x·log₂e) comes from adding 1.5·2²³ + 127, whose
 * low mantissa bits are then n + 127, the exponent of 2ⁿ: no rounding or
 * float-to-int instructions (slow sequences on x86 in V8).
 */
// @ts-ignore: decorator
@inline function exp4(v: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(v, f32x4.splat(88)), f32x4.splat(-87));
  const magic = f32x4.splat(12583039); // 1.5·2²³ + 127
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), magic);
  const n = f32x4.sub(t, magic);
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(8.289290592074394e-3);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.189782217144966e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6667652130126953e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.999915063381195e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(9.999997019767761e-1));
  const s = i32x4.shl(t, 23);
  return f32x4.add(f32x4.mul(f32x4.mul(r, s), p), s); // 2ⁿ·(1 + r·p)
}

/** SiLU on four lanes: v / (1 + e^(−v)). */
// @ts-ignore: decorator
@inline function silu4(v: v128): v128 {
  return f32x4.div(v, f32x4.add(f32x4.splat(1), exp4(f32x4.neg(v))));
}

/** (x − mean)·scale + beta for the vector at byte `off` of a row. */
// @ts-ignore: decorator
@inline function affine(row: usize, off: usize, mean: usize, scale: usize, beta: usize): v128 {
  const centred = f32x4.sub(v128.load(row + off), v128.load(mean + off));
  return f32x4.add(f32x4.mul(centred, v128.load(scale + off)), v128.load(beta + off));
}

/**
 * y = (x − mean)·scale + beta per channel over `pixels` rows of `c` floats,
 * then SiLU where `silu` is nonzero; `y` may equal `x`. The SiLU loop does
 * four vectors per step (independent work for the core, and V8 makes each
 * constant once per step, not once per vector).
 */
export function groupNormApply(
  x: usize, y: usize, pixels: i32, c: i32, mean: usize, scale: usize, beta: usize, silu: i32,
): void {
  const bytes = <usize>pixels * (<usize>c << 2);
  const rowBytes = <usize>c << 2;
  if (silu != 0) {
    const quads = rowBytes & ~(<usize>4 * VEC - 1);
    for (let p: usize = 0; p < bytes; p += rowBytes) {
      const src = x + p;
      const dst = y + p;
      let off: usize = 0;
      for (; off < quads; off += 4 * VEC) {
        const a = silu4(affine(src, off, mean, scale, beta));
        const b = silu4(affine(src, off + VEC, mean, scale, beta));
        const d = silu4(affine(src, off + 2 * VEC, mean, scale, beta));
        const e = silu4(affine(src, off + 3 * VEC, mean, scale, beta));
        v128.store(dst + off, a);
        v128.store(dst + off + VEC, b);
        v128.store(dst + off + 2 * VEC, d);
        v128.store(dst + off + 3 * VEC, e);
      }
      for (; off < rowBytes; off += VEC) {
        v128.store(dst + off, silu4(affine(src, off, mean, scale, beta)));
      }
    }
  } else {
    for (let p: usize = 0; p < bytes; p += rowBytes) {
      for (let off: usize = 0; off < rowBytes; off += VEC) {
        v128.store(y + p + off, affine(x + p, off, mean, scale, beta));
      }
    }
  }
}

// AssemblyScript source of the Winograd input and output transforms
// (models/layers/winograd.ts) with 128-bit SIMD, four channels per vector.
// Compiled by `deno task build:wasm` (tools/build_wasm.ts) into
// ../wasm_bytes.ts. The module imports tfjs-wasm's memory and owns none:
// no data segments, no allocator, no globals; every function only reads and
// writes the byte addresses it is given, which are tfjs-wasm heap buffers.
//
// Layouts (all float32, channels innermost):
//   x     [n, h, w, c]             unpadded input (zero padding 1 is implied)
//   V_k   [tiles, c]               one buffer per tile position k < s·s
//   M_k   [tiles, co]              the GEMM outputs, one per k
//   y     [n, h, w, co]            output, cropped to h × w
//   table s·s u32 addresses of the V_k or M_k buffers
//   scratch (72 + 36·32) v128 (19,584 bytes) of working space
// with s = m + 2 and tile t = (b·tilesH + ty)·tilesW + tx. One call does one
// row of tiles, so V8 switches to its optimized code after a few rows.
//
// F(4,3)'s 36 buffers are more concurrent streams than a core's prefetchers
// follow; so its tiles are done in blocks of up to 128 channels that go to
// (or come from) every V_k / M_k buffer in one burst, through a staging area
// in the scratch (measured 2× faster there; F(2,3)'s 16 streams are faster
// without it).

const VEC: usize = 16;

// ---- one-dimensional transforms, on 4 channels, loads from s*, stores to d* ----

// Bᵀ of F(2,3): [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
// @ts-ignore: decorator
@inline function bt4(
  s0: usize, s1: usize, s2: usize, s3: usize,
  d0: usize, d1: usize, d2: usize, d3: usize,
): void {
  const x0 = v128.load(s0);
  const x1 = v128.load(s1);
  const x2 = v128.load(s2);
  const x3 = v128.load(s3);
  v128.store(d0, f32x4.sub(x0, x2));
  v128.store(d1, f32x4.add(x1, x2));
  v128.store(d2, f32x4.sub(x2, x1));
  v128.store(d3, f32x4.sub(x1, x3));
}

// Bᵀ of F(4,3): rows [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0],
// [0 -2 -1 2 1 0], [0 2 -1 -2 1 0], [0 4 0 -5 0 1].
// @ts-ignore: decorator
@inline function bt6(
  s0: usize, s1: usize, s2: usize, s3: usize, s4: usize, s5: usize,
  d0: usize, d1: usize, d2: usize, d3: usize, d4: usize, d5: usize,
): void {
  const four = f32x4.splat(4);
  const five = f32x4.splat(5);
  const x0 = v128.load(s0);
  const x1 = v128.load(s1);
  const x2 = v128.load(s2);
  const x3 = v128.load(s3);
  const x4 = v128.load(s4);
  const x5 = v128.load(s5);
  v128.store(d0, f32x4.add(f32x4.sub(f32x4.mul(four, x0), f32x4.mul(five, x2)), x4));
  const a = f32x4.sub(x4, f32x4.mul(four, x2)); // x4 - 4 x2
  const b = f32x4.sub(x3, f32x4.mul(four, x1)); // x3 - 4 x1
  v128.store(d1, f32x4.add(a, b));
  v128.store(d2, f32x4.sub(a, b));
  const e = f32x4.sub(x4, x2);
  const f = f32x4.sub(x3, x1);
  const f2 = f32x4.add(f, f);
  v128.store(d3, f32x4.add(e, f2));
  v128.store(d4, f32x4.sub(e, f2));
  v128.store(d5, f32x4.add(f32x4.sub(f32x4.mul(four, x1), f32x4.mul(five, x3)), x5));
}

// Aᵀ of F(2,3): [1 1 1 0; 0 1 -1 -1], plus `bias`.
// @ts-ignore: decorator
@inline function at4(
  s0: usize, s1: usize, s2: usize, s3: usize,
  bias: v128, d0: usize, d1: usize,
): void {
  const x0 = v128.load(s0);
  const x1 = v128.load(s1);
  const x2 = v128.load(s2);
  const x3 = v128.load(s3);
  v128.store(d0, f32x4.add(bias, f32x4.add(f32x4.add(x0, x1), x2)));
  v128.store(d1, f32x4.add(bias, f32x4.sub(f32x4.sub(x1, x2), x3)));
}

// Aᵀ of F(4,3): rows [1 1 1 1 1 0], [0 1 -1 2 -2 0], [0 1 1 4 4 0],
// [0 1 -1 8 -8 1], plus `bias`.
// @ts-ignore: decorator
@inline function at6(
  s0: usize, s1: usize, s2: usize, s3: usize, s4: usize, s5: usize,
  bias: v128, d0: usize, d1: usize, d2: usize, d3: usize,
): void {
  const x0 = v128.load(s0);
  const x1 = v128.load(s1);
  const x2 = v128.load(s2);
  const x3 = v128.load(s3);
  const x4 = v128.load(s4);
  const x5 = v128.load(s5);
  const p12 = f32x4.add(x1, x2);
  const m12 = f32x4.sub(x1, x2);
  const p34 = f32x4.add(x3, x4);
  const m34 = f32x4.sub(x3, x4);
  v128.store(d0, f32x4.add(bias, f32x4.add(f32x4.add(x0, p12), p34)));
  v128.store(d1, f32x4.add(bias, f32x4.add(m12, f32x4.add(m34, m34))));
  v128.store(d2, f32x4.add(bias, f32x4.add(p12, f32x4.mul(f32x4.splat(4), p34))));
  v128.store(d3, f32x4.add(bias, f32x4.add(f32x4.add(m12, f32x4.mul(f32x4.splat(8), m34)), x5)));
}

// Aᵀ of F(4,3) without bias, for the first of the two passes.
// @ts-ignore: decorator
@inline function at6n(
  s0: usize, s1: usize, s2: usize, s3: usize, s4: usize, s5: usize,
  d0: usize, d1: usize, d2: usize, d3: usize,
): void {
  const x0 = v128.load(s0);
  const x1 = v128.load(s1);
  const x2 = v128.load(s2);
  const x3 = v128.load(s3);
  const x4 = v128.load(s4);
  const x5 = v128.load(s5);
  const p12 = f32x4.add(x1, x2);
  const m12 = f32x4.sub(x1, x2);
  const p34 = f32x4.add(x3, x4);
  const m34 = f32x4.sub(x3, x4);
  v128.store(d0, f32x4.add(f32x4.add(x0, p12), p34));
  v128.store(d1, f32x4.add(m12, f32x4.add(m34, m34)));
  v128.store(d2, f32x4.add(p12, f32x4.mul(f32x4.splat(4), p34)));
  v128.store(d3, f32x4.add(f32x4.add(m12, f32x4.mul(f32x4.splat(8), m34)), x5));
}

// ---- helpers ----

// Address of buffer k of the table, plus `off` bytes.
// @ts-ignore: decorator
@inline function at(table: usize, k: usize, off: usize): usize {
  return <usize>load<u32>(table + (k << 2)) + off;
}

// Vectors per channel block: the largest of 32, 16, …, 1 dividing c / 4.
// @ts-ignore: decorator
@inline function blockVectors(c: i32): i32 {
  let nb = 32;
  while ((c >> 2) % nb != 0) nb >>= 1;
  return nb;
}

// Copies `nb` vectors of each of the `count` staged rows (stride `kStride`
// bytes) to buffer k of the table at byte offset `off`.
function copyOut(stage: usize, kStride: usize, nb: usize, table: usize, count: usize, off: usize): void {
  for (let k: usize = 0; k < count; k++) {
    const src = stage + k * kStride;
    const dst = at(table, k, off);
    for (let g: usize = 0; g < nb; g++) v128.store(dst + g * VEC, v128.load(src + g * VEC));
  }
}

// The reverse of copyOut: buffer k of the table at `off` into staged row k.
function copyIn(table: usize, count: usize, off: usize, stage: usize, kStride: usize, nb: usize): void {
  for (let k: usize = 0; k < count; k++) {
    const src = at(table, k, off);
    const dst = stage + k * kStride;
    for (let g: usize = 0; g < nb; g++) v128.store(dst + g * VEC, v128.load(src + g * VEC));
  }
}

// Copies the s×s tile at rows r0.., columns c0.. (channels ch..ch+3) of image
// `img` (h × w × c, byte address) into `dst` (s·s vectors, row-major),
// writing zeros outside the image: the zero padding of the convolution.
function gatherBorderTile(
  img: usize, h: i32, w: i32, c: i32, r0: i32, c0: i32, ch: i32, s: i32, dst: usize,
): void {
  const zero = f32x4.splat(0);
  for (let i = 0; i < s; i++) {
    const r = r0 + i;
    for (let j = 0; j < s; j++) {
      const col = c0 + j;
      const d = dst + <usize>((i * s + j) * <i32>VEC);
      if (r >= 0 && r < h && col >= 0 && col < w) {
        v128.store(d, v128.load(img + (<usize>((r * w + col) * c + ch) << 2)));
      } else {
        v128.store(d, zero);
      }
    }
  }
}

// Stores the m×m vectors of `src` (row-major) at rows y0.., columns x0.. of
// image `img` (h × w × co), channels ch..ch+3, skipping what falls outside.
function scatterPartialTile(
  src: usize, img: usize, h: i32, w: i32, co: i32, y0: i32, x0: i32, ch: i32, m: i32,
): void {
  for (let i = 0; i < m && y0 + i < h; i++) {
    for (let j = 0; j < m && x0 + j < w; j++) {
      v128.store(
        img + (<usize>(((y0 + i) * w + x0 + j) * co + ch) << 2),
        v128.load(src + <usize>((i * m + j) * <i32>VEC)),
      );
    }
  }
}

// ---- exported kernels ----

/**
 * Input transform of F(2,3) for tile row `ty` of image `b`: V_k[t, ch] =
 * (Bᵀ d B)_k for tiles t = t0 .. t0 + tilesW - 1. `c` must be a multiple of 4.
 */
export function inputRow2(
  x: usize, h: i32, w: i32, c: i32, tilesW: i32, b: i32, ty: i32, t0: i32,
  table: usize, scratch: usize,
): void {
  const rowBytes = <usize>(w * c) << 2;
  const colBytes = <usize>c << 2;
  const img = x + (<usize>(b * h * w * c) << 2);
  const r0 = ty * 2 - 1;
  const rowsInside = r0 >= 0 && r0 + 4 <= h;
  const half = scratch; // 16 vectors: rows transformed
  const tile = scratch + 36 * VEC; // 16 vectors: a border tile with its zeros
  for (let tx = 0; tx < tilesW; tx++) {
    const c0 = tx * 2 - 1;
    const inside = rowsInside && c0 >= 0 && c0 + 4 <= w;
    let off = <usize>((t0 + tx) * c) << 2;
    for (let ch = 0; ch < c; ch += 4, off += VEC) {
      let p: usize;
      let rs: usize;
      let cs: usize;
      if (inside) {
        p = img + (<usize>((r0 * w + c0) * c + ch) << 2);
        rs = rowBytes;
        cs = colBytes;
      } else {
        gatherBorderTile(img, h, w, c, r0, c0, ch, 4, tile);
        p = tile;
        rs = 4 * VEC;
        cs = VEC;
      }
      // half[i][q] = Σ_j d[i][j] B[j][q] (each row of the tile)
      for (let i: usize = 0; i < 4; i++) {
        const src = p + i * rs;
        const dst = half + i * 4 * VEC;
        bt4(src, src + cs, src + 2 * cs, src + 3 * cs, dst, dst + VEC, dst + 2 * VEC, dst + 3 * VEC);
      }
      // V[a][q] = Σ_i Bᵀ[a][i] half[i][q] (each column)
      for (let q: usize = 0; q < 4; q++) {
        const src = half + q * VEC;
        bt4(
          src, src + 4 * VEC, src + 8 * VEC, src + 12 * VEC,
          at(table, q, off), at(table, 4 + q, off), at(table, 8 + q, off), at(table, 12 + q, off),
        );
      }
    }
  }
}

/**
 * Input transform of F(4,3), as {@link inputRow2} with 6×6 tiles, in channel
 * blocks staged in the scratch and written to each V_k in one burst.
 */
export function inputRow4(
  x: usize, h: i32, w: i32, c: i32, tilesW: i32, b: i32, ty: i32, t0: i32,
  table: usize, scratch: usize,
): void {
  const rowBytes = <usize>(w * c) << 2;
  const colBytes = <usize>c << 2;
  const img = x + (<usize>(b * h * w * c) << 2);
  const r0 = ty * 4 - 1;
  const rowsInside = r0 >= 0 && r0 + 6 <= h;
  const half = scratch;
  const tile = scratch + 36 * VEC;
  const stage = scratch + 72 * VEC;
  const nb = blockVectors(c);
  const kStride = <usize>nb * VEC;
  for (let tx = 0; tx < tilesW; tx++) {
    const c0 = tx * 4 - 1;
    const inside = rowsInside && c0 >= 0 && c0 + 6 <= w;
    let off = <usize>((t0 + tx) * c) << 2;
    for (let ch0 = 0; ch0 < c; ch0 += nb << 2, off += kStride) {
      for (let g = 0; g < nb; g++) {
        const ch = ch0 + (g << 2);
        let p: usize;
        let rs: usize;
        let cs: usize;
        if (inside) {
          p = img + (<usize>((r0 * w + c0) * c + ch) << 2);
          rs = rowBytes;
          cs = colBytes;
        } else {
          gatherBorderTile(img, h, w, c, r0, c0, ch, 6, tile);
          p = tile;
          rs = 6 * VEC;
          cs = VEC;
        }
        for (let i: usize = 0; i < 6; i++) {
          const src = p + i * rs;
          const dst = half + i * 6 * VEC;
          bt6(
            src, src + cs, src + 2 * cs, src + 3 * cs, src + 4 * cs, src + 5 * cs,
            dst, dst + VEC, dst + 2 * VEC, dst + 3 * VEC, dst + 4 * VEC, dst + 5 * VEC,
          );
        }
        const v = stage + <usize>g * VEC;
        for (let q: usize = 0; q < 6; q++) {
          const src = half + q * VEC;
          const dst = v + q * kStride;
          bt6(
            src, src + 6 * VEC, src + 12 * VEC, src + 18 * VEC, src + 24 * VEC, src + 30 * VEC,
            dst, dst + 6 * kStride, dst + 12 * kStride,
            dst + 18 * kStride, dst + 24 * kStride, dst + 30 * kStride,
          );
        }
      }
      copyOut(stage, kStride, nb, table, 36, off);
    }
  }
}

/**
 * Output transform of F(2,3) for tile row `ty` of image `b`: y = Aᵀ M A +
 * bias for tiles t0 .. t0 + tilesW - 1, cropped to h × w. `bias` is the
 * address of co floats, or 0 for none; `co` must be a multiple of 4.
 */
export function outputRow2(
  y: usize, bias: usize, h: i32, w: i32, co: i32, tilesW: i32, b: i32, ty: i32, t0: i32,
  table: usize, scratch: usize,
): void {
  const img = y + (<usize>(b * h * w * co) << 2);
  const rowBytes = <usize>(w * co) << 2;
  const colBytes = <usize>co << 2;
  const y0 = ty * 2;
  const half = scratch; // 2×4 vectors: rows reduced
  const out = scratch + 36 * VEC; // 2×2 vectors of a partial tile
  const zero = f32x4.splat(0);
  for (let tx = 0; tx < tilesW; tx++) {
    const x0 = tx * 2;
    const full = y0 + 2 <= h && x0 + 2 <= w;
    let off = <usize>((t0 + tx) * co) << 2;
    for (let ch = 0; ch < co; ch += 4, off += VEC) {
      const bc = bias == 0 ? zero : v128.load(bias + (<usize>ch << 2));
      // half[i][q] = Σ_a Aᵀ[i][a] M[a][q]
      for (let q: usize = 0; q < 4; q++) {
        at4(
          at(table, q, off), at(table, 4 + q, off), at(table, 8 + q, off), at(table, 12 + q, off),
          zero, half + q * VEC, half + (4 + q) * VEC,
        );
      }
      let dst: usize;
      let rs: usize;
      let cs: usize;
      if (full) {
        dst = img + (<usize>((y0 * w + x0) * co + ch) << 2);
        rs = rowBytes;
        cs = colBytes;
      } else {
        dst = out;
        rs = 2 * VEC;
        cs = VEC;
      }
      // y[i][j] = Σ_q half[i][q] A[q][j] + bias
      for (let i: usize = 0; i < 2; i++) {
        const src = half + i * 4 * VEC;
        at4(src, src + VEC, src + 2 * VEC, src + 3 * VEC, bc, dst + i * rs, dst + i * rs + cs);
      }
      if (!full) scatterPartialTile(out, img, h, w, co, y0, x0, ch, 2);
    }
  }
}

/**
 * Output transform of F(4,3), as {@link outputRow2} with 4×4 output tiles, in
 * channel blocks read from each M_k in one burst into the scratch.
 */
export function outputRow4(
  y: usize, bias: usize, h: i32, w: i32, co: i32, tilesW: i32, b: i32, ty: i32, t0: i32,
  table: usize, scratch: usize,
): void {
  const img = y + (<usize>(b * h * w * co) << 2);
  const rowBytes = <usize>(w * co) << 2;
  const colBytes = <usize>co << 2;
  const y0 = ty * 4;
  const half = scratch; // 4×6 vectors
  const out = scratch + 36 * VEC; // 4×4 vectors
  const stage = scratch + 72 * VEC; // 36 × nb vectors
  const nb = blockVectors(co);
  const kStride = <usize>nb * VEC;
  const zero = f32x4.splat(0);
  for (let tx = 0; tx < tilesW; tx++) {
    const x0 = tx * 4;
    const full = y0 + 4 <= h && x0 + 4 <= w;
    let off = <usize>((t0 + tx) * co) << 2;
    for (let ch0 = 0; ch0 < co; ch0 += nb << 2, off += kStride) {
      copyIn(table, 36, off, stage, kStride, nb);
      for (let g = 0; g < nb; g++) {
        const ch = ch0 + (g << 2);
        const bc = bias == 0 ? zero : v128.load(bias + (<usize>ch << 2));
        const mk = stage + <usize>g * VEC;
        for (let q: usize = 0; q < 6; q++) {
          const src = mk + q * kStride;
          at6n(
            src, src + 6 * kStride, src + 12 * kStride,
            src + 18 * kStride, src + 24 * kStride, src + 30 * kStride,
            half + q * VEC, half + (6 + q) * VEC, half + (12 + q) * VEC, half + (18 + q) * VEC,
          );
        }
        let dst: usize;
        let rs: usize;
        let cs: usize;
        if (full) {
          dst = img + (<usize>((y0 * w + x0) * co + ch) << 2);
          rs = rowBytes;
          cs = colBytes;
        } else {
          dst = out;
          rs = 4 * VEC;
          cs = VEC;
        }
        for (let i: usize = 0; i < 4; i++) {
          const src = half + i * 6 * VEC;
          const d = dst + i * rs;
          at6(
            src, src + VEC, src + 2 * VEC, src + 3 * VEC, src + 4 * VEC, src + 5 * VEC,
            bc, d, d + cs, d + 2 * cs, d + 3 * cs,
          );
        }
        if (!full) scatterPartialTile(out, img, h, w, co, y0, x0, ch, 4);
      }
    }
  }
}

// The fused GroupNorm (+ SiLU) passes, compiled into the same module.
export { groupNormApply, groupNormSums } from "./group_norm";

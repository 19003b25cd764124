/**
 * The Winograd F(2,3) / F(4,3) matrices and the JavaScript input and output
 * transforms over the WASM heap (used where the SIMD ones in
 * winograd_simd/ do not apply: channels not a multiple of 4, no WebAssembly
 * SIMD, or switched off by `setWinogradSimd(false)`). Each transform is
 * generated once per tile size from the matrices with every coefficient
 * unrolled; it touches each value once, in NHWC order, and computes in
 * float64, rounding once per stored value.
 *
 * @example
 * ```ts
 * import { jsInputTransform, WINOGRAD_MATRICES } from "./winograd_js.ts";
 * console.log(WINOGRAD_MATRICES[2].AT.length); // 2
 * const transform = jsInputTransform(2); // (x, v, n, h, w, c, tilesH, tilesW) => void
 * ```
 *
 * @module
 */

/** Output tile size m of F(m×m, 3×3). */
export type WinogradTile = 2 | 4;

/** A small matrix, row-major. */
export type Matrix = readonly (readonly number[])[];

/** Bᵀ (input), G (kernel) and Aᵀ (output) of F(m, 3), standard points 0, ±1, ±2, ∞. */
export const WINOGRAD_MATRICES: Readonly<
  Record<WinogradTile, { BT: Matrix; G: Matrix; AT: Matrix }>
> = {
  2: {
    BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
  },
  4: {
    BT: [
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ],
    G: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  },
};

/**
 * Fills the (m+2)² V_k [tiles, c] from the padded NHWC input `x` [n, h, w, c]
 * (h = tilesH·m + 2).
 */
export type InputTransform = (
  x: Float32Array,
  v: Float32Array[],
  n: number,
  h: number,
  w: number,
  c: number,
  tilesH: number,
  tilesW: number,
) => void;

/** y = Aᵀ M A + bias from the (m+2)² M_k [tiles, c], cropped to y's [n, h, w, c]. */
export type OutputTransform = (
  m: Float32Array[],
  y: Float32Array,
  bias: Float32Array | null,
  n: number,
  h: number,
  w: number,
  c: number,
  tilesH: number,
  tilesW: number,
) => void;

/** `Σ coefs[i]·names[i]` as a JavaScript expression, zero terms left out. */
function combination(coefs: readonly number[], names: readonly string[]): string {
  const terms = coefs.flatMap((c, i) =>
    c === 0 ? [] : [`${c < 0 ? "-" : "+"}${Math.abs(c) === 1 ? "" : `${Math.abs(c)}*`}${names[i]}`]
  );
  return terms.length === 0 ? "0" : terms.join("");
}

/** [0, 1, …, n − 1]. */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * V_k[t, c] = (Bᵀ d B)_k for every tile t of the padded NHWC input `x`
 * [n, h, w, c] (h = tilesH·m + 2): inner loop over channels, so reads and
 * writes are contiguous.
 */
function compileInputTransform(m: WinogradTile): InputTransform {
  const { BT } = WINOGRAD_MATRICES[m];
  const s = m + 2;
  const body = [
    "const rowStride = w * c; let t = 0;",
    ...range(s * s).map((k) => `const v${k} = v[${k}];`),
    "for (let b = 0; b < n; b++) for (let ty = 0; ty < tilesH; ty++) for (let tx = 0; tx < tilesW; tx++, t++) {",
    `const base = ((b * h + ty * ${m}) * w + tx * ${m}) * c; const o = t * c;`,
    "for (let ch = 0; ch < c; ch++) { const p = base + ch;",
    ...range(s).flatMap((i) =>
      range(s).map((j) => `const d${i}_${j} = x[p + ${i} * rowStride + ${j} * c];`)
    ),
    ...range(s).flatMap((a) =>
      range(s).map((j) =>
        `const r${a}_${j} = ${combination(BT[a]!, range(s).map((i) => `d${i}_${j}`))};`
      )
    ),
    ...range(s).flatMap((a) =>
      range(s).map((q) =>
        `v${a * s + q}[o + ch] = ${combination(BT[q]!, range(s).map((j) => `r${a}_${j}`))};`
      )
    ),
    "}}",
  ];
  return new Function(
    "x",
    "v",
    "n",
    "h",
    "w",
    "c",
    "tilesH",
    "tilesW",
    body.join("\n"),
  ) as InputTransform;
}

/** y[b, ty·m + i, tx·m + j, c] = (Aᵀ M A)_ij + bias[c], cropped to h × w. */
function compileOutputTransform(m: WinogradTile): OutputTransform {
  const { AT } = WINOGRAD_MATRICES[m];
  const s = m + 2;
  const store = (i: number, j: number): string =>
    `y[((b * h + y0 + ${i}) * w + x0 + ${j}) * c + ch] = bc + ${
      combination(AT[j]!, range(s).map((q) => `r${i}_${q}`))
    };`;
  const body = [
    "let t = 0;",
    ...range(s * s).map((k) => `const m${k} = m[${k}];`),
    "for (let b = 0; b < n; b++) for (let ty = 0; ty < tilesH; ty++) for (let tx = 0; tx < tilesW; tx++, t++) {",
    `const o = t * c; const y0 = ty * ${m}; const x0 = tx * ${m};`,
    `const full = y0 + ${m} <= h && x0 + ${m} <= w;`,
    "for (let ch = 0; ch < c; ch++) { const bc = bias === null ? 0 : bias[ch];",
    ...range(s * s).map((k) => `const a${k} = m${k}[o + ch];`),
    ...range(m).flatMap((i) =>
      range(s).map((j) =>
        `const r${i}_${j} = ${combination(AT[i]!, range(s).map((a) => `a${a * s + j}`))};`
      )
    ),
    "if (full) {",
    ...range(m).flatMap((i) => range(m).map((j) => store(i, j))),
    "} else {",
    ...range(m).flatMap((i) =>
      range(m).map((j) => `if (y0 + ${i} < h && x0 + ${j} < w) ${store(i, j)}`)
    ),
    "}}}",
  ];
  return new Function(
    "m",
    "y",
    "bias",
    "n",
    "h",
    "w",
    "c",
    "tilesH",
    "tilesW",
    body.join("\n"),
  ) as OutputTransform;
}

const inputTransforms = new Map<WinogradTile, InputTransform>();
const outputTransforms = new Map<WinogradTile, OutputTransform>();

/**
 * The JavaScript input transform of F(m, 3), compiled on first use.
 *
 * @example
 * ```ts
 * import { jsInputTransform } from "./winograd_js.ts";
 * const v = Array.from({ length: 16 }, () => new Float32Array(1));
 * jsInputTransform(2)(new Float32Array(16).fill(1), v, 1, 4, 4, 1, 1, 1);
 * console.log(v[5]![0]); // 4: (Bᵀ·1·B) at (1, 1)
 * ```
 */
export function jsInputTransform(m: WinogradTile): InputTransform {
  let transform = inputTransforms.get(m);
  if (!transform) inputTransforms.set(m, transform = compileInputTransform(m));
  return transform;
}

/**
 * The JavaScript output transform of F(m, 3), compiled on first use.
 *
 * @example
 * ```ts
 * import { jsOutputTransform } from "./winograd_js.ts";
 * const m = Array.from({ length: 16 }, (_, k) => new Float32Array([k === 0 ? 1 : 0]));
 * const y = new Float32Array(4);
 * jsOutputTransform(2)(m, y, null, 1, 2, 2, 1, 1, 1);
 * console.log(y[0]); // 1
 * ```
 */
export function jsOutputTransform(m: WinogradTile): OutputTransform {
  let transform = outputTransforms.get(m);
  if (!transform) outputTransforms.set(m, transform = compileOutputTransform(m));
  return transform;
}

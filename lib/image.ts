/**
 * Images in and out: an 8-bit RGB {@link DiffusionImage} made from a
 * pipeline's `[0, 1]` NHWC output exactly as diffusers' `numpy_to_pil` does
 * (`round(x * 255)`, halves to even), PNG encoding and decoding, and the
 * nearest-neighbour upscale used to view tiny models' output.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * import { imagesFromTensor } from "./image.ts";
 * const [image] = await imagesFromTensor(tf.fill([1, 2, 2, 3], 0.5) as tf.Tensor4D);
 * console.log(image.width, image.data[0]); // 2 128
 * ```
 *
 * @module
 */

import { decode as decodePng, encode as encodePng } from "fast-png";
import { tf } from "./tf.ts";
import { ArgumentError, DiffusersError } from "./errors.ts";
import { writeFileAtomic } from "./fs.ts";

/** A decoded or generated 8-bit RGB image, rows top to bottom. */
export class DiffusionImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** RGB bytes, row-major, `width * height * 3` of them. */
  readonly data: Uint8Array;

  /** Wraps RGB bytes; `data.length` must be `width * height * 3`. */
  constructor(width: number, height: number, data: Uint8Array) {
    if (data.length !== width * height * 3) {
      throw new ArgumentError(
        `RGB data has ${data.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`,
      );
    }
    this.width = width;
    this.height = height;
    this.data = data;
  }

  /**
   * A copy scaled up by an integer factor with nearest-neighbour sampling
   * (sharp pixels, for viewing small outputs).
   *
   * @example
   * ```ts
   * import { DiffusionImage } from "./image.ts";
   * const big = new DiffusionImage(1, 1, new Uint8Array([255, 0, 0])).upscale(8);
   * console.log(big.width); // 8
   * ```
   */
  upscale(factor: number): DiffusionImage {
    if (!Number.isInteger(factor) || factor < 1) {
      throw new ArgumentError(`upscale factor must be a positive integer, got ${factor}`);
    }
    if (factor === 1) return this;
    const w = this.width * factor;
    const out = new Uint8Array(w * this.height * factor * 3);
    for (let y = 0; y < this.height * factor; y++) {
      const src = Math.floor(y / factor) * this.width;
      for (let x = 0; x < w; x++) {
        const s = (src + Math.floor(x / factor)) * 3;
        const d = (y * w + x) * 3;
        out[d] = this.data[s]!;
        out[d + 1] = this.data[s + 1]!;
        out[d + 2] = this.data[s + 2]!;
      }
    }
    return new DiffusionImage(w, this.height * factor, out);
  }

  /**
   * Encodes as an 8-bit RGB PNG.
   *
   * @example
   * ```ts
   * import { DiffusionImage } from "./image.ts";
   * const png = new DiffusionImage(1, 1, new Uint8Array([0, 0, 0])).toPNG();
   * console.log(png[1] === 0x50); // true ("PNG" signature)
   * ```
   */
  toPNG(): Uint8Array {
    return encodePng({
      width: this.width,
      height: this.height,
      data: this.data,
      channels: 3,
      depth: 8,
    });
  }

  /**
   * Writes the image as PNG to `path`, atomically: a temporary file is
   * renamed over `path` only when complete, so an interrupted run never
   * leaves a partial PNG.
   *
   * @example
   * ```ts
   * import { DiffusionImage } from "./image.ts";
   * await new DiffusionImage(1, 1, new Uint8Array([0, 0, 0])).save("/tmp/black.png");
   * ```
   */
  async save(path: string): Promise<void> {
    await writeFileAtomic(path, this.toPNG());
  }

  /**
   * The image as a `[1, H, W, 3]` float32 tensor in `[0, 1]`.
   *
   * @example
   * ```ts
   * import { DiffusionImage } from "./image.ts";
   * const t = new DiffusionImage(1, 1, new Uint8Array([255, 0, 0])).toTensor();
   * console.log(t.shape); // [1, 1, 1, 3]
   * t.dispose();
   * ```
   */
  toTensor(): tf.Tensor4D {
    const values = Float32Array.from(this.data, (v) => v / 255);
    return tf.tensor4d(values, [1, this.height, this.width, 3]);
  }
}

/** numpy's `round`: to nearest, halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Converts a `[B, H, W, 3]` tensor of values in `[0, 1]` to images, as
 * diffusers' `numpy_to_pil`: `round(x * 255)` in float32, halves to even.
 * Values outside `[0, 1]` are clamped.
 *
 * @example
 * ```ts
 * import { tf } from "./tf.ts";
 * import { imagesFromTensor } from "./image.ts";
 * const images = await imagesFromTensor(tf.zeros([2, 4, 4, 3]) as tf.Tensor4D);
 * console.log(images.length); // 2
 * ```
 */
export async function imagesFromTensor(images: tf.Tensor4D): Promise<DiffusionImage[]> {
  const [b, h, w, c] = images.shape;
  if (c !== 3) {
    throw new ArgumentError(`expected 3 channels (NHWC RGB), got shape [${images.shape}]`);
  }
  const values = (await images.data()) as Float32Array;
  const out: DiffusionImage[] = [];
  for (let i = 0; i < b; i++) {
    const bytes = new Uint8Array(h * w * 3);
    const offset = i * h * w * 3;
    for (let j = 0; j < bytes.length; j++) {
      const v = Math.min(1, Math.max(0, values[offset + j]!));
      bytes[j] = roundHalfEven(Math.fround(v * 255));
    }
    out.push(new DiffusionImage(w, h, bytes));
  }
  return out;
}

/**
 * Decodes a PNG (any bit depth, grey/RGB, with or without alpha, palette)
 * to 8-bit RGB; alpha is dropped. A malformed file is a typed error naming
 * `file`.
 *
 * @example
 * ```ts
 * import { DiffusionImage, decodeImage } from "./image.ts";
 * const png = new DiffusionImage(1, 1, new Uint8Array([1, 2, 3])).toPNG();
 * console.log(decodeImage(png).data); // Uint8Array [1, 2, 3]
 * ```
 */
export function decodeImage(bytes: Uint8Array, file = "<image>"): DiffusionImage {
  checkDeclaredSize(bytes, file);
  let png;
  try {
    png = decodePng(bytes);
  } catch (cause) {
    throw new DiffusersError(`not a readable PNG (${(cause as Error).message})`, { file, cause });
  }
  const { width, height, channels, depth } = png;
  let data = depth < 8 ? unpackSamples(png.data, width * channels, height, depth) : png.data;
  if (png.palette) {
    const palette = png.palette;
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) {
      const entry = palette[data[i]!] ?? [0, 0, 0];
      rgb.set(entry.slice(0, 3), i * 3);
    }
    return new DiffusionImage(width, height, rgb);
  }
  if (depth === 16) data = Uint8Array.from(data, (v) => v >> 8);
  else if (depth < 8) {
    const scale = 255 / (2 ** depth - 1);
    data = Uint8Array.from(data, (v) => Math.round(v * scale));
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const s = i * channels;
    const grey = channels <= 2;
    rgb[i * 3] = data[s]!;
    rgb[i * 3 + 1] = grey ? data[s]! : data[s + 1]!;
    rgb[i * 3 + 2] = grey ? data[s]! : data[s + 2]!;
  }
  return new DiffusionImage(width, height, rgb);
}

/** Deflate cannot expand data by more than about 1032:1. */
const MAX_INFLATE_RATIO = 1032;

/** Channels per PNG colour type (grey, RGB, palette, grey + alpha, RGBA). */
const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Refuses a PNG whose header promises more pixel data than its compressed
 * bytes could hold, before the decoder allocates a buffer of that size.
 */
function checkDeclaredSize(bytes: Uint8Array, file: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Without a leading IHDR there is nothing to check; the decoder rejects the file.
  if (bytes.length < 33 || view.getUint32(12) !== 0x49484452) return;
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const channels = PNG_CHANNELS[bytes[25]!] ?? 4;
  const rowBytes = Math.ceil((width * channels * Math.max(1, bytes[24]!)) / 8) + 1;
  if (height * rowBytes > MAX_INFLATE_RATIO * bytes.length) {
    throw new DiffusersError(
      `header declares ${width}x${height} pixels (${height * rowBytes} bytes of image data), ` +
        `more than a ${bytes.length}-byte PNG can hold`,
      { file },
    );
  }
}

/** One byte per sample from PNG rows of packed 1-, 2- or 4-bit samples (most significant bits first). */
function unpackSamples(
  packed: ArrayLike<number>,
  samplesPerRow: number,
  height: number,
  depth: number,
): Uint8Array {
  const out = new Uint8Array(samplesPerRow * height);
  const rowBytes = Math.ceil((samplesPerRow * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < samplesPerRow; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)] ?? 0;
      out[y * samplesPerRow + x] = (byte >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

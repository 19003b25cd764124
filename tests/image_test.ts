import assert from "node:assert/strict";
import { encode } from "fast-png";
import { tf } from "../lib/tf.ts";
import { decodeImage, DiffusionImage, imagesFromTensor } from "../lib/image.ts";
import { DiffusersError } from "../lib/errors.ts";
import { assertThrowsTyped } from "./_helpers.ts";

Deno.test("image: quantises like numpy_to_pil (round half to even, clamp)", async () => {
  // 2.5/255 * 255 rounds to 2, 3.5/255 * 255 to 4 (when the float32 product is exactly .5).
  const values = [0, 1, -0.2, 1.7, 0.5, 2.5 / 255, 3.5 / 255, 0.2, 0.999];
  const expected = values.map((v) => {
    const x = Math.fround(Math.min(1, Math.max(0, Math.fround(v))) * 255);
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  });
  const t = tf.tensor4d(values, [1, 1, 3, 3]);
  const [image] = await imagesFromTensor(t);
  t.dispose();
  assert.deepEqual([...image!.data], expected);
  assert.equal(image!.data[0], 0);
  assert.equal(image!.data[1], 255);
  assert.equal(image!.data[2], 0);
  assert.equal(image!.data[3], 255);
  assert.equal(image!.data[4], 128); // 127.5 -> 128 (even)
});

Deno.test("image: PNG round trip, upscale, save atomically", async () => {
  const data = new Uint8Array(2 * 3 * 3).map((_, i) => i * 13);
  const image = new DiffusionImage(2, 3, data);
  const back = decodeImage(image.toPNG());
  assert.deepEqual([back.width, back.height], [2, 3]);
  assert.deepEqual(back.data, data);
  const big = image.upscale(4);
  assert.deepEqual([big.width, big.height], [8, 12]);
  assert.deepEqual([...big.data.subarray(0, 3)], [...data.subarray(0, 3)]);
  assert.deepEqual([...big.data.subarray(4 * 3, 4 * 3 + 3)], [...data.subarray(3, 6)]);
  const dir = await Deno.makeTempDir();
  try {
    await image.save(`${dir}/a.png`);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.png"]);
    assert.deepEqual(decodeImage(await Deno.readFile(`${dir}/a.png`)).data, data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("image: decodes grey, RGBA and 16-bit PNGs to RGB", () => {
  const grey = decodeImage(
    encode({ width: 2, height: 1, data: new Uint8Array([10, 200]), channels: 1 }),
  );
  assert.deepEqual([...grey.data], [10, 10, 10, 200, 200, 200]);
  const rgba = decodeImage(
    encode({ width: 1, height: 1, data: new Uint8Array([1, 2, 3, 4]), channels: 4 }),
  );
  assert.deepEqual([...rgba.data], [1, 2, 3]);
  const deep = decodeImage(
    encode({
      width: 1,
      height: 1,
      data: new Uint16Array([65535, 0, 32768]),
      channels: 3,
      depth: 16,
    }),
  );
  assert.deepEqual([...deep.data], [255, 0, 128]);
});

Deno.test("image: bad input gives typed errors", async () => {
  await assertThrowsTyped(
    () => decodeImage(new Uint8Array([1, 2, 3]), "x.png"),
    DiffusersError,
    /^x\.png: not a readable PNG/,
  );
  await assertThrowsTyped(
    () => new DiffusionImage(2, 2, new Uint8Array(3)),
    DiffusersError,
    /expected 2x2x3/,
  );
  await assertThrowsTyped(
    () => new DiffusionImage(1, 1, new Uint8Array(3)).upscale(0),
    DiffusersError,
    /positive integer/,
  );
});

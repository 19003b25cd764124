import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import { WeightsError } from "../lib/errors.ts";
import { bytesSource } from "../lib/weights/byte_source.ts";
import { crc32, readZipDirectory, readZipEntry, readZipRange } from "../lib/weights/zip.ts";
import { craftZip } from "./_craft_zip.ts";
import { assertThrowsTyped, FIXTURES_DIR } from "./_helpers.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const FILE = "crafted.zip";

async function entries(bytes: Uint8Array): Promise<Map<string, string>> {
  const src = bytesSource(bytes, FILE);
  const zip = await readZipDirectory(src, FILE);
  const out = new Map<string, string>();
  for (const [name, e] of zip.entries) {
    out.set(name, new TextDecoder().decode(await readZipEntry(src, e, FILE)));
  }
  return out;
}

function patch(bytes: Uint8Array, at: number, values: ArrayLike<number>): Uint8Array {
  const copy = bytes.slice();
  copy.set(values, at);
  return copy;
}

const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];

const SAMPLE: [string, Uint8Array][] = [
  ["a/data.pkl", enc("hello hello hello hello")],
  ["a/data/0", enc("0123456789")],
];

Deno.test("zip: crc32 matches zlib on every length up to 64", () => {
  for (let n = 0; n <= 64; n++) {
    const b = crypto.getRandomValues(new Uint8Array(n));
    assert.equal(crc32(b), zlibCrc32(b), `length ${n}`);
  }
});

Deno.test("zip: stored, deflated, ZIP64 and ZIP64+deflate archives read the same", async () => {
  for (const options of [{}, { deflate: true }, { zip64: true }, { zip64: true, deflate: true }]) {
    const got = await entries((await craftZip(SAMPLE, options)).bytes);
    assert.deepEqual(
      [...got],
      SAMPLE.map(([n, d]) => [n, new TextDecoder().decode(d)]),
      JSON.stringify(options),
    );
  }
});

Deno.test("zip: ranged reads of stored and deflated entries", async () => {
  for (const deflate of [false, true]) {
    const bytes = (await craftZip(SAMPLE, { deflate })).bytes;
    const src = bytesSource(bytes, FILE);
    const e = (await readZipDirectory(src, FILE)).entries.get("a/data/0")!;
    assert.equal(new TextDecoder().decode(await readZipRange(src, e, 3, 4, FILE)), "3456");
    await assertThrowsTyped(() => readZipRange(src, e, 8, 3, FILE), WeightsError, /outside/);
  }
});

Deno.test("zip: reads every torch.save fixture's directory", async () => {
  const file = `${FIXTURES_DIR}/models/clip_text/pytorch_model.bin`;
  const src = bytesSource(await Deno.readFile(file), file);
  const zip = await readZipDirectory(src, file);
  assert(zip.entries.has("pytorch_model/data.pkl"));
  const version = await readZipEntry(src, zip.entries.get("pytorch_model/version")!, file);
  assert.equal(new TextDecoder().decode(version).trim(), "3");
});

Deno.test("zip: truncated files are typed errors naming the file", async () => {
  const bytes = await Deno.readFile(`${FIXTURES_DIR}/models/clip_text/pytorch_model.bin`);
  for (
    const n of [0, 10, 21, 1000, bytes.byteLength >> 1, bytes.byteLength - 30, bytes.byteLength - 1]
  ) {
    await assertThrowsTyped(
      () => readZipDirectory(bytesSource(bytes.subarray(0, n)), "cut.bin"),
      WeightsError,
      /^cut\.bin: /,
    );
  }
});

Deno.test("zip: a bad central directory is refused", async () => {
  const z = await craftZip(SAMPLE);
  const cases: [string, Uint8Array, RegExp][] = [
    ["bad signature", patch(z.bytes, z.central[1]!, [0, 0, 0, 0]), /bad signature/],
    ["offset past the end", patch(z.bytes, z.eocd + 16, u32(0x7fff0000)), /outside the file/],
    ["size past the end", patch(z.bytes, z.eocd + 12, u32(0x7fff0000)), /outside the file/],
    ["too many entries", patch(z.bytes, z.eocd + 10, [200, 0]), /cannot fit/],
    [
      "local offset wrong",
      patch(z.bytes, z.central[1]! + 42, u32(z.local[0]!)),
      /local header|overlap/,
    ],
    ["local header moved", patch(z.bytes, z.central[0]! + 42, u32(3)), /local header/],
    ["multi-disk", patch(z.bytes, z.eocd + 4, [1, 0]), /multi-disk/],
    ["method", patch(z.bytes, z.central[0]! + 10, [99, 0]), /compression method 99/],
    ["encrypted", patch(z.bytes, z.central[0]! + 8, [1, 8]), /encrypted/],
  ];
  for (const [what, bytes, pattern] of cases) {
    await assertThrowsTyped(() => readZipDirectory(bytesSource(bytes), FILE), WeightsError, pattern)
      .catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
  }
});

Deno.test("zip: overlong sizes and a ZIP64 end record out of range are refused", async () => {
  const z = await craftZip(SAMPLE);
  const huge = patch(
    patch(z.bytes, z.central[1]! + 20, u32(0x10000000)),
    z.central[1]! + 24,
    u32(0x10000000),
  );
  await assertThrowsTyped(
    () => readZipDirectory(bytesSource(huge), FILE),
    WeightsError,
    /runs past/,
  );
  const z64 = await craftZip(SAMPLE, { zip64: true });
  // The ZIP64 locator's record offset, 12 bytes before the locator's end (= the EOCD).
  const far = patch(z64.bytes, z64.eocd - 12, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]);
  await assertThrowsTyped(() => readZipDirectory(bytesSource(far), FILE), WeightsError, /ZIP64/);
  // A ZIP64 extra field too short for the saturated sizes.
  const short = patch(z64.bytes, z64.central[0]! + 46 + "a/data.pkl".length + 2, [8, 0]);
  await assertThrowsTyped(() => readZipDirectory(bytesSource(short), FILE), WeightsError, /ZIP64/);
});

Deno.test("zip: path tricks, duplicates and name mismatches are refused", async () => {
  for (const name of ["../evil", "/etc/passwd", "a/../../b", "C:/x", "a\\b", "a//b"]) {
    const z = await craftZip([[name, enc("x")]]);
    await assertThrowsTyped(
      () => readZipDirectory(bytesSource(z.bytes), FILE),
      WeightsError,
      /plain relative path/,
    );
  }
  const dup = await craftZip([["a/x", enc("1")], ["a/x", enc("2")]]);
  await assertThrowsTyped(
    () => readZipDirectory(bytesSource(dup.bytes), FILE),
    WeightsError,
    /duplicate/,
  );
  const z = await craftZip(SAMPLE);
  const renamed = patch(z.bytes, z.local[1]! + 30, enc("b"));
  await assertThrowsTyped(
    () => readZipDirectory(bytesSource(renamed), FILE),
    WeightsError,
    /name differs/,
  );
});

Deno.test("zip: CRC mismatch and a lying deflate size are refused", async () => {
  const z = await craftZip(SAMPLE);
  const src = bytesSource(patch(z.bytes, z.local[1]! + 30 + "a/data/0".length, enc("X")), FILE);
  const e = (await readZipDirectory(src, FILE)).entries.get("a/data/0")!;
  await assertThrowsTyped(() => readZipEntry(src, e, FILE), WeightsError, /CRC/);

  const d = await craftZip(SAMPLE, { deflate: true });
  // Declare 5 bytes for data that inflates to 23: inflation stops at the declared size.
  const lying = bytesSource(patch(d.bytes, d.central[0]! + 24, u32(5)), FILE);
  const le = (await readZipDirectory(lying, FILE)).entries.get("a/data.pkl")!;
  await assertThrowsTyped(
    () => readZipEntry(lying, le, FILE),
    WeightsError,
    /larger than its declared/,
  );
  // A declared size no deflate stream could reach is refused up front.
  const bomb = patch(d.bytes, d.central[0]! + 24, u32(0x7fffffff));
  await assertThrowsTyped(
    () => readZipDirectory(bytesSource(bomb), FILE),
    WeightsError,
    /more than deflate/,
  );
});

Deno.test("zip: random corruption only ever gives typed errors", async () => {
  let seed = 1;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (const options of [{ zip64: true }, { deflate: true }]) {
    const base = (await craftZip(SAMPLE, options)).bytes;
    for (let i = 0; i < 1000; i++) {
      const bytes = base.slice();
      for (let k = 0; k < 1 + rand(4); k++) bytes[rand(bytes.length)] = rand(256);
      try {
        await entries(bytes);
      } catch (e) {
        assert(e instanceof WeightsError, `mutation ${i}: ${e}`);
      }
    }
  }
});

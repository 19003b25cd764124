import assert from "node:assert/strict";
import { PickleError } from "../lib/errors.ts";
import { PyDict, PyGlobal, type PyTuple, unpickle } from "../lib/weights/pickle.ts";
import { Pickle } from "./_craft_pickle.ts";
import { assertThrowsTyped } from "./_helpers.ts";

const NONE = { globals: {} };

Deno.test("pickle: scalars, strings, containers and the memo", () => {
  // {"a": [1, -2, 70000, True, None, 1.5], "b": ("x", "x"), "big": 2**70}
  const p = new Pickle().proto(4).op(0x95, 0, 0, 0, 0, 0, 0, 0, 0).op(0x7d).op(0x94).mark()
    .shortStr("a").op(0x5d).mark().int(1).int(-2).int(70000).op(0x88).op(0x4e)
    .op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0).op(0x65)
    .shortStr("b").shortStr("x").op(0x94).op(0x68, 1).op(0x86)
    .shortStr("big").op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40)
    .op(0x75).stop();
  const d = unpickle(p.bytes(), NONE);
  assert(d instanceof PyDict);
  assert.deepEqual(d.map.get("a"), [1, -2, 70000, true, null, 1.5]);
  assert.deepEqual((d.map.get("b") as PyTuple).items, ["x", "x"]);
  assert.equal(d.map.get("big"), 2n ** 70n);
});

Deno.test("pickle: LONG1 negative and small values become numbers", () => {
  const neg = unpickle(new Pickle().proto().op(0x8a, 2, 0x00, 0xff).stop().bytes(), NONE);
  assert.equal(neg, -256);
  assert.equal(unpickle(new Pickle().proto().op(0x8a, 0).stop().bytes(), NONE), 0);
});

Deno.test("pickle: allow-listed globals are called; storage-type markers are not callable", async () => {
  const calls: unknown[] = [];
  const globals = { "m.f": (a: readonly unknown[]) => (calls.push(a), "done"), "m.T": null };
  const p = new Pickle().proto().global("m", "f").shortStr("arg").op(0x85).reduce().stop();
  assert.equal(unpickle(p.bytes(), { globals }), "done");
  assert.deepEqual(calls, [["arg"]]);
  const marker = unpickle(new Pickle().proto().global("m", "T").stop().bytes(), { globals });
  assert(marker instanceof PyGlobal && marker.name === "m.T");
  const call = new Pickle().proto().global("m", "T").emptyTuple().reduce().stop();
  await assertThrowsTyped(
    () => unpickle(call.bytes(), { globals }),
    PickleError,
    /not an allowed callable/,
  );
});

Deno.test("pickle: a refused global stops everything before any call", async () => {
  let called = false;
  const globals = { "collections.OrderedDict": () => (called = true, new PyDict()) };
  // The refused global comes first; the allowed call after it must never run.
  const p = new Pickle().proto().global("os", "system").global("collections", "OrderedDict")
    .emptyTuple().reduce().stop();
  await assertThrowsTyped(
    () => unpickle(p.bytes(), { globals }),
    PickleError,
    /refusing to import os\.system/,
  );
  assert.equal(called, false);
  // Naming it is enough to be refused; no REDUCE is needed.
  const named = new Pickle().proto().global("builtins", "eval").stop();
  await assertThrowsTyped(() => unpickle(named.bytes(), NONE), PickleError, /builtins\.eval/);
});

Deno.test("pickle: inherited object keys are not globals", async () => {
  for (const [m, n] of [["__proto__", "x"], ["", "constructor"], ["Object", "prototype"]]) {
    const p = new Pickle().proto().global(m!, n!).stop();
    await assertThrowsTyped(() => unpickle(p.bytes(), NONE), PickleError, /refusing to import/);
  }
});

Deno.test("pickle: malformed input gives typed errors", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["no STOP", new Pickle().proto().int(1).bytes(), /needs 1 bytes/],
    ["underflow", new Pickle().proto().op(0x30).bytes(), /underflow/],
    ["missing memo", new Pickle().proto().op(0x68, 7).bytes(), /memo key 7/],
    [
      "overlong string",
      new Pickle().proto().op(0x58, 0xff, 0xff, 0xff, 0x7f, 0x61).bytes(),
      /needs 2147483647 bytes/,
    ],
    [
      "overlong 8-byte string",
      new Pickle().proto().op(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80).bytes(),
      /needs/,
    ],
    ["bad utf-8", new Pickle().proto().op(0x8c, 1, 0xff).stop().bytes(), /UTF-8/],
    ["no mark", new Pickle().proto().int(1).tuple().bytes(), /no MARK/],
    ["protocol 6", new Pickle().proto(6).bytes(), /protocol 6/],
    ["unknown opcode", new Pickle().proto().op(0x49).bytes(), /unsupported opcode 0x49/],
    ["leftovers", new Pickle().proto().int(1).int(2).stop().bytes(), /left on the stack/],
    ["append to dict", new Pickle().proto().op(0x7d).int(1).op(0x61).bytes(), /not a list/],
    [
      "unhashable key",
      new Pickle().proto().op(0x7d).op(0x5d).int(1).op(0x73).bytes(),
      /key of type list/,
    ],
    ["frame too long", new Pickle().proto(4).op(0x95, 99, 0, 0, 0, 0, 0, 0, 0).bytes(), /frame/],
    [
      "persistent id",
      new Pickle().proto().int(1).op(0x51).bytes(),
      /persistent ids are not allowed/,
    ],
    ["EXT", new Pickle().proto().op(0x82, 1).bytes(), /extension registry/],
    ["BUILD on list", new Pickle().proto().op(0x5d).op(0x7d).op(0x62).bytes(), /BUILD on a list/],
  ];
  for (const [what, bytes, pattern] of cases) {
    await assertThrowsTyped(() => unpickle(bytes, { ...NONE, file: "x.pkl" }), PickleError, pattern)
      .catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
  }
});

Deno.test("pickle: stack and mark nesting are bounded", async () => {
  const marks = new Uint8Array(20_002).fill(0x28);
  marks.set([0x80, 2]);
  await assertThrowsTyped(() => unpickle(marks, NONE), PickleError, /MARKs nested deeper/);
  const dups = new Uint8Array(1_000_010).fill(0x32);
  dups.set([0x80, 2, 0x4e]);
  await assertThrowsTyped(() => unpickle(dups, NONE), PickleError, /stack deeper/);
});

Deno.test("pickle: random bytes only ever give typed errors", () => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const ops = [
    0x28,
    0x2e,
    0x30,
    0x32,
    0x4b,
    0x4e,
    0x58,
    0x5d,
    0x61,
    0x65,
    0x68,
    0x71,
    0x73,
    0x74,
    0x75,
    0x7d,
    0x29,
    0x85,
    0x86,
    0x8c,
    0x94,
    0x62,
    0x52,
  ];
  for (let i = 0; i < 3000; i++) {
    const b = new Uint8Array(2 + rand(40)).map(() => rand(3) ? ops[rand(ops.length)]! : rand(256));
    b.set([0x80, 2]);
    try {
      unpickle(b, NONE);
    } catch (e) {
      assert(e instanceof PickleError, `case ${i}: ${e}`);
    }
  }
});

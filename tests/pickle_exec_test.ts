/**
 * No code execution from pickles: checkpoints crafted to call `os.system`,
 * `builtins.exec`, `subprocess.Popen` and friends through every importing
 * or calling opcode (GLOBAL, STACK_GLOBAL, INST, OBJ, NEWOBJ, NEWOBJ_EX,
 * REDUCE, via the memo too) are refused with a PickleError naming the
 * global, through the loader models use; REDUCE is refused on everything
 * but the allow-listed rebuild functions. (tests/pickle_test.ts and
 * tests/torch_bin_test.ts hold the unit cases; this is the full matrix.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { PickleError } from "../lib/errors.ts";
import { loadStateDict } from "../lib/weights/state_dict.ts";
import { Pickle, torchZip } from "./_craft_pickle.ts";
import { assertThrowsTyped } from "./_helpers.ts";

const DANGEROUS: readonly [string, string][] = [
  ["os", "system"],
  ["posix", "system"],
  ["nt", "system"],
  ["builtins", "exec"],
  ["builtins", "eval"],
  ["builtins", "__import__"],
  ["builtins", "getattr"],
  ["builtins", "open"],
  ["subprocess", "Popen"],
  ["subprocess", "check_output"],
  ["importlib", "import_module"],
  ["runpy", "_run_code"],
  ["pickle", "loads"],
  ["torch", "load"],
  ["torch.serialization", "load"],
  ["__main__", "Evil"],
];

const te = new TextEncoder();

/** A command that would leave a trace if anything ever ran it. */
function command(sentinel: string): string {
  return `touch ${sentinel}`;
}

/** Every way a pickle can name and call `module.name` with one string argument. */
function attacks(module: string, name: string, arg: string): [string, Pickle][] {
  const line = (s: string) => [...te.encode(`${s}\n`)];
  return [
    [
      "GLOBAL + REDUCE",
      new Pickle().proto().global(module, name).str(arg).op(0x85).reduce().stop(),
    ],
    [
      "STACK_GLOBAL + REDUCE",
      new Pickle().proto(4).shortStr(module).shortStr(name).op(0x93).str(arg).op(0x85).reduce()
        .stop(),
    ],
    ["INST", new Pickle().proto().mark().str(arg).op(0x69, ...line(module), ...line(name)).stop()],
    ["OBJ", new Pickle().proto().mark().global(module, name).str(arg).op(0x6f).stop()],
    [
      "NEWOBJ",
      new Pickle().proto(4).shortStr(module).shortStr(name).op(0x93).str(arg).op(0x85).op(0x81)
        .stop(),
    ],
    [
      "NEWOBJ_EX",
      new Pickle().proto(4).shortStr(module).shortStr(name).op(0x93).str(arg).op(0x85).op(0x7d)
        .op(0x92).stop(),
    ],
    [
      "memo then REDUCE",
      new Pickle().proto().global(module, name).op(0x71, 0).op(0x30).op(0x68, 0).str(arg).op(0x85)
        .reduce().stop(),
    ],
    [
      "inside a state dict",
      new Pickle().proto().op(0x7d).str("w").global(module, name).str(arg).op(0x85).reduce()
        .op(0x73).stop(),
    ],
  ];
}

async function checkpointDir(pickle: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "pickle_exec_" });
  await Deno.writeFile(
    `${dir}/diffusion_pytorch_model.bin`,
    await torchZip(pickle, { "0": new Uint8Array(0) }),
  );
  return dir;
}

Deno.test("pickle exec: every dangerous global, through every opcode, is refused by name and never runs", async () => {
  const sentinel = `${await Deno.makeTempDir()}/pwned`;
  let count = 0;
  try {
    for (const [module, name] of DANGEROUS) {
      for (const [how, pickle] of attacks(module, name, command(sentinel))) {
        const dir = await checkpointDir(pickle.bytes());
        try {
          const qualified = `${module}.${name}`.replaceAll(".", "\\.");
          const pattern = new RegExp(`refusing to import ${qualified}`);
          await assertThrowsTyped(() => loadStateDict(dir), PickleError, pattern).catch((e) => {
            throw new Error(`${module}.${name} via ${how}: ${e.message}`);
          });
          count++;
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }
    }
    await assert.rejects(Deno.stat(sentinel), Deno.errors.NotFound, "nothing ran");
  } finally {
    await Deno.remove(sentinel.slice(0, sentinel.lastIndexOf("/")), { recursive: true });
  }
  assert.equal(count, DANGEROUS.length * 8);
});

Deno.test("pickle exec: REDUCE only calls the allow-listed rebuild functions", async () => {
  const cases: [string, Pickle, RegExp][] = [
    [
      "a storage type (allowed to be named, not called)",
      new Pickle().proto().global("torch", "FloatStorage").str("x").op(0x85).reduce().stop(),
      /REDUCE target torch\.FloatStorage is not an allowed callable/,
    ],
    [
      "a string",
      new Pickle().proto().str("os.system").str("x").op(0x85).reduce().stop(),
      /REDUCE target string is not an allowed callable/,
    ],
    [
      "a dict",
      new Pickle().proto().op(0x7d).emptyTuple().reduce().stop(),
      /REDUCE target dict is not an allowed callable/,
    ],
    [
      "the result of an allowed call",
      new Pickle().proto().global("collections", "OrderedDict").emptyTuple().reduce().emptyTuple()
        .reduce().stop(),
      /REDUCE target dict is not an allowed callable/,
    ],
    [
      "BUILD on a global (setstate)",
      new Pickle().proto().global("collections", "OrderedDict").op(0x7d).op(0x62).stop(),
      /BUILD on a collections\.OrderedDict is not allowed/,
    ],
  ];
  for (const [what, pickle, pattern] of cases) {
    const dir = await checkpointDir(pickle.bytes());
    try {
      await assertThrowsTyped(() => loadStateDict(dir), PickleError, pattern).catch((e) => {
        throw new Error(`${what}: ${e.message}`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

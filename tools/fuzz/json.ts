/**
 * Structure-aware JSON mutations for config files, `model_index.json`,
 * tokenizer files and safetensors headers: a random node is replaced by an
 * edge value (NaN, ±Infinity, 2^53 + 2, -1, "..", an absolute path),
 * retyped, deleted, duplicated (keys too: JSON allows it), given a hostile
 * key (`__proto__`, `constructor`), spliced in from another document, or
 * replaced by very deep nesting or a huge array. The tree keeps objects as
 * key/value lists, so duplicate and prototype-named keys survive; deep
 * nesting is kept as raw text and never built as a tree, so the fuzzer
 * itself cannot overflow its stack.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { mutateJsonText } from "./json.ts";
 * const text = mutateJsonText(Rng.derive(1), '{"a": [1, 2]}', '{"b": null}');
 * console.log(typeof text); // "string"
 * ```
 *
 * @module
 */

import type { Rng } from "./rng.ts";

/** Text written verbatim (deep nesting, huge literals). */
class Raw {
  constructor(readonly text: string) {}
}

/** An object as an ordered key/value list (duplicates allowed). */
class Obj {
  constructor(readonly entries: [string, Tree][]) {}
}

/** A JSON document as the mutator edits it. */
type Tree = null | boolean | number | string | Raw | Obj | Tree[];

/** Reads a parsed JSON value (`JSON.parse` or Python-style) into a {@link Tree}. */
function toTree(value: unknown): Tree {
  if (Array.isArray(value)) return value.map(toTree);
  if (value !== null && typeof value === "object") {
    return new Obj(Object.entries(value).map(([k, v]) => [k, toTree(v)]));
  }
  if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") {
    return value;
  }
  return null;
}

/** Writes a tree as Python's `json` would (bare `NaN` / `Infinity`). */
function writeJson(tree: Tree): string {
  if (tree instanceof Raw) return tree.text;
  if (tree instanceof Obj) {
    return `{${tree.entries.map(([k, v]) => `${JSON.stringify(k)}:${writeJson(v)}`).join(",")}}`;
  }
  if (Array.isArray(tree)) return `[${tree.map(writeJson).join(",")}]`;
  if (typeof tree === "number" && !Number.isFinite(tree)) return String(tree);
  if (Object.is(tree, -0)) return "-0";
  return JSON.stringify(tree);
}

/** A deep copy, so a node pasted into its own subtree cannot make a cycle. */
function clone(tree: Tree): Tree {
  if (Array.isArray(tree)) return tree.map(clone);
  if (tree instanceof Obj) return new Obj(tree.entries.map(([k, v]) => [k, clone(v)]));
  return tree;
}

/** A place a node lives: read and replace it, or remove it. */
interface Slot {
  get(): Tree;
  set(value: Tree): void;
  remove(): void;
}

function slots(tree: Tree, out: Slot[]): Slot[] {
  const children: [Tree[] | [string, Tree][], number][] = [];
  if (Array.isArray(tree)) tree.forEach((_, i) => children.push([tree, i]));
  if (tree instanceof Obj) tree.entries.forEach((_, i) => children.push([tree.entries, i]));
  for (const [list, i] of children) {
    const isEntries = tree instanceof Obj;
    const entries = list as [string, Tree][];
    const items = list as Tree[];
    out.push({
      get: () => (isEntries ? entries[i]![1] : items[i]!),
      set: (v) => {
        if (isEntries) entries[i] = [entries[i]![0], v];
        else items[i] = v;
      },
      remove: () => list.splice(i, 1),
    });
    slots(isEntries ? entries[i]![1] : items[i]!, out);
  }
  return out;
}

function deepNesting(rng: Rng): Raw {
  const depth = rng.pick([64, 257, 1000, 10_000, 100_000]);
  return rng.chance(0.5)
    ? new Raw("[".repeat(depth) + "]".repeat(depth))
    : new Raw('{"a":'.repeat(depth) + "1" + "}".repeat(depth));
}

/** Values parsers mishandle: non-finite and unsafe numbers, path-like and odd strings, huge literals. */
function edgeValue(rng: Rng): Tree {
  switch (rng.int(5)) {
    case 0:
      return rng.pick([NaN, Infinity, -Infinity, -0, -1, 0, 0.5, 1e308, -1e308, 2 ** 31, 2 ** 32]);
    case 1:
      return rng.pick([2 ** 53, 2 ** 53 + 2, 1e21, 5e-324, 2 ** 63, -(2 ** 53), 1e16 + 1]);
    case 2:
      return rng.pick([
        "",
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\x",
        "a/../..",
        "\u0000",
        "__proto__",
        "constructor",
        "\u{1F600}".repeat(3),
        "x".repeat(rng.pick([100, 10_000, 1_000_000])),
      ]);
    case 3:
      return rng.pick<Tree>([null, true, false, [], new Obj([]), [null], new Obj([["", null]])]);
    default:
      return rng.chance(0.5) ? deepNesting(rng) : rng.pick([
        new Raw(`[${"0,".repeat(100_000)}0]`),
        new Raw(`1${"0".repeat(400)}`),
        new Raw(`0.${"0".repeat(400)}1`),
        new Raw(`{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(",")}}`),
      ]);
  }
}

function retype(value: Tree): Tree {
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return Number(value) || value.length;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (Array.isArray(value)) return new Obj(value.map((v, i) => [String(i), v]));
  if (value instanceof Obj) return value.entries.map(([, v]) => v);
  return value === null ? 0 : null;
}

const HOSTILE_KEYS = ["__proto__", "constructor", "prototype", "toString", "", "_class_name", "."];

/** One edit of `tree` in place (the root may be replaced: the new root is returned). */
function mutateOnce(rng: Rng, tree: Tree, donor: Tree): Tree {
  const places = slots(tree, []);
  if (places.length === 0 || rng.chance(0.03)) {
    return rng.chance(0.5) ? edgeValue(rng) : clone(donor);
  }
  // Numbers are lengths, sizes and counts more often than not: aim at them a third of the time.
  const numeric = places.filter((p) => typeof p.get() === "number");
  const slot = rng.pick(numeric.length > 0 && rng.chance(0.33) ? numeric : places);
  const value = slot.get();
  switch (rng.int(8)) {
    case 0:
    case 1:
      slot.set(edgeValue(rng));
      break;
    case 2:
      slot.set(retype(value));
      break;
    case 3:
      slot.remove();
      break;
    case 4: {
      const donorPlaces = slots(donor, []);
      slot.set(clone(donorPlaces.length > 0 ? rng.pick(donorPlaces).get() : donor));
      break;
    }
    case 5:
      if (typeof value === "number") {
        slot.set(rng.pick([value + 1, value - 1, -value, value * 2 ** 20]));
      } else slot.set(clone(rng.pick(places).get()));
      break;
    default: {
      const objects = places.map((p) => p.get()).filter((v): v is Obj => v instanceof Obj);
      const target = objects.length > 0
        ? rng.pick(objects)
        : tree instanceof Obj
        ? tree
        : undefined;
      if (!target) return tree;
      const existing = target.entries.map(([k]) => k);
      const key = rng.chance(0.5) && existing.length > 0
        ? rng.pick(existing)
        : rng.pick(HOSTILE_KEYS);
      target.entries.splice(rng.int(target.entries.length + 1), 0, [key, edgeValue(rng)]);
    }
  }
  return tree;
}

/**
 * A mutated copy of the JSON document `text`, with `donorText` as the splice
 * source. Text that does not parse (a seed already broken by byte mutations)
 * comes back unchanged.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { mutateJsonText } from "./json.ts";
 * console.log(mutateJsonText(Rng.derive(9), "{}", "[]").length > 0); // true
 * ```
 */
export function mutateJsonText(
  rng: Rng,
  text: string,
  donorText: string,
  parse: (text: string) => unknown = pythonJson,
): string {
  let tree: Tree;
  let donor: Tree;
  try {
    tree = toTree(parse(text));
    donor = toTree(parse(donorText));
  } catch {
    return text;
  }
  for (let n = 1 + rng.int(rng.chance(0.7) ? 1 : 3); n > 0; n--) {
    tree = mutateOnce(rng, tree, donor);
  }
  return writeJson(tree);
}

/** JSON with Python's bare non-finite tokens, which fixture configs use. */
function pythonJson(text: string): unknown {
  return JSON.parse(
    text.replace(/(?<=[:,\[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '"\u0000$1"'),
    (_k, v) => (typeof v === "string" && v.startsWith("\u0000") ? Number(v.slice(1)) : v),
  );
}

// The layout rules that keep one tree for every OS (issue 8): src/events.ts
// holds interfaces and imports no implementation, src/ has no import cycle,
// nothing under ffi/ imports src/, and the core never names an OS.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every .ts file under `dir` (relative to the project root). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

interface Import {
  /** The resolved path, relative to the project root. */
  target: string;
  /** Erased at run time (`import type`, or only `type` specifiers). */
  typeOnly: boolean;
}

/** The static imports and re-exports of a file. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(root, file), "utf8");
  const out: Import[] = [];
  const re = /^(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s+"([^"]+)";?/gms;
  for (const m of text.matchAll(re)) {
    const spec = m[3];
    if (!spec.startsWith(".")) continue;
    const names = m[2].match(/\{([^}]*)\}/)?.[1].split(",")
      .map((s) => s.trim()).filter(Boolean) ?? [];
    const typeOnly = m[1] !== undefined ||
      (names.length > 0 && names.every((n) => n.startsWith("type ")));
    out.push({
      target: relative(root, join(root, dirname(file), spec)),
      typeOnly,
    });
  }
  return out;
}

describe("layout", () => {
  it("src/events.ts imports no implementation (interfaces and option types only)", () => {
    // It names Future and Task in signatures (`import type`, erased at run
    // time); it never reaches the networking code or any module at run
    // time but contexts and error classes.
    const allowedAtRunTime = new Set(["src/context.ts", "src/exceptions.ts"]);
    const never =
      /src\/(base_events|selector_events|selector_transports|net|server|streams|sock_ops|runners|policy)\.ts$/;
    for (const { target, typeOnly } of importsOf("src/events.ts")) {
      assert.ok(
        !never.test(target),
        `src/events.ts imports ${target}`,
      );
      if (!typeOnly && target.startsWith("src/")) {
        assert.ok(
          allowedAtRunTime.has(target),
          `src/events.ts imports ${target} at run time`,
        );
      }
    }
  });

  it("src/ has no import cycle (run-time imports)", () => {
    const graph = new Map<string, string[]>();
    for (const file of tsFiles("src")) {
      graph.set(
        file,
        importsOf(file).filter((i) =>
          !i.typeOnly && i.target.startsWith("src/")
        )
          .map((i) => i.target),
      );
    }
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const cycles: string[] = [];
    const visit = (file: string) => {
      state.set(file, 1);
      stack.push(file);
      for (const dep of graph.get(file) ?? []) {
        if (state.get(dep) === 1) {
          cycles.push([...stack.slice(stack.indexOf(dep)), dep].join(" -> "));
        } else if (!state.has(dep)) visit(dep);
      }
      stack.pop();
      state.set(file, 2);
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file);
    assert.deepEqual(cycles, []);
  });

  it("nothing under ffi/ imports src/", () => {
    const offenders = tsFiles("ffi").flatMap((file) =>
      importsOf(file).filter((i) => i.target.startsWith("src/"))
        .map((i) => `${file} -> ${i.target}`)
    );
    assert.deepEqual(offenders, []);
  });

  it("the core (src/) never branches on an OS name", () => {
    const offenders = tsFiles("src").filter((file) =>
      /platform\s*===|Deno\.build\.os|process\.platform|"(linux|darwin|freebsd|win32)"/
        .test(readFileSync(join(root, file), "utf8"))
    );
    assert.deepEqual(offenders, []);
  });
});

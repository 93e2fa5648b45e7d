// ffi/runtime.ts: how integers cross the FFI edge in each runtime.
//
// Deno 2.x's fast calls take a 64-bit integer parameter only as a BigInt;
// a number there makes the optimized caller deoptimize ("not a BigInt") and
// be optimized again, for as long as the program runs. That cost Deno's
// small-message echo more than 10 % of its throughput, through recv() and
// send()'s size_t length. openLibrary converts those parameters once for
// every caller; these tests check the values still arrive whole, on every
// arity of wrapper, and (Deno) that the hot socket calls run without that
// deoptimization loop.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { arch, openLibrary, platform, runtime } from "../ffi/runtime.ts";
import { libcPath } from "../ffi/libc.ts";

const process = Reflect.get(globalThis, "process") as { execPath: string };

describe("64-bit integers at the FFI edge", () => {
  it("64-bit parameters take numbers and 64-bit results are numbers", () => {
    const lib = openLibrary(libcPath, {
      strnlen: { parameters: ["buffer", "u64"], result: "u64" },
      labs: { parameters: ["i64"], result: "i64" },
      memchr: { parameters: ["buffer", "i32", "u64"], result: "pointer" },
    });
    try {
      // NUL-terminated, so strnlen stops inside the array.
      const text = new Uint8Array([...new TextEncoder().encode("abcdefgh"), 0]);
      // Above 2 ** 32, so a wrapper that truncated to 32 bits would show.
      assert.equal(lib.symbols.strnlen(text, 2 ** 40), 8);
      assert.equal(lib.symbols.strnlen(text, 3), 3);
      assert.equal(lib.symbols.labs(-(2 ** 40 + 5)), 2 ** 40 + 5);
      assert.equal(typeof lib.symbols.labs(-7), "number");
      assert.notEqual(lib.symbols.memchr(text, 0x68, 8), null);
      assert.equal(lib.symbols.memchr(text, 0x68, 7), null);
    } finally {
      lib.close();
    }
  });

  // syscall(2) is variadic; every argument travels in an integer register
  // as a long, so binding it with seven i64 parameters is exact. getpid
  // ignores the six after the number, which still go through the
  // conversion of the generic (more than six parameters) wrapper.
  const SYS_GETPID: Record<string, number> = { x64: 39, arm64: 172 };
  it("the wrapper for more than six parameters passes every argument", {
    skip: platform !== "linux" || !(arch in SYS_GETPID)
      ? "syscall numbers are known here for Linux x64 and arm64 only"
      : false,
  }, () => {
    const i64 = "i64" as const;
    const lib = openLibrary(libcPath, {
      syscall: { parameters: [i64, i64, i64, i64, i64, i64, i64], result: i64 },
      getpid: { parameters: [], result: "i32" },
    });
    try {
      const pid = lib.symbols.syscall(SYS_GETPID[arch], 1, 2, 3, 4, 5, 6);
      assert.equal(pid, lib.symbols.getpid());
    } finally {
      lib.close();
    }
  });

  it(
    "Deno: send() and recvInto() stay optimized (no 'not a BigInt' deoptimization)",
    {
      skip: runtime === "deno"
        ? false
        : "V8's fast-call rule; Bun's FFI takes numbers for 64-bit parameters",
    },
    () => {
      const dir = mkdtempSync(join(tmpdir(), "aioloop-runtime-"));
      try {
        const socketTs = fileURLToPath(
          new URL("../ffi/socket.ts", import.meta.url),
        );
        const script = join(dir, "hot.ts");
        writeFileSync(
          script,
          `import { socketpair } from ${JSON.stringify(socketTs)};
const [a, b] = socketpair();
const out = new Uint8Array(64).fill(7);
const into = new Uint8Array(64);
function round(): number {
  a.send(out);
  return b.recvInto(into) ?? -1;
}
let total = 0;
for (let i = 0; i < 100_000; i++) total += round();
a.close();
b.close();
console.log("moved", total);
`,
        );
        const child = spawnSync(
          process.execPath,
          ["run", "-A", "--v8-flags=--trace-deopt", script],
          { timeout: 60_000, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
        );
        assert.equal(child.error, undefined, `${child.error}`);
        assert.equal(child.status, 0, child.stderr);
        assert.match(child.stdout, /moved 6400000/);
        const loops = child.stdout.split("\n")
          .filter((line) => line.includes("not a BigInt"));
        assert.deepEqual(loops, [], "64-bit parameters were passed as numbers");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

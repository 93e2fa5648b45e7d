// Runs the whole test suite under Deno and Bun, on every selector backend,
// and prints one line "N passed, N failed" for all runs together.
//
//   node scripts/run-tests.mjs [--runtime deno|bun] [--selector epoll|poll|kqueue] [files...]
//
// The default run is epoll and poll. "kqueue" on Linux needs libkqueue: set
// AIOLOOP_LIBKQUEUE to the built library (scripts/build-libkqueue.sh);
// without it a kqueue run is skipped with a message and counts 0 and 0.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const pick = (flag, all) => {
  const i = args.indexOf(flag);
  if (i < 0) return all;
  const value = args[i + 1];
  args.splice(i, 2);
  return [value];
};
const runtimes = pick("--runtime", ["deno", "bun"]);
const selectors = pick("--selector", ["epoll", "poll"]);
const files = args.length ? args : ["tests/"];

function command(runtime) {
  const bin = join(root, "node_modules", ".bin", runtime);
  return runtime === "deno"
    ? [bin, ["test", "-A", "--quiet", ...files]]
    : [bin, ["test", "--timeout", "20000", ...files]];
}

// Deno: "ok | 3 passed (40 steps) | 0 failed (2 steps)"; node:test's
// describe/it become a test with steps, so steps are the leaf tests.
function parseDeno(text) {
  const m = text.match(
    /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/,
  );
  if (!m) return null;
  const passed = m[2] !== undefined ? Number(m[2]) : Number(m[1]);
  const failed = m[4] !== undefined ? Number(m[4]) : Number(m[3]);
  return { passed, failed: failed || (Number(m[3]) > 0 ? Number(m[3]) : 0) };
}

// Bun: " 40 pass" / " 0 fail".
function parseBun(text) {
  const p = text.match(/^\s*(\d+) pass\s*$/m);
  const f = text.match(/^\s*(\d+) fail\s*$/m);
  if (!p && !f) return null;
  return { passed: p ? Number(p[1]) : 0, failed: f ? Number(f[1]) : 0 };
}

// kqueue exists on macOS and the BSDs; on Linux only through libkqueue.
function kqueueSkipReason() {
  if (process.platform !== "linux" || process.env.AIOLOOP_LIBKQUEUE) {
    return null;
  }
  return "AIOLOOP_LIBKQUEUE is not set. To run the suite over kqueue on " +
    "Linux, build libkqueue from its source (outside this repo):\n" +
    '  export AIOLOOP_LIBKQUEUE="$(scripts/build-libkqueue.sh ' +
    '<libkqueue-src> /tmp/libkqueue-build | tail -n 1)"\n' +
    "  npm run test:kqueue";
}

function runOne(runtime, selector) {
  if (selector === "kqueue") {
    const reason = kqueueSkipReason();
    if (reason !== null) {
      console.log(`\n=== ${runtime} test, selector=kqueue: SKIPPED ===`);
      console.log(reason);
      console.log(`--- ${runtime}/kqueue: 0 passed, 0 failed (skipped)`);
      return Promise.resolve({ passed: 0, failed: 0, code: 0 });
    }
  }
  return new Promise((resolve) => {
    const [bin, argv] = command(runtime);
    const started = Date.now();
    console.log(`\n=== ${runtime} test, selector=${selector} ===`);
    const child = spawn(bin, argv, {
      cwd: root,
      env: { ...process.env, AIOLOOP_SELECTOR: selector, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    const onData = (chunk) => {
      text += chunk;
      process.stdout.write(chunk);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60 * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      // deno-lint-ignore no-control-regex
      const clean = text.replace(/\x1b\[[0-9;]*m/g, "");
      const counts = (runtime === "deno" ? parseDeno : parseBun)(clean);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (!counts) {
        console.log(`!!! ${runtime}/${selector}: no summary (exit ${code})`);
        resolve({ passed: 0, failed: 1, code });
        return;
      }
      if (code !== 0 && counts.failed === 0) counts.failed = 1;
      console.log(
        `--- ${runtime}/${selector}: ${counts.passed} passed, ${counts.failed} failed (${seconds}s)`,
      );
      resolve({ ...counts, code });
    });
  });
}

let passed = 0;
let failed = 0;
for (const runtime of runtimes) {
  for (const selector of selectors) {
    const r = await runOne(runtime, selector);
    passed += r.passed;
    failed += r.failed;
  }
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

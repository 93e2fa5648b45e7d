// What the benchmark drivers (bench/run.mjs, bench/echo.mjs, bench/ab.mjs)
// share: paths to the runtimes, a quiet spawnSync, version strings, building
// the echo load generator, and making sure Debian's python3-uvloop is
// installed.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** bench/ and the project root. */
export const bench = dirname(fileURLToPath(import.meta.url));
export const root = join(bench, "..");
export const DENO = join(root, "node_modules", ".bin", "deno");
export const BUN = join(root, "node_modules", ".bin", "bun");
export const PYTHON = "/usr/bin/python3";

/** The children's environment: no colours, never aioloop's debug mode. */
export const childEnv = { ...process.env, NO_COLOR: "1" };
// Debug mode would time every callback: never benchmark it.
delete childEnv.AIOLOOP_DEBUG;

/** Notes for the results file, added to by the helpers here too. */
export const notes = [];

/** A line on stderr (stdout carries the results). */
export function log(message) {
  process.stderr.write(`${message}\n`);
}

/** spawnSync with captured text output and a 2-minute default timeout. */
export function quiet(cmd, args, options = {}) {
  return spawnSync(cmd, args, {
    encoding: "utf8",
    env: childEnv,
    timeout: 120_000,
    ...options,
  });
}

/** The first line a `--version` style command prints, or "?". */
export function version(cmd, args) {
  const result = quiet(cmd, args);
  return result.status === 0 ? result.stdout.trim().split("\n")[0] : "?";
}

function hasUvloop() {
  return quiet(PYTHON, ["-c", "import uvloop"]).status === 0;
}

/**
 * Makes sure uvloop imports in /usr/bin/python3 (apt-get install
 * python3-uvloop when missing); returns false, with a note, if not.
 */
export function ensureUvloop() {
  if (hasUvloop()) return true;
  log("uvloop is missing: apt-get install -y python3-uvloop ...");
  const isRoot = typeof process.getuid === "function" &&
    process.getuid() === 0;
  const sudo = isRoot ? [] : ["sudo", "-n"];
  const apt = (...args) => {
    const [cmd, ...rest] = [...sudo, "apt-get", ...args];
    const result = quiet(cmd, rest, {
      timeout: 300_000,
      env: { ...childEnv, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (result.status !== 0) {
      log((result.stderr || String(result.error ?? "")).trim());
    }
    return result.status === 0;
  };
  apt("update", "-qq");
  apt("install", "-y", "-qq", "python3-uvloop");
  if (hasUvloop()) {
    notes.push("python3-uvloop was installed with apt-get for this run.");
    return true;
  }
  notes.push(
    "uvloop skipped: `apt-get install -y python3-uvloop` failed or did not " +
      "make `import uvloop` work in /usr/bin/python3.",
  );
  return false;
}

/** C compilers to try, in order; the first one found builds echo-load. */
export const COMPILERS = ["cc", "gcc", "clang"];
const LOAD_SOURCE = join(bench, "echo-load.c");

/**
 * Compiles echo-load.c into `dir` with the first compiler of COMPILERS
 * found. Returns `{ binary, compiler }`, `{ missing: true }` when there is
 * no compiler, or `{ error }` when the compiler failed.
 */
export function buildLoadGenerator(dir) {
  const binary = join(dir, "echo-load");
  const flags = ["-O2", "-Wall", "-Wextra", "-o", binary, LOAD_SOURCE];
  for (const compiler of COMPILERS) {
    const result = quiet(compiler, flags);
    if (result.error?.code === "ENOENT") continue;
    if (result.status === 0) return { binary, compiler };
    const why = (result.stderr || String(result.error ?? "")).trim();
    return {
      error: `cannot compile ${LOAD_SOURCE} with ${compiler} -O2: ` +
        (why || `exit ${result.status ?? result.signal}`),
    };
  }
  return { missing: true };
}

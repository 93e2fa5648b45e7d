// A/B echo benchmark: is this checkout faster or slower than another one?
//
//   node bench/ab.mjs BASE [HEAD] [--runtime deno|bun] [--server FILE]
//                     [--conns N] [--size BYTES] [--rounds N] [--seconds S]
//
// BASE and HEAD are each a directory holding a checkout of aioloop, or a
// git revision of this repository (checked out into a temporary worktree,
// removed at the end). HEAD defaults to this checkout. Defaults: deno,
// aioloop_protocol.ts, 10 connections, 1024 bytes, 10 rounds, 2 seconds.
//
// Both trees run the same server script, this checkout's bench/echo/FILE,
// with its import of `../../mod.ts` pointed at each tree's mod.ts, so only
// the library differs. Every round starts a fresh server per tree, warms it
// up for a second, measures it with bench/echo-load.c, and kills it; the
// order alternates between rounds so that drift on the machine (another
// job, thermal state) falls on both. With `taskset` and two or more CPUs,
// the server runs on CPU 0 and the load on CPU 1, which makes the spread
// between rounds several times smaller here than unpinned.
//
// Output: each tree's msgs/s per round, the medians, their ratio HEAD/BASE
// and in how many rounds HEAD was higher. Small differences need many
// rounds: on the 2-CPU machines here a single round varies by about 5 %.
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import {
  buildLoadGenerator,
  BUN,
  childEnv,
  DENO,
  log,
  quiet,
  root,
} from "./tools.mjs";

const USAGE = "usage: node bench/ab.mjs BASE [HEAD] [--runtime deno|bun] " +
  "[--server FILE] [--conns N] [--size BYTES] [--rounds N] [--seconds S]";
const READY_TIMEOUT_MS = 15_000;

/** A mistake in the command line or the trees: reported with the usage. */
class UsageError extends Error {}

function fail(message) {
  throw new UsageError(message);
}

/** An integer option in [min, max]. */
function intOption(name, raw, min, max) {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(`--${name} must be an integer from ${min} to ${max}, not ${raw}`);
  }
  return value;
}

function parseArgs(argv) {
  const options = {
    runtime: "deno",
    server: "aioloop_protocol.ts",
    conns: 10,
    size: 1024,
    rounds: 10,
    seconds: 2,
  };
  const trees = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      trees.push(arg);
      continue;
    }
    const name = arg.slice(2);
    const raw = argv[++i];
    if (raw === undefined) fail(`${arg} needs a value`);
    if (name === "runtime") {
      if (raw !== "deno" && raw !== "bun") fail("--runtime is deno or bun");
      options.runtime = raw;
    } else if (name === "server") {
      if (!/^aioloop_\w+\.ts$/.test(raw)) {
        fail("--server is one of bench/echo/aioloop_*.ts");
      }
      options.server = raw;
    } else if (name === "conns") options.conns = intOption(name, raw, 1, 1000);
    else if (name === "size") options.size = intOption(name, raw, 1, 1 << 20);
    else if (name === "rounds") options.rounds = intOption(name, raw, 1, 100);
    else if (name === "seconds") options.seconds = intOption(name, raw, 1, 60);
    else fail(`unknown option ${arg}`);
  }
  if (trees.length < 1 || trees.length > 2) fail("give BASE and maybe HEAD");
  return { options, base: trees[0], head: trees[1] ?? root };
}

const cleanups = [];
/** Servers running now: killed by cleanup() too (a signal skips finally). */
const servers = new Set();
function cleanup() {
  for (const child of servers) child.kill("SIGKILL");
  servers.clear();
  while (cleanups.length) cleanups.pop()();
}

/** A directory holding `tree`: itself, or a temporary worktree of a revision. */
function checkout(tree) {
  if (existsSync(join(tree, "mod.ts"))) return resolve(tree);
  const rev = quiet("git", ["rev-parse", "--verify", `${tree}^{commit}`], {
    cwd: root,
  });
  if (rev.status !== 0) fail(`${tree} is neither a checkout nor a revision`);
  const dir = mkdtempSync(join(tmpdir(), "aioloop-ab-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const add = quiet("git", [
    "worktree",
    "add",
    "--detach",
    dir,
    rev.stdout.trim(),
  ], {
    cwd: root,
  });
  if (add.status !== 0) fail(`git worktree add failed: ${add.stderr.trim()}`);
  cleanups.push(() => {
    quiet("git", ["worktree", "remove", "--force", dir], { cwd: root });
    quiet("git", ["worktree", "prune"], { cwd: root });
  });
  return dir;
}

/** The server script, importing `tree`'s mod.ts, written into `dir`. */
function serverScript(server, tree, dir, label) {
  const source = readFileSync(join(root, "bench", "echo", server), "utf8");
  const modUrl = pathToFileURL(join(tree, "mod.ts")).href;
  if (!source.includes(`"../../mod.ts"`)) {
    fail(`bench/echo/${server} does not import "../../mod.ts"`);
  }
  const file = join(dir, `${label}_${server}`);
  writeFileSync(
    file,
    source.replaceAll(`"../../mod.ts"`, JSON.stringify(modUrl)),
  );
  return file;
}

const pinned = cpus().length >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const onCpu = (cpu, cmd, args) =>
  pinned ? ["taskset", ["-c", String(cpu), cmd, ...args]] : [cmd, args];

/** Starts a server; resolves to { child, port }. */
function startServer(runtime, script) {
  const [cmd, args] = runtime === "deno"
    ? onCpu(0, DENO, ["run", "-A", script])
    : onCpu(0, BUN, [script]);
  const child = spawn(cmd, args, {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  servers.add(child);
  child.once("exit", () => servers.delete(child));
  return new Promise((resolvePort, reject) => {
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${cmd}: ${e.message}`));
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `no READY line in ${READY_TIMEOUT_MS} ms: ${err.slice(-2000)}`,
        ),
      );
    }, READY_TIMEOUT_MS);
    child.stderr.on("data", (d) => err += d);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolvePort({ child, port: Number(m[1]) });
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`server exited (${code ?? signal}): ${err.slice(-2000)}`),
      );
    });
  });
}

/** msgs/s of one load run. */
function load(binary, port, options, seconds) {
  const [cmd, args] = onCpu(
    1,
    binary,
    [port, options.conns, options.size, seconds].map(String),
  );
  const run = quiet(cmd, args, { timeout: (seconds + 30) * 1000 });
  const m = /msgs_per_s=([\d.]+).*errors=(\d+)/.exec(run.stdout ?? "");
  if (!m) throw new Error(`echo-load failed: ${run.stderr || run.error}`);
  if (Number(m[2]) > 0) throw new Error(`echo-load counted errors: ${m[0]}`);
  return Math.round(Number(m[1]));
}

async function measure(binary, runtime, script, options) {
  const { child, port } = await startServer(runtime, script);
  try {
    load(binary, port, options, 1);
    return load(binary, port, options, options.seconds);
  } finally {
    // (The exit handler's reject is a no-op now: the promise resolved.)
    servers.delete(child);
    child.kill("SIGKILL");
  }
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

async function main() {
  const { options, base, head } = parseArgs(process.argv.slice(2));
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      cleanup();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  }
  const tmp = mkdtempSync(join(tmpdir(), "aioloop-ab-run-"));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const built = buildLoadGenerator(tmp);
  if (!built.binary) {
    fail(
      built.error ??
        "no C compiler (cc, gcc or clang) to build bench/echo-load.c",
    );
  }
  const trees = { base: checkout(base), head: checkout(head) };
  const scripts = {
    base: serverScript(options.server, trees.base, tmp, "base"),
    head: serverScript(options.server, trees.head, tmp, "head"),
  };
  log(
    `${options.runtime} ${options.server}, ${options.size} B x ${options.conns} conns, ` +
      `${options.rounds} rounds of ${options.seconds} s, ` +
      (pinned
        ? "server on CPU 0, load on CPU 1"
        : "not pinned (no taskset or one CPU)"),
  );
  log(`base: ${base} (${trees.base})\nhead: ${head} (${trees.head})`);
  const results = { base: [], head: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 ? ["head", "base"] : ["base", "head"];
    for (const name of order) {
      results[name].push(
        await measure(built.binary, options.runtime, scripts[name], options),
      );
    }
    log(
      `round ${round + 1}: base ${results.base.at(-1)}, head ${
        results.head.at(-1)
      } msgs/s`,
    );
  }
  const b = median(results.base);
  const h = median(results.head);
  const higher = results.head.filter((v, i) => v > results.base[i]).length;
  console.log(
    `base median ${b} msgs/s, head median ${h} msgs/s: ` +
      `head/base ${
        (h / b).toFixed(3)
      }, head higher in ${higher} of ${options.rounds} rounds`,
  );
}

try {
  await main();
} catch (e) {
  console.error(e instanceof UsageError ? `${e.message}\n${USAGE}` : e);
  process.exitCode = e instanceof UsageError ? 2 : 1;
} finally {
  cleanup();
}

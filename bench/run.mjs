// The benchmark suite (`npm run bench`): runs every measurement side by
// side in one run and prints one markdown table (also written to
// bench/results.md) with absolute numbers and ratios:
//
// 1. a chain of 1,000,000 callbacks, each scheduling the next (M/s):
//    aioloop callSoon vs queueMicrotask and setImmediate, in Deno and Bun;
//    call_soon on CPython asyncio and uvloop;
// 2. 200,000 timers with random delays in [0, 50) ms, every other one
//    cancelled, run until all fired (ms of wall time): callLater vs
//    setTimeout; call_later on asyncio and uvloop;
// 3. wake round trip from another thread (p50 / p99 µs): a Worker calling
//    an idle loop's remote callback vs Worker postMessage round trips;
//    call_soon_threadsafe from a thread on asyncio and uvloop;
// 4. CPU used by an idle loop over 2 s (% of one core): runForever with
//    one callLater(2000, stop) vs a lone setTimeout(2000); asyncio and
//    uvloop running sleep(2).
//
// Each measurement is its own program (bench/scheduling.ts,
// bench/worker_rtt.ts, bench/py/*.py) printing one JSON line; this file
// spawns them one after another. Python is Debian's /usr/bin/python3;
// uvloop comes from the python3-uvloop package, installed with apt-get
// when missing (the uvloop cells are skipped with a note if that fails).
// BENCH_REPS (default 5) sets the timed repetitions of benchmarks 1 and 2;
// the median is reported. Benchmarks, not tests: nothing here asserts.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  bench,
  BUN,
  DENO,
  ensureUvloop,
  log,
  notes,
  PYTHON,
  quiet,
  root,
  version,
} from "./tools.mjs";

const REPS = Number.isInteger(Number(process.env.BENCH_REPS)) &&
    Number(process.env.BENCH_REPS) > 0
  ? Number(process.env.BENCH_REPS)
  : 5;
const JOB_TIMEOUT_MS = 120_000;

// -- prerequisites -------------------------------------------------------------

// -- running the programs --------------------------------------------------------

/** Runs one benchmark program; returns its JSON result or { error }. */
function measure(label, cmd, args) {
  const start = Date.now();
  process.stderr.write(`  ${label} ... `);
  const result = quiet(cmd, args, { cwd: root });
  const seconds = ((Date.now() - start) / 1000).toFixed(1);
  const line = (result.stdout ?? "").trim().split("\n").filter((l) =>
    l.startsWith("{")
  ).pop();
  if (result.status === 0 && line) {
    log(`${seconds} s`);
    return JSON.parse(line);
  }
  const why = result.error?.code === "ETIMEDOUT"
    ? `timed out after ${JOB_TIMEOUT_MS / 1000} s`
    : `exit ${result.status ?? result.signal}`;
  const stderr = (result.stderr ?? "").trim().split("\n").slice(-3).join(" | ");
  log(`failed (${why})`);
  notes.push(`${label} failed (${why}): ${stderr}`);
  return { error: why };
}

const runtimes = {
  deno: (file, args) => [DENO, ["run", "-A", join("bench", file), ...args]],
  bun: (file, args) => [BUN, [join("bench", file), ...args]],
};

function ts(runtime, file, ...args) {
  const [cmd, argv] = runtimes[runtime](file, args);
  return measure(`${runtime} ${file} ${args.join(" ")}`, cmd, argv);
}

function py(file, ...args) {
  return measure(
    `python ${file} ${args.join(" ")}`,
    PYTHON,
    [join("bench", "py", file), ...args],
  );
}

const hasPython = existsSync(PYTHON);
if (!hasPython) notes.push(`Python columns skipped: ${PYTHON} not found.`);
const withUvloop = hasPython && ensureUvloop();
const hasTaskset = quiet("taskset", ["-c", "0", "true"]).status === 0;
const reps = `--reps=${REPS}`;
const results = {};
const pythonLoops = hasPython
  ? ["asyncio", ...(withUvloop ? ["uvloop"] : [])]
  : [];

log("1. callSoon chain");
for (const rt of ["deno", "bun"]) {
  for (const mode of ["ours", "microtask", "immediate"]) {
    results[`chain-${mode}-${rt}`] = ts(
      rt,
      "scheduling.ts",
      `chain-${mode}`,
      reps,
    );
  }
}
for (const kind of pythonLoops) {
  results[`chain-${kind}`] = py("scheduling.py", "chain", kind, reps);
}

log("2. timers");
for (const rt of ["deno", "bun"]) {
  for (const mode of ["ours", "native"]) {
    results[`timers-${mode}-${rt}`] = ts(
      rt,
      "scheduling.ts",
      `timers-${mode}`,
      reps,
    );
  }
}
for (const kind of pythonLoops) {
  results[`timers-${kind}`] = py("scheduling.py", "timers", kind, reps);
}

log("3. wake round trip from another thread");
for (const rt of ["deno", "bun"]) {
  for (const mode of ["ours", "native"]) {
    results[`rtt-${mode}-${rt}`] = ts(rt, "worker_rtt.ts", mode);
  }
}
for (const kind of pythonLoops) results[`rtt-${kind}`] = py("rtt.py", kind);
if (hasTaskset) {
  for (const rt of ["deno", "bun"]) {
    for (const mode of ["ours", "native"]) {
      const [cmd, argv] = runtimes[rt]("worker_rtt.ts", [mode]);
      results[`rtt-${mode}-pinned-${rt}`] = measure(
        `taskset -c 0 ${rt} worker_rtt.ts ${mode}`,
        "taskset",
        ["-c", "0", cmd, ...argv],
      );
    }
  }
}

log("4. idle CPU");
for (const rt of ["deno", "bun"]) {
  for (const mode of ["ours", "native"]) {
    results[`idle-${mode}-${rt}`] = ts(rt, "scheduling.ts", `idle-${mode}`);
  }
}
for (const kind of pythonLoops) {
  results[`idle-${kind}`] = py("scheduling.py", "idle", kind);
}

// -- the table -------------------------------------------------------------------

/** A number from a result, or null when it failed or was skipped. */
function value(key, field = "value") {
  const r = results[key];
  return r && typeof r[field] === "number" ? r[field] : null;
}

const fixed = (x, digits) => x === null ? "n/a" : x.toFixed(digits);
const ratio = (a, b) => a === null || b === null || b === 0 ? null : a / b;
const times = (r) => r === null ? "n/a" : `${r.toFixed(2)}x`;
const verdict = (ok) => ok ? " (met)" : " (missed)";
const skipped = (key) => results[key] === undefined;

/** "p50 / p99" of a round-trip result. */
function rtt(key) {
  if (skipped(key)) return "skipped";
  const p50 = value(key, "p50");
  return p50 === null
    ? "n/a"
    : `${fixed(p50, 1)} / ${fixed(value(key, "p99"), 1)}`;
}

/** A cell of a Python result. */
const pyCell = (key, digits) =>
  skipped(key) ? "skipped" : fixed(value(key), digits);

/** "0.52x (met)": the ratio and whether it meets `ok`. */
function targetRatio(a, b, ok) {
  const r = ratio(a, b);
  return r === null ? "n/a" : times(r) + verdict(ok(r));
}

const RTS = ["deno", "bun"];
const rows = [];
/** One row; `perRt(rt)` gives the Deno and Bun cells. */
function row(bench, impl, perRt, python = "", target = "") {
  const [deno, bun] = perRt ? RTS.map(perRt) : ["", ""];
  rows.push([bench, impl, deno, bun, python, target]);
}

const CHAIN = "1. callSoon chain: M callbacks/s (higher is better)";
const chain = (mode, digits) => (rt) =>
  fixed(value(`chain-${mode}-${rt}`), digits);
row(CHAIN, "aioloop `callSoon`", chain("ours", 2));
row(CHAIN, "`queueMicrotask` (ceiling, not a loop)", chain("microtask", 1));
row(CHAIN, "`setImmediate`", chain("immediate", 2));
row(CHAIN, "asyncio `call_soon`", null, pyCell("chain-asyncio", 2));
row(CHAIN, "uvloop `call_soon`", null, pyCell("chain-uvloop", 2));
row(
  CHAIN,
  "ratio aioloop ÷ uvloop",
  (rt) =>
    targetRatio(
      value(`chain-ours-${rt}`),
      value("chain-uvloop"),
      (r) => r >= 1,
    ),
  "",
  ">= 1.00x",
);
row(
  CHAIN,
  "ratio aioloop ÷ `setImmediate`",
  (rt) =>
    times(ratio(value(`chain-ours-${rt}`), value(`chain-immediate-${rt}`))),
);

const TIMERS = "2. 200,000 timers, half cancelled: ms (lower is better)";
const timers = (mode) => (rt) => fixed(value(`timers-${mode}-${rt}`), 0);
row(TIMERS, "aioloop `callLater` + `cancel`", timers("ours"));
row(TIMERS, "`setTimeout` + `clearTimeout`", timers("native"));
row(
  TIMERS,
  "asyncio `call_later` + `cancel`",
  null,
  pyCell("timers-asyncio", 0),
);
row(TIMERS, "uvloop `call_later` + `cancel`", null, pyCell("timers-uvloop", 0));
row(
  TIMERS,
  "ratio aioloop ÷ `setTimeout`",
  (rt) =>
    targetRatio(
      value(`timers-ours-${rt}`),
      value(`timers-native-${rt}`),
      (r) => r <= 1.5,
    ),
  "",
  "<= 1.50x",
);
row(
  TIMERS,
  "ratio aioloop ÷ uvloop",
  (rt) => times(ratio(value(`timers-ours-${rt}`), value("timers-uvloop"))),
);

const RTT = "3. wake round trip from a thread: p50 / p99 µs (lower is better)";
row(
  RTT,
  "aioloop: Worker `call()` to an idle loop",
  (rt) => rtt(`rtt-ours-${rt}`),
);
row(RTT, "Worker `postMessage` ping-pong", (rt) => rtt(`rtt-native-${rt}`));
row(RTT, "asyncio `call_soon_threadsafe`", null, rtt("rtt-asyncio"));
row(RTT, "uvloop `call_soon_threadsafe`", null, rtt("rtt-uvloop"));
if (hasTaskset) {
  row(
    RTT,
    "aioloop, one CPU (`taskset -c 0`)",
    (rt) => rtt(`rtt-ours-pinned-${rt}`),
  );
  row(
    RTT,
    "`postMessage`, one CPU (`taskset -c 0`)",
    (rt) => rtt(`rtt-native-pinned-${rt}`),
  );
}
const share = (key) => {
  if (skipped(key)) return "skipped";
  const x = value(key, "under30");
  return x === null ? "n/a" : `${(100 * x).toFixed(0)} %`;
};
row(
  RTT,
  "share under 30 µs (aioloop; uvloop)",
  (rt) => share(`rtt-ours-${rt}`),
  share("rtt-uvloop"),
);
row(
  RTT,
  "aioloop p50 vs target",
  (rt) => {
    const p50 = value(`rtt-ours-${rt}`, "p50");
    return p50 === null ? "n/a" : `${fixed(p50, 1)} µs${verdict(p50 < 30)}`;
  },
  "",
  "p50 < 30 µs",
);
row(
  RTT,
  "ratio aioloop ÷ `postMessage` (p50)",
  (rt) =>
    times(
      ratio(value(`rtt-ours-${rt}`, "p50"), value(`rtt-native-${rt}`, "p50")),
    ),
);
row(
  RTT,
  "ratio aioloop ÷ uvloop (p50)",
  (rt) =>
    times(ratio(value(`rtt-ours-${rt}`, "p50"), value("rtt-uvloop", "p50"))),
);

const IDLE = "4. idle for 2 s: CPU % of one core (lower is better)";
const idle = (mode) => (rt) => fixed(value(`idle-${mode}-${rt}`), 2);
row(IDLE, "aioloop `runForever()`", idle("ours"));
row(IDLE, "`setTimeout(2000)`", idle("native"));
row(IDLE, "asyncio `sleep(2)`", null, pyCell("idle-asyncio", 2));
row(IDLE, "uvloop `sleep(2)`", null, pyCell("idle-uvloop", 2));
row(
  IDLE,
  "aioloop vs target",
  (rt) => {
    const pct = value(`idle-ours-${rt}`);
    return pct === null ? "n/a" : `${fixed(pct, 2)} %${verdict(pct < 1)}`;
  },
  "",
  "< 1 %",
);

function markdownTable() {
  const header = [
    "benchmark",
    "implementation",
    "Deno",
    "Bun",
    "Python",
    "target",
  ];
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
  ];
  let previous = "";
  for (const [bench, ...cells] of rows) {
    lines.push(`| ${bench === previous ? "" : bench} | ${cells.join(" | ")} |`);
    previous = bench;
  }
  return lines.join("\n");
}

function pythonVersions() {
  if (!hasPython) return "no Python";
  const uv = withUvloop
    ? version(PYTHON, ["-c", "import uvloop; print(uvloop.__version__)"])
    : "skipped";
  return `${version(PYTHON, ["--version"])}, uvloop ${uv}`;
}

const selector = results["chain-ours-deno"]?.selector ?? "?";
const cpuModel = cpus()[0]?.model ?? "?";
const details = [
  `${new Date().toISOString()}; ${cpus().length} CPUs (${cpuModel}), ` +
  `Linux ${release()}; ${version(DENO, ["--version"])}; ` +
  `Bun ${version(BUN, ["--version"])}; ${pythonVersions()}.`,
  `aioloop: \`new SelectorEventLoop()\`, selector ${selector}. ` +
  `Benchmarks 1 and 2: median of ${REPS} timed runs after a warm-up run, ` +
  `in one process per cell.`,
  "1: 1,000,000 callbacks, each scheduling the next; `queueMicrotask` " +
  "never polls I/O, so it is a ceiling, not a peer.",
  "2: 200,000 timers, delays from a seeded generator in [0, 50) ms (the " +
  "same delays everywhere), every other one cancelled right after " +
  "scheduling; wall time from the first schedule until the last timer ran.",
  "3: measured on the calling thread: 5,000 round trips after 500 " +
  "warm-up ones, 200 µs of sleep between them so the loop is idle each " +
  "time. aioloop: `connectRemoteCallback(handle).call(i)`, then " +
  "`Atomics.wait` until the loop-side callback stores and notifies; " +
  "Python: a thread's `call_soon_threadsafe(queue.put, i)`, then " +
  "`queue.get()`. The distribution is often bimodal on a VM (waking an " +
  "idle vCPU); compare runs side by side only.",
  "4: process CPU time (all threads) over the window, after a short " +
  "warm-up run that starts the loop's waiter.",
];

const report = [
  "# aioloop benchmarks",
  "",
  markdownTable(),
  "",
  ...details.map((line) => `- ${line}`),
  ...notes.map((note) => `- Note: ${note}`),
  "",
].join("\n");

// deno fmt aligns the table (and keeps `deno fmt --check bench/` clean);
// the aligned file is what gets printed.
const resultsFile = join(bench, "results.md");
const raw = Object.entries(results).map(([key, r]) =>
  `${key}: ${JSON.stringify(r)}`
);
writeFileSync(
  resultsFile,
  `${report}\n## Raw results\n\n\`\`\`\n${raw.join("\n")}\n\`\`\`\n`,
);
quiet(DENO, ["fmt", "--quiet", resultsFile], { cwd: root });
const written = readFileSync(resultsFile, "utf8");
console.log(`\n${written.slice(0, written.indexOf("## Raw results")).trim()}`);
log(`\nwritten to ${join("bench", "results.md")} (with the raw results)`);

// -- 5. TCP echo -------------------------------------------------------------------

// bench/echo.mjs runs the echo servers (its own program, its own file
// bench/echo-results.md); its table becomes a section of results.md,
// before the raw results.
log("\n5. TCP echo (bench/echo.mjs)");
const echo = quiet(process.execPath, [join(bench, "echo.mjs")], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"],
  timeout: 600_000,
});
const echoFile = join(bench, "echo-results.md");
if (echo.status === 0 && existsSync(echoFile)) {
  const section = readFileSync(echoFile, "utf8")
    .split("\n## Raw results")[0]
    .replace(/^# .*/, "## 5. TCP echo (bench/echo.mjs)")
    .trim();
  const [head, rawResults] = written.split("## Raw results");
  writeFileSync(
    resultsFile,
    `${head.trimEnd()}\n\n${section}\n\n## Raw results${rawResults}`,
  );
  quiet(DENO, ["fmt", "--quiet", resultsFile], { cwd: root });
  console.log(`\n${section}`);
} else {
  const why = echo.error?.code === "ETIMEDOUT"
    ? "timed out"
    : `exit ${echo.status ?? echo.signal}`;
  log(`bench/echo.mjs failed (${why}); results.md has no echo section`);
}

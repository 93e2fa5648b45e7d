// TCP echo benchmark: `npm run bench:echo` (also the last step of
// `npm run bench`). Node ESM, like bench/run.mjs.
//
// Every server in bench/echo/ listens on 127.0.0.1, port 0, prints
// `READY <port>` and writes back every byte it reads:
//
//   aioloop_protocol.ts  aioloop, Protocol (`transport.write` in
//                        `dataReceived`), under Deno and Bun
//   aioloop_streams.ts   aioloop, streams (`startServer`, read / write /
//                        drain), under Deno and Bun
//   py_asyncio.py        CPython asyncio Protocol; `--uvloop` for uvloop
//   deno_native.ts       `Deno.listen`, a read/write loop per connection
//   bun_native.ts        `Bun.listen` socket handlers
//   node_net.mjs         `node:net`, `socket.pipe(socket)` (system node)
//
// The load comes from bench/echo-load.c (its header gives its command line
// and output line), built here with the machine's C compiler, the first of
// `cc`, `gcc`, `clang` found, `-O2` into a temporary directory: N
// connections to 127.0.0.1, each sending a message and waiting for its
// whole echo (checked byte for byte) before sending the next. The servers
// run one at a time; each gets a short warm-up load (not reported), then
// the three cells (1 KiB x 10, 1 KiB x 100, 64 KiB x 10 connections), then
// SIGTERM (SIGKILL after 1 s). The table goes to stdout and to
// bench/echo-results.md, with the raw load-generator lines.
//
// With no C compiler the echo benchmark is skipped: a message on stderr
// names what to install (`apt-get install gcc`), bench/echo-results.md
// holds only that note (so `npm run bench` shows it as its echo section),
// no server runs, and the exit status is 0. A compiler that fails on
// echo-load.c is an error: its output is printed, exit status 1.
//
// Environment: ECHO_SECONDS (default 3) seconds per cell; ECHO_WARMUP
// (default 1) seconds of warm-up per server, 0 for none. Python is Debian's
// /usr/bin/python3; uvloop comes from python3-uvloop, installed with
// apt-get when missing (its row is skipped with a note if that fails).
// A benchmark, not a test: nothing here asserts; a server that does not
// start, dies or makes the load generator count errors is reported in the
// notes and the run goes on.
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setTimeout as delay } from "node:timers/promises";
import {
  bench,
  buildLoadGenerator,
  BUN,
  childEnv,
  COMPILERS,
  DENO,
  ensureUvloop,
  log,
  notes,
  PYTHON,
  quiet,
  root,
  version,
} from "./tools.mjs";

const NODE = process.execPath;

/** Seconds from the environment (more than 0, at most 600), or `fallback`. */
function seconds(name, fallback, { allowZero = false } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  const ok = value <= 600 && (value > 0 || (allowZero && value === 0));
  if (!ok) {
    const least = allowZero ? "0 or more" : "more than 0";
    console.error(`${name} must be a number of seconds, ${least}, at most 600`);
    process.exit(2);
  }
  return value;
}

const CELL_SECONDS = seconds("ECHO_SECONDS", 3);
const WARMUP_SECONDS = seconds("ECHO_WARMUP", 1, { allowZero: true });
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 1_000;
/** Slack on top of a load run's own duration (connects, the last epoll). */
const LOAD_SLACK_MS = 15_000;

const CELLS = [
  { id: "1k-10", title: "1 KiB x 10 conns", size: 1024, conns: 10 },
  { id: "1k-100", title: "1 KiB x 100 conns", size: 1024, conns: 100 },
  { id: "64k-10", title: "64 KiB x 10 conns", size: 65536, conns: 10 },
];

// -- prerequisites -------------------------------------------------------------

// -- servers ---------------------------------------------------------------------

const echoDir = join("bench", "echo");
const deno = (file) => [DENO, ["run", "-A", join(echoDir, file)]];
const bun = (file) => [BUN, [join(echoDir, file)]];

/**
 * The rows of the table, in order. An aioloop row names its references:
 * `native`, the runtime's own server, and `uvloopRef`, the same server
 * written for uvloop (Protocol against Protocol, streams against streams).
 */
const SERVERS = [
  {
    id: "aioloop-protocol-deno",
    label: "aioloop Protocol, Deno",
    run: deno("aioloop_protocol.ts"),
    native: "deno-listen",
    uvloopRef: "uvloop",
  },
  {
    id: "aioloop-protocol-bun",
    label: "aioloop Protocol, Bun",
    run: bun("aioloop_protocol.ts"),
    native: "bun-listen",
    uvloopRef: "uvloop",
  },
  {
    id: "aioloop-buffered-deno",
    label: "aioloop BufferedProtocol, Deno",
    run: deno("aioloop_buffered.ts"),
    native: "deno-listen",
    uvloopRef: "uvloop-buffered",
  },
  {
    id: "aioloop-buffered-bun",
    label: "aioloop BufferedProtocol, Bun",
    run: bun("aioloop_buffered.ts"),
    native: "bun-listen",
    uvloopRef: "uvloop-buffered",
  },
  {
    id: "aioloop-streams-deno",
    label: "aioloop streams, Deno",
    run: deno("aioloop_streams.ts"),
    native: "deno-listen",
    uvloopRef: "uvloop-streams",
  },
  {
    id: "aioloop-streams-bun",
    label: "aioloop streams, Bun",
    run: bun("aioloop_streams.ts"),
    native: "bun-listen",
    uvloopRef: "uvloop-streams",
  },
  {
    id: "asyncio",
    label: "CPython asyncio Protocol",
    run: [PYTHON, [join(echoDir, "py_asyncio.py")]],
    python: true,
  },
  {
    id: "uvloop",
    label: "uvloop Protocol",
    run: [PYTHON, [join(echoDir, "py_asyncio.py"), "--uvloop"]],
    python: true,
    uvloop: true,
  },
  {
    id: "uvloop-buffered",
    label: "uvloop BufferedProtocol",
    run: [PYTHON, [join(echoDir, "py_asyncio.py"), "--uvloop", "--buffered"]],
    python: true,
    uvloop: true,
  },
  {
    id: "asyncio-streams",
    label: "CPython asyncio streams",
    run: [PYTHON, [join(echoDir, "py_asyncio.py"), "--streams"]],
    python: true,
  },
  {
    id: "uvloop-streams",
    label: "uvloop streams",
    run: [PYTHON, [join(echoDir, "py_asyncio.py"), "--uvloop", "--streams"]],
    python: true,
    uvloop: true,
  },
  { id: "deno-listen", label: "`Deno.listen`", run: deno("deno_native.ts") },
  { id: "bun-listen", label: "`Bun.listen`", run: bun("bun_native.ts") },
  {
    id: "node-net",
    label: "`node:net`",
    run: [NODE, [join(echoDir, "node_net.mjs")]],
  },
];

/**
 * Watches a child's stderr. `summary()` gives, for notes, the first line
 * that mentions an error (else the last line); `last()` the last line;
 * `lines()` how many lines it has written.
 */
function watchStderr(stream, keep = 4000) {
  let head = "";
  let tail = "";
  let lines = 0;
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    if (head.length < keep) head += chunk.slice(0, keep - head.length);
    tail = (tail + chunk).slice(-keep);
    lines += chunk.split("\n").length - 1;
  });
  const split = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
  return {
    summary: () =>
      split(head).find((l) => /error/i.test(l)) ?? split(tail).at(-1) ?? "",
    last: () => split(tail).at(-1) ?? "",
    lines: () => lines,
  };
}

/** Children still running (servers, load generators). */
const live = new Set();

/** Spawns a child that is killed if this script ends first. */
function spawnTracked(cmd, args, options) {
  const child = spawn(cmd, args, options);
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/**
 * Starts a server and waits for its `READY <port>` line. Returns
 * `{ child, port, stderr }`, or `{ error }` (the child is gone then).
 */
async function startServer(server) {
  const [cmd, args] = server.run;
  const child = spawnTracked(cmd, args, {
    cwd: root,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = watchStderr(child.stderr);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const ready = new Promise((resolve) => {
    let seen = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      seen = (seen + chunk).slice(-1000);
      const match = /^READY (\d+)\s*$/m.exec(seen);
      if (match) resolve(Number(match[1]));
    });
  });
  const failed = new Promise((resolve) => child.once("error", resolve));
  const outcome = await Promise.race([
    ready.then((port) => ({ port })),
    exited.then(() => ({
      error: `exited (${child.exitCode ?? child.signalCode}) before READY`,
    })),
    failed.then((e) => ({ error: `could not start: ${e.message}` })),
    delay(READY_TIMEOUT_MS, null, { ref: false }).then(() => ({
      error: `not ready within ${READY_TIMEOUT_MS / 1000} s`,
    })),
  ]);
  if (outcome.error) {
    await stopServer(child, exited);
    const why = stderr.summary();
    return { error: why ? `${outcome.error}: ${why}` : outcome.error };
  }
  return { child, exited, port: outcome.port, stderr };
}

const running = (child) => child.exitCode === null && child.signalCode === null;

/** SIGTERM, then SIGKILL if the server has not exited after 1 s. */
async function stopServer(child, exited) {
  if (child.pid === undefined || !running(child)) return;
  child.kill("SIGTERM");
  const gone = await Promise.race([
    exited.then(() => true),
    delay(STOP_GRACE_MS, null, { ref: false }).then(() => false),
  ]);
  if (!gone) {
    child.kill("SIGKILL");
    await exited;
  }
}

// -- load ------------------------------------------------------------------------

/**
 * One load-generator run; resolves to its parsed line (numbers) or to
 * `{ error }`. echo-load exits 1 when it counted errors but still prints
 * its line, which is kept.
 */
function runLoad(binary, port, cell, duration) {
  return new Promise((resolve) => {
    const args = [port, cell.conns, cell.size, duration].map(String);
    const child = spawnTracked(binary, args, {
      stdio: ["ignore", "pipe", "pipe"],
      timeout: duration * 1000 + LOAD_SLACK_MS,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => stdout += chunk);
    const stderr = watchStderr(child.stderr);
    child.once("error", (e) => resolve({ error: e.message }));
    child.once("close", (code, signal) => {
      const line = stdout.split("\n").find((l) => l.startsWith("msgs_per_s="));
      if (line) {
        const fields = Object.fromEntries(
          line.trim().split(/\s+/).map((kv) => kv.split("=")),
        );
        const parsed = { line: line.trim() };
        for (const [key, value] of Object.entries(fields)) {
          parsed[key] = Number(value);
        }
        // With errors, echo-load's last stderr line counts them by kind.
        if (parsed.errors > 0) parsed.detail = stderr.last();
        resolve(parsed);
        return;
      }
      const why = signal === "SIGKILL"
        ? `killed after ${duration + LOAD_SLACK_MS / 1000} s`
        : `exit ${code ?? signal}`;
      const detail = stderr.summary();
      resolve({ error: detail ? `${why}: ${detail}` : why });
    });
  });
}

/** CPU jiffies [busy, total] of the whole machine, from /proc/stat. */
function cpuJiffies() {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3] + fields[4]; // idle + iowait
  return [total - idle, total];
}

/**
 * How many CPUs' worth of work the machine did over `ms` while this
 * script only waited; null where there is no /proc/stat.
 */
async function busyCores(ms) {
  if (!existsSync("/proc/stat")) return null;
  const [busy0, total0] = cpuJiffies();
  await delay(ms);
  const [busy1, total1] = cpuJiffies();
  return total1 === total0
    ? 0
    : ((busy1 - busy0) / (total1 - total0)) * cpus().length;
}

/** Runs every cell against one server; returns { cellId: result }. */
async function measureServer(binary, server) {
  process.stderr.write(`  ${server.label} ... `);
  const started = Date.now();
  const results = {};
  // Other work on the machine would skew this row: look for it first.
  const busy = await busyCores(500);
  if (busy !== null && busy > 0.2) {
    notes.push(
      `${server.label}: other work kept ${busy.toFixed(2)} CPUs busy ` +
        "just before its run, so its row is skewed; rerun on an idle machine.",
    );
  }
  const up = await startServer(server);
  if (up.error) {
    log(up.error);
    notes.push(`${server.label}: ${up.error}; its cells are empty.`);
    return results;
  }
  if (WARMUP_SECONDS > 0) {
    await runLoad(binary, up.port, CELLS[0], WARMUP_SECONDS);
  }
  for (const cell of CELLS) {
    if (!running(up.child)) break;
    const result = await runLoad(binary, up.port, cell, CELL_SECONDS);
    results[cell.id] = result;
    if (result.error) {
      notes.push(
        `${server.label}, ${cell.title}: load generator ${result.error}.`,
      );
    } else if (result.errors > 0) {
      notes.push(
        `${server.label}, ${cell.title}: the load generator counted ` +
          `errors=${result.errors} (${
            result.detail || "failed connects, failed send/recv, " +
              "connections the server closed, mismatched echoes"
          }).`,
      );
    } else if (!(result.msgs_per_s > 0)) {
      notes.push(`${server.label}, ${cell.title}: no echo completed.`);
    }
  }
  if (!running(up.child)) {
    const detail = up.stderr.summary();
    const left = CELLS.length - Object.keys(results).length;
    notes.push(
      `${server.label} exited (${up.child.exitCode ?? up.child.signalCode}) ` +
        `during the run${detail ? `: ${detail}` : ""}` +
        (left > 0 ? `; its last ${left} cell(s) are empty.` : "."),
    );
  } else if (up.stderr.lines() > 0) {
    notes.push(
      `${server.label} wrote ${up.stderr.lines()} lines to stderr during ` +
        `the run, such as: ${up.stderr.summary()}`,
    );
  }
  await stopServer(up.child, up.exited);
  log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  return results;
}

// -- the run ---------------------------------------------------------------------

const buildDir = mkdtempSync(join(tmpdir(), "aioloop-echo-"));
// However this script ends, it leaves no child and no temporary directory.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
  rmSync(buildDir, { recursive: true, force: true });
});
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]]) {
  process.once(signal, () => process.exit(code));
}
const resultsFile = join(bench, "echo-results.md");

const load = buildLoadGenerator(buildDir);
if (load.error) {
  console.error(load.error);
  process.exit(1);
}
if (load.missing) {
  const message = `no C compiler found (tried ${COMPILERS.join(", ")}), ` +
    "so the TCP echo benchmark is skipped: install one (`apt-get install " +
    "gcc` on Debian or Ubuntu) to build its load generator, " +
    "bench/echo-load.c.";
  log(message);
  writeFileSync(
    resultsFile,
    `# aioloop TCP echo benchmark\n\nSkipped on ${
      new Date().toISOString()
    }: ${message}\n`,
  );
  quiet(DENO, ["fmt", "--quiet", resultsFile], { cwd: root });
  process.exit(0);
}
const withPython = existsSync(PYTHON);
if (!withPython) notes.push(`Python rows skipped: ${PYTHON} not found.`);
const withUvloop = withPython && ensureUvloop();

/** Runs every server; returns { serverId: { cellId: result } }. */
async function measureAll(loadBinary) {
  log(
    `TCP echo: ${SERVERS.length} servers x ${CELLS.length} cells, ` +
      `${CELL_SECONDS} s each`,
  );
  const measured = {};
  for (const server of SERVERS) {
    if (server.python && !withPython) continue;
    if (server.uvloop && !withUvloop) continue;
    measured[server.id] = await measureServer(loadBinary, server);
  }
  return measured;
}

const measured = await measureAll(load.binary);

// -- the table -------------------------------------------------------------------

/** The parsed result of a cell, or null when it failed or was skipped. */
function cellResult(serverId, cellId) {
  const r = measured[serverId]?.[cellId];
  return r && !r.error && r.msgs_per_s > 0 ? r : null;
}

const grouped = (x) => Math.round(x).toLocaleString("en-US");
const ratio = (a, b) => a === null || b === null || b === 0 ? null : a / b;
const times = (r) => r === null ? "n/a" : `${r.toFixed(2)}x`;

function serverCell(serverId, cellId) {
  if (measured[serverId] === undefined) return "skipped";
  const r = cellResult(serverId, cellId);
  if (r === null) return "";
  const errors = r.errors > 0 ? `, errors=${r.errors}` : "";
  return `${grouped(r.msgs_per_s)} (${grouped(r.p99_us)} µs${errors})`;
}

/** "1.05x (met); p99 0.92x": msgs/s ratio against `min`, and p99 ratio. */
function ratioCell(ours, reference, cellId, min) {
  const a = cellResult(ours, cellId);
  const b = cellResult(reference, cellId);
  if (a === null || b === null) return "n/a";
  const msgs = ratio(a.msgs_per_s, b.msgs_per_s);
  const p99 = ratio(a.p99_us, b.p99_us);
  return `${times(msgs)} (${msgs >= min ? "met" : "missed"}); p99 ${
    times(p99)
  }`;
}

const labelOf = Object.fromEntries(SERVERS.map((s) => [s.id, s.label]));
const ours = SERVERS.filter((s) => s.native);
/** Ratio rows: every aioloop row against its uvloop twin, then its native. */
const RATIOS = [
  { reference: (s) => s.uvloopRef, min: 1, target: ">= 1.00x" },
  { reference: (s) => s.native, min: 0.8, target: ">= 0.80x" },
];
const rows = [
  ...SERVERS.map((s) => [
    s.label,
    ...CELLS.map((c) => serverCell(s.id, c.id)),
    "",
  ]),
  ...RATIOS.flatMap(({ reference, min, target }) =>
    ours.map((s) => [
      `ratio ${s.label} ÷ ${labelOf[reference(s)]}`,
      ...CELLS.map((c) => ratioCell(s.id, reference(s), c.id, min)),
      target,
    ])
  ),
];

function markdownTable() {
  const header = [
    "server: msgs/s (p99 latency)",
    ...CELLS.map((c) => c.title),
    "target",
  ];
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}

function pythonVersions() {
  if (!withPython) return "no Python";
  const uv = withUvloop
    ? version(PYTHON, ["-c", "import uvloop; print(uvloop.__version__)"])
    : "skipped";
  return `${version(PYTHON, ["--version"])}, uvloop ${uv}`;
}

const machine = `${new Date().toISOString()}; ${cpus().length} CPUs ` +
  `(${cpus()[0]?.model ?? "?"}), Linux ${release()}; ` +
  `${version(DENO, ["--version"])}; Bun ${version(BUN, ["--version"])}; ` +
  `Node ${process.version}; ${pythonVersions()}; ` +
  `${version(load.compiler, ["--version"])}.`;

const details = [
  `Load: bench/echo-load.c (\`${load.compiler} -O2\`) on the same machine: ` +
  "each connection sends one message, waits for its whole echo (checked " +
  "byte for byte), repeats; " +
  `${CELL_SECONDS} s per cell, ` +
  (WARMUP_SECONDS > 0
    ? `after ${WARMUP_SECONDS} s of warm-up per server (${CELLS[0].title}, ` +
      "not reported). "
    : "no warm-up. ") +
  "msgs/s counts complete round trips; p99 is the latency of one round " +
  "trip.",
  "Each server listens on 127.0.0.1 and sets TCP_NODELAY on every " +
  "accepted connection itself (aioloop: `setsockopt` on the transport's " +
  "socket; asyncio and uvloop: the same on `get_extra_info('socket')`; " +
  "these three also set it by default; `Deno.listen`: " +
  "`conn.setNoDelay(true)`; `Bun.listen`: `socket.setNoDelay(true)`; " +
  "`node:net`: `createServer({ noDelay: true })`). The servers run one at " +
  "a time; Python is /usr/bin/python3, Node the `node` running this script.",
  "aioloop: `run()` with the default loop (selector from " +
  "`AIOLOOP_SELECTOR`, epoll by default); Protocol: `transport.write` in " +
  "`dataReceived`; streams: `startServer`, `read(65536)`, `write`, " +
  "`await drain()`.",
  "Targets: every aioloop row at least uvloop's msgs/s in every cell, " +
  "against the same style of server (Protocol or streams) " +
  "(ratio >= 1.00x) and at least 80% of its runtime's own server " +
  "(`Deno.listen` for Deno rows, `Bun.listen` for Bun rows; ratio >= " +
  "0.80x). p99 ratios are below 1 when aioloop's tail is shorter.",
  "Loopback on a shared VM is noisy: compare rows of one run only.",
];

const report = [
  "# aioloop TCP echo benchmark",
  "",
  machine,
  "",
  markdownTable(),
  "",
  ...details.map((line) => `- ${line}`),
  ...notes.map((note) => `- Note: ${note}`),
  "",
].join("\n");

const raw = Object.entries(measured).flatMap(([server, cells]) =>
  Object.entries(cells).map(([cell, r]) =>
    `${server} ${cell}: ${r.line ?? `error: ${r.error}`}`
  )
);

// deno fmt aligns the table (and keeps `deno fmt --check` clean); the
// aligned file is what gets printed.
writeFileSync(
  resultsFile,
  `${report}\n## Raw results\n\n\`\`\`\n${raw.join("\n")}\n\`\`\`\n`,
);
quiet(DENO, ["fmt", "--quiet", resultsFile], { cwd: root });
const written = readFileSync(resultsFile, "utf8");
console.log(`\n${written.slice(0, written.indexOf("## Raw results")).trim()}`);
log(`\nwritten to ${join("bench", "echo-results.md")} (with the raw results)`);

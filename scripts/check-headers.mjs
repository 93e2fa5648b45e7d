// Checks the per-OS constant tables (ffi/sys/{linux,darwin,bsd}/constants.ts)
// against C headers:
//
//   node scripts/check-headers.mjs [--xnu DIR] [--libinfo DIR]
//       [--freebsd DIR] [--openbsd DIR] [--netbsd DIR] [--libkqueue DIR]
//       [--no-linux]
//
// Each DIR is a checkout of that system's sources (apple-oss-distributions/
// xnu and Libinfo, freebsd-src, openbsd src, netbsd src, libkqueue) or an
// installed include directory (/usr/include). The same can be given by
// environment: AIOLOOP_XNU_SRC, AIOLOOP_LIBINFO_SRC, AIOLOOP_FREEBSD_SRC,
// AIOLOOP_OPENBSD_SRC, AIOLOOP_NETBSD_SRC, AIOLOOP_LIBKQUEUE_SRC. For every
// name in the table the script reads the #define lines of the system's
// headers (skipping what only the kernel sees: #ifdef KERNEL, _KERNEL,
// PRIVATE, #if 0), follows aliases (EWOULDBLOCK -> EAGAIN), and reports the
// values that differ, the names it did not find, and the layout facts
// (sin_len, sun_path size, the order of ai_addr and ai_canonname, the
// errno-location function, accept4, NetBSD's socket rename). From each
// system's <sys/event.h> (and libkqueue's) it checks ffi/sys/bsd/kevent.ts:
// EVFILT_READ, EVFILT_WRITE, EVFILT_USER, the EV_* flags, NOTE_TRIGGER, and
// `struct kevent`'s size and offsets, laid out from the header's member
// types. On Linux it also compiles a program generated from the Linux table
// with `cc` and compares every entry (tests/c/headers.ts).
//
// Exit status: 1 if anything differs, 0 otherwise. Nothing is fetched: the
// sources are yours to provide, and none of them belongs in this repository.
//
// The tables are TypeScript; under Node this script runs itself again with
// the project's Bun (node_modules/.bin/bun), which imports .ts directly.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

if (!globalThis.Bun && !globalThis.Deno) {
  const bun = join(root, "node_modules", ".bin", "bun");
  const result = spawnSync(bun, [
    fileURLToPath(import.meta.url),
    ...process.argv.slice(2),
  ], {
    stdio: "inherit",
  });
  if (result.error) {
    console.error(
      `cannot run ${bun} (npm install first): ${result.error.message}`,
    );
    process.exit(2);
  }
  process.exit(result.status ?? 1);
}

const { LINUX } = await import("../ffi/sys/linux/constants.ts");
const { OPTIONAL_CONSTANTS } = await import("../ffi/sys/posix/table.ts");
const { DARWIN } = await import("../ffi/sys/darwin/constants.ts");
const { FREEBSD, OPENBSD, NETBSD } = await import(
  "../ffi/sys/bsd/constants.ts"
);
const kevent = await import("../ffi/sys/bsd/kevent.ts");

// Where each header lives, relative to a source root: the first candidate
// that exists is read. Source trees first, then installed /usr/include.
const HEADERS = {
  errno: ["bsd/sys/errno.h", "sys/sys/errno.h", "sys/errno.h"],
  // Where libc declares the errno function (OpenBSD, NetBSD: not in the
  // kernel's sys/errno.h).
  errnoFunction: ["include/errno.h", "errno.h"],
  socket: ["bsd/sys/socket.h", "sys/sys/socket.h", "sys/socket.h"],
  fcntl: ["bsd/sys/fcntl.h", "sys/sys/fcntl.h", "sys/fcntl.h"],
  seek: [
    "bsd/sys/_types/_seek_set.h",
    "sys/sys/unistd.h",
    "include/unistd.h",
    "sys/unistd.h",
    "unistd.h",
  ],
  in: ["bsd/netinet/in.h", "sys/netinet/in.h", "netinet/in.h"],
  in6: ["bsd/netinet6/in6.h", "sys/netinet6/in6.h", "netinet6/in6.h"],
  tcp: ["bsd/netinet/tcp.h", "sys/netinet/tcp.h", "netinet/tcp.h"],
  un: ["bsd/sys/un.h", "sys/sys/un.h", "sys/un.h"],
  netdb: ["lookup.subproj/netdb.h", "include/netdb.h", "netdb.h"],
  unistd: ["include/unistd.h", "unistd.h"],
  event: [
    "bsd/sys/event.h",
    "sys/sys/event.h",
    "include/sys/event.h",
    "sys/event.h",
  ],
};

// Conditions that hold only for the kernel: what they guard is not what a
// program sees.
const KERNEL_ONLY = new Set([
  "KERNEL",
  "_KERNEL",
  "KERNEL_PRIVATE",
  "PRIVATE",
  "BSD_KERNEL_PRIVATE",
  "XNU_KERNEL_PRIVATE",
  "_STANDALONE",
  "_KMEMUSER",
  "_WANT_KERNEL_ERRNO",
]);

/** true, false, or null (unknown) for a #if/#ifdef condition. */
function evaluate(kind, expr) {
  expr = expr.replace(/\/\*.*?\*\//g, "").replace(/\/\/.*$/, "").trim();
  if (kind === "ifdef") return KERNEL_ONLY.has(expr) ? false : null;
  if (kind === "ifndef") return KERNEL_ONLY.has(expr) ? true : null;
  if (expr === "0") return false;
  if (expr === "1") return true;
  // defined(A) || defined(B) ... where every name is kernel-only.
  const ors = expr.split("||").map((s) => s.trim());
  if (
    ors.every((s) => {
      const m = s.match(/^defined\s*\(?\s*(\w+)\s*\)?$/);
      return m && KERNEL_ONLY.has(m[1]);
    })
  ) return false;
  const neg = expr.match(/^!\s*defined\s*\(?\s*(\w+)\s*\)?$/);
  if (neg && KERNEL_ONLY.has(neg[1])) return true;
  return null;
}

/**
 * The lines of a header a program sees: [{ text, line }], continuation
 * lines joined, without what is inside a kernel-only #if block. Directive
 * lines are kept (#define, #pragma, and the conditionals themselves).
 */
function visibleLines(source) {
  const lines = source.split("\n");
  const out = [];
  const stack = []; // { state: true | false | null }
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let text = lines[i];
    while (text.endsWith("\\") && i + 1 < lines.length) {
      text = text.slice(0, -1) + " " + lines[++i];
    }
    const m = text.match(/^\s*#\s*(\w+)\s*(.*)$/);
    const directive = m?.[1];
    if (directive === "if" || directive === "ifdef" || directive === "ifndef") {
      stack.push({ state: evaluate(directive, m[2]) });
    } else if (directive === "elif") {
      const top = stack.at(-1);
      if (top) top.state = top.state === true ? false : null;
    } else if (directive === "else") {
      const top = stack.at(-1);
      if (top && top.state !== null) top.state = !top.state;
    } else if (directive === "endif") {
      stack.pop();
    } else if (!stack.some((f) => f.state === false)) {
      out.push({ text, line });
    }
  }
  return out;
}

/** The #define lines a program can see: Map name -> [{ value, file, line }]. */
function readDefines(files) {
  const defs = new Map();
  for (const file of files) {
    for (const { text, line } of visibleLines(readFileSync(file, "utf8"))) {
      const m = text.match(/^\s*#\s*define\s+(.*)$/);
      if (!m) continue;
      const rest = m[1];
      const d = rest.match(/^(\w+)(?!\()\s*(.*)$/);
      if (!d || rest.match(/^\w+\(/)) continue; // function-like macro
      // A comment may run on past the line (/* ... */ over two lines).
      const value = d[2].replace(/\/\*.*?\*\//g, "").replace(/\/\*.*$/, "")
        .replace(/\/\/.*$/, "").trim();
      if (!defs.has(d[1])) defs.set(d[1], []);
      defs.get(d[1]).push({ value, file, line });
    }
  }
  return defs;
}

/** The numeric value of a macro body, following names; undefined if not simple. */
function resolve(defs, body, seen = new Set()) {
  let failed = false;
  const expr = body.replace(/\b([A-Za-z_]\w*)\b/g, (name) => {
    if (seen.has(name)) {
      failed = true;
      return "0";
    }
    const values = (defs.get(name) ?? [])
      .map((d) => resolve(defs, d.value, new Set([...seen, name])))
      .filter((v) => v !== undefined);
    if (values.length === 0) {
      failed = true;
      return "0";
    }
    return `(${values[0]})`;
  }).replace(/\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b/g, "$1")
    .replace(/\b0([0-7]+)\b/g, "0o$1");
  if (
    failed || !/^[\s\d()xXa-fA-Fo|&+\-~<>]*$/.test(expr) || !/\d/.test(expr)
  ) {
    return undefined;
  }
  try {
    const v = Function(`"use strict"; return (${expr});`)();
    return Number.isInteger(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function findHeader(roots, key) {
  for (const root of roots) {
    for (const rel of HEADERS[key]) {
      const path = join(root, rel);
      if (existsSync(path)) return path;
    }
  }
  return null;
}

/** Where member `name` is declared in a struct body (comments removed). */
function fieldAt(body, name) {
  return body.replace(/\/\*[\s\S]*?\*\//g, "").search(
    new RegExp(`\\b${name}\\s*;`),
  );
}

/** Compares one table with the headers under `roots`. */
function checkTable(table, roots) {
  const found = {};
  for (const key of Object.keys(HEADERS)) found[key] = findHeader(roots, key);
  const files = Object.values(found).filter(Boolean);
  const defs = readDefines([...new Set(files)]);
  const mismatches = [];
  const missing = [];
  const ambiguous = [];
  let checked = 0;
  const groups = [
    ["constants", table.constants],
    ["errno", table.errno],
    ["gaiErrors", table.gaiErrors],
  ];
  for (const [group, record] of groups) {
    for (const [name, ours] of Object.entries(record)) {
      const list = defs.get(name) ?? [];
      const values = [
        ...new Set(
          list.map((d) => resolve(defs, d.value)).filter((v) =>
            v !== undefined
          ),
        ),
      ];
      const optional = group === "constants" &&
        OPTIONAL_CONSTANTS.includes(name);
      if (values.length === 0) {
        if (optional && ours === 0) checked++; // absent, as the table says
        else missing.push(`${group}.${name}`);
        continue;
      }
      checked++;
      if (!values.includes(ours)) {
        const where = list.map((d) => `${d.file}:${d.line}`).join(", ");
        mismatches.push(
          `${group}.${name}: table ${ours}, headers ${
            values.join(" or ")
          } (${where})`,
        );
      } else if (values.length > 1) {
        ambiguous.push(
          `${group}.${name}: ${values.join(" or ")} (table ${ours})`,
        );
      }
    }
  }
  const fact = (name, ours, theirs) => {
    if (theirs === undefined) {
      missing.push(name);
      return;
    }
    checked++;
    if (ours !== theirs) {
      mismatches.push(`${name}: table ${ours}, headers ${theirs}`);
    }
  };
  const text = (key) =>
    found[key] ? readFileSync(found[key], "utf8") : undefined;
  const un = text("un");
  const path = un?.match(/sun_path\s*\[\s*(\d+)\s*\]/);
  fact(
    "sockaddr.sunPathSize",
    table.sockaddr.sunPathSize,
    path ? Number(path[1]) : undefined,
  );
  const inh = text("in");
  const sin = inh?.match(/struct\s+sockaddr_in\s*\{([^}]*)\}/);
  fact(
    "sockaddr.sinLen",
    table.sockaddr.sinLen,
    sin ? /\bsin_len\b/.test(sin[1]) : undefined,
  );
  const netdb = text("netdb");
  const ai = netdb?.match(/struct\s+addrinfo\s*\{([^}]*)\}/);
  fact(
    "addrinfo: ai_canonname before ai_addr",
    table.addrinfo.canonname < table.addrinfo.addr,
    ai ? fieldAt(ai[1], "ai_canonname") < fieldAt(ai[1], "ai_addr") : undefined,
  );
  const errno = [text("errno"), text("errnoFunction")].filter((t) =>
    t !== undefined
  ).join("\n");
  fact(
    `symbols.errnoLocation (${table.symbols.errnoLocation})`,
    true,
    errno === ""
      ? undefined
      : new RegExp(`\\b${table.symbols.errnoLocation}\\s*\\(`).test(errno),
  );
  const socket = text("socket");
  if (socket !== undefined) {
    fact(
      "symbols.accept4",
      table.symbols.accept4,
      /\baccept4\s*\(/.test(socket),
    );
    const rename = socket.match(
      /\bsocket\s*\([^)]*\)\s*(?:#[^\n]*\n\s*)*__RENAME\((\w+)\)/,
    );
    fact("symbols.socket", table.symbols.socket, rename ? rename[1] : "socket");
  }
  const unistd = text("unistd");
  if (unistd !== undefined && found.unistd.includes("include")) {
    fact("symbols.pipe2", table.symbols.pipe2, /\bpipe2\s*\(/.test(unistd));
  }
  return { found, checked, mismatches, missing, ambiguous };
}

/** sizeof (and alignment) of the integer types `struct kevent` uses, LP64. */
const LP64_SIZES = {
  uintptr_t: 8,
  intptr_t: 8,
  int64_t: 8,
  uint64_t: 8,
  u_int64_t: 8,
  long: 8,
  "unsigned long": 8,
  "long long": 8,
  "unsigned long long": 8,
  u_int32_t: 4,
  int32_t: 4,
  uint32_t: 4,
  int: 4,
  "unsigned int": 4,
  u_int: 4,
  int16_t: 2,
  uint16_t: 2,
  short: 2,
  "unsigned short": 2,
  u_short: 2,
  u_int16_t: 2,
};

/**
 * `struct kevent` as a program sees it (kernel-only blocks left out), laid
 * out with LP64 sizes and natural alignment, capped by the `#pragma pack`
 * in force at the struct (macOS declares it under pack(4)): { fields: [{
 * name, offset, size }], size }, or { error } when the struct is missing or
 * a member is not a plain integer or pointer of a known type.
 */
function keventLayout(header) {
  const text = visibleLines(header.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ""))
    .map((l) => l.text).join("\n");
  const m = /struct\s+kevent\s*\{([^}]*)\}/.exec(text);
  if (!m) return { error: "no struct kevent" };
  let pack = Infinity;
  for (
    const p of text.slice(0, m.index).matchAll(
      /#\s*pragma\s+pack\s*\(([^)]*)\)/g,
    )
  ) {
    const n = p[1].match(/(\d+)\s*$/);
    pack = n ? Number(n[1]) : Infinity; // pack(), pack(pop): natural again
  }
  const fields = [];
  let offset = 0;
  let align = 1;
  for (const decl of m[1].split(";").map((d) => d.trim()).filter(Boolean)) {
    const f = decl.match(/^(.*?)(\*?)\s*(\w+)\s*(?:\[\s*(\d+)\s*\])?$/s);
    const type = f?.[1].trim().replace(/\s+/g, " ").replace(/^__/, "");
    const size = f?.[2] ? 8 : LP64_SIZES[type];
    if (!f || size === undefined || decl.includes(":")) {
      return { error: `cannot lay out member "${decl.replace(/\s+/g, " ")}"` };
    }
    const a = Math.min(size, pack);
    offset = Math.ceil(offset / a) * a;
    fields.push({ name: f[3], offset, size });
    offset += size * (f[4] ? Number(f[4]) : 1);
    align = Math.max(align, a);
  }
  return { fields, size: Math.ceil(offset / align) * align };
}

/**
 * Compares ffi/sys/bsd/kevent.ts (the filter and flag numbers of
 * kqueueAbi(os), the EV_* flags, `struct kevent`'s layout) with `<sys/event.h>`.
 */
function checkKqueue(os, roots) {
  const file = findHeader(roots, "event");
  const result = {
    file,
    variant: undefined,
    checked: 0,
    mismatches: [],
    missing: [],
  };
  if (!file) return result;
  let abi = kevent.kqueueAbi(os, "libkqueue.so");
  const header = readFileSync(file, "utf8");
  const defs = readDefines([file]);
  const compare = (name, ours, theirs) => {
    if (theirs === undefined) {
      result.missing.push(name);
      return;
    }
    result.checked++;
    if (ours !== theirs) {
      result.mismatches.push(`${name}: ours ${ours}, <sys/event.h> ${theirs}`);
    }
  };
  const value = (name) => {
    const values = (defs.get(name) ?? []).map((d) => resolve(defs, d.value))
      .filter((v) => v !== undefined);
    return values.length ? values[0] : undefined;
  };
  for (const name of ["EVFILT_READ", "EVFILT_WRITE", "EVFILT_USER"]) {
    compare(name, abi[name], value(name));
  }
  for (
    const name of [
      "EV_ADD",
      "EV_DELETE",
      "EV_ENABLE",
      "EV_DISABLE",
      "EV_ONESHOT",
      "EV_CLEAR",
      "EV_RECEIPT",
      "EV_EOF",
      "EV_ERROR",
      "NOTE_TRIGGER",
    ]
  ) compare(name, kevent[name], value(name));
  // NetBSD renames kevent: __kevent100 (NetBSD 11, 72 bytes) is what we
  // bind; against a NetBSD 10 header (__kevent50, 40 bytes) the fallback
  // that openKqueue() takes is checked.
  const rename = header.match(/\bkevent\s*\([^;]*\)\s*__RENAME\((\w+)\)/);
  if (os === "netbsd") {
    if (rename?.[1] === "__kevent50") {
      abi = {
        ...abi,
        symbol: "__kevent50",
        layout: kevent.KEVENT_LAYOUT_NETBSD50,
      };
    }
    result.variant = rename?.[1];
  }
  compare("the kevent symbol", abi.symbol, rename ? rename[1] : "kevent");
  const layout = keventLayout(header);
  if (layout.error) {
    // The layout is what matters most here: not knowing it is a failure.
    result.mismatches.push(`struct kevent: ${layout.error}`);
    return result;
  }
  compare("sizeof(struct kevent)", abi.layout.size, layout.size);
  for (const { name, offset, size } of layout.fields) {
    if (name === "ext") continue; // only its size counts, checked above
    compare(`offsetof(kevent, ${name})`, abi.layout[name], offset);
    if (name === "filter" || name === "flags") {
      compare(`sizeof(kevent.${name})`, abi.layout.shortWidth, size);
    }
  }
  return result;
}

function option(flag, env) {
  const i = process.argv.indexOf(flag);
  if (i >= 0) return process.argv[i + 1];
  return process.env[env] || undefined;
}

/** Prints a checkKqueue() result after `label`; false if anything differs. */
function reportKqueue(label, kq) {
  const variant = kq.variant ? `, ${kq.variant}` : "";
  console.log(
    `${label} (${kq.file}${variant}): ${kq.checked} entries checked, ${kq.mismatches.length} differ`,
  );
  for (const m of kq.mismatches) console.log(`  DIFFERS ${m}`);
  if (kq.missing.length) {
    console.log(`  not found in <sys/event.h>: ${kq.missing.join(", ")}`);
  }
  return kq.mismatches.length === 0;
}

const sources = [
  ["darwin", DARWIN, [
    option("--xnu", "AIOLOOP_XNU_SRC"),
    option("--libinfo", "AIOLOOP_LIBINFO_SRC"),
  ]],
  ["freebsd", FREEBSD, [option("--freebsd", "AIOLOOP_FREEBSD_SRC")]],
  ["openbsd", OPENBSD, [option("--openbsd", "AIOLOOP_OPENBSD_SRC")]],
  ["netbsd", NETBSD, [option("--netbsd", "AIOLOOP_NETBSD_SRC")]],
];

let failed = false;
let ran = false;
for (const [os, table, given] of sources) {
  const roots = given.filter(Boolean);
  if (roots.length === 0) continue;
  ran = true;
  for (const r of roots) {
    if (!existsSync(r)) {
      console.error(`${os}: ${r} does not exist`);
      failed = true;
    }
  }
  const { found, checked, mismatches, missing, ambiguous } = checkTable(
    table,
    roots,
  );
  const read = Object.entries(found).filter(([, p]) => p).map(([k]) => k);
  console.log(`\n${os} (${roots.join(", ")}): read ${read.join(", ")}`);
  console.log(
    `  ${checked} entries agree or are absent as the table says; ${mismatches.length} differ`,
  );
  for (const m of mismatches) console.log(`  DIFFERS ${m}`);
  for (const a of ambiguous) {
    console.log(`  several definitions (one matches) ${a}`);
  }
  if (missing.length) {
    console.log(
      `  not found in these headers (${missing.length}): ${missing.join(", ")}`,
    );
  }
  if (mismatches.length) failed = true;
  const kq = checkKqueue(os, roots);
  if (kq.file && !reportKqueue("  kqueue", kq)) failed = true;
}

const libkqueue = option("--libkqueue", "AIOLOOP_LIBKQUEUE_SRC");
if (libkqueue) {
  ran = true;
  const kq = checkKqueue("linux", [libkqueue]);
  if (!kq.file) {
    console.log(`\nlibkqueue: no include/sys/event.h under ${libkqueue}`);
    failed = true;
  } else if (!reportKqueue("\nlibkqueue", kq)) failed = true;
}

if (process.platform === "linux" && !process.argv.includes("--no-linux")) {
  ran = true;
  const { compareWithHeaders } = await import("../tests/c/headers.ts");
  const result = compareWithHeaders(LINUX);
  if (result === null) {
    console.log("\nlinux: no C compiler (cc); not checked");
  } else {
    console.log(
      `\nlinux (this machine's headers, cc): ${result.checked} entries, ${result.mismatches.length} differ`,
    );
    for (const m of result.mismatches) {
      console.log(`  DIFFERS ${m.key}: table ${m.ours}, headers ${m.theirs}`);
    }
    if (result.mismatches.length) failed = true;
  }
}

if (!ran) {
  console.log(
    "nothing to check: give --xnu, --libinfo, --freebsd, --openbsd, --netbsd or --libkqueue (or run on Linux)",
  );
}
process.exit(failed ? 1 : 0);

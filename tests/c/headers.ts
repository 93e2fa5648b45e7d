// What this machine's C headers say about every entry of a constant table:
// a C program generated from the table's names, compiled with `cc` and run.
// Used by tests/ffi_layout.test.ts (the Linux table against glibc) and by
// scripts/check-headers.mjs --linux.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  OPTIONAL_CONSTANTS,
  type PlatformTable,
} from "../../ffi/sys/posix/table.ts";

const INCLUDES = [
  "errno.h",
  "fcntl.h",
  "netdb.h",
  "netinet/in.h",
  "netinet/tcp.h",
  "stddef.h",
  "stdio.h",
  "sys/socket.h",
  "sys/un.h",
  "unistd.h",
];

// Linux-only headers and symbols, probed by linking against them.
const LINUX_PROBES = `
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
static void *probes[] = {
  (void *)&pipe2, (void *)&accept4, (void *)&eventfd,
  (void *)&epoll_create1, (void *)&__errno_location, (void *)&sendfile,
};
`;

/** The C source that prints `table`'s names as this machine defines them. */
export function headerProgram(table: PlatformTable): string {
  const lines = [
    "#define _GNU_SOURCE",
    ...INCLUDES.map((h) => `#include <${h}>`),
  ];
  const linux = table.os === "linux";
  if (linux) lines.push(LINUX_PROBES);
  lines.push("int main(void) {", '  printf("{");');
  const groups: [string, Readonly<Record<string, number>>][] = [
    ["constants", table.constants],
    ["errno", table.errno],
    ["gaiErrors", table.gaiErrors],
  ];
  for (const [group, record] of groups) {
    for (const name of Object.keys(record)) {
      lines.push(
        `#ifdef ${name}`,
        `  printf("\\"${group}.${name}\\":%lld,", (long long)(${name}));`,
        "#else",
        `  printf("\\"${group}.${name}\\":null,");`,
        "#endif",
      );
    }
  }
  const facts: [string, string][] = [
    ["addrinfo.size", "sizeof(struct addrinfo)"],
    ["addrinfo.flags", "offsetof(struct addrinfo, ai_flags)"],
    ["addrinfo.family", "offsetof(struct addrinfo, ai_family)"],
    ["addrinfo.socktype", "offsetof(struct addrinfo, ai_socktype)"],
    ["addrinfo.protocol", "offsetof(struct addrinfo, ai_protocol)"],
    ["addrinfo.addrlen", "offsetof(struct addrinfo, ai_addrlen)"],
    ["addrinfo.addr", "offsetof(struct addrinfo, ai_addr)"],
    ["addrinfo.canonname", "offsetof(struct addrinfo, ai_canonname)"],
    ["addrinfo.next", "offsetof(struct addrinfo, ai_next)"],
    [
      "sockaddr.sunPathSize",
      "sizeof(((struct sockaddr_un *)0)->sun_path)",
    ],
    // A u8 sin_len before a u8 family puts the family at offset 1.
    ["sockaddr.sinLen", "offsetof(struct sockaddr_in, sin_family) == 1"],
  ];
  for (const [key, expr] of facts) {
    lines.push(`  printf("\\"${key}\\":%lld,", (long long)(${expr}));`);
  }
  if (linux) {
    lines.push('  printf("\\"symbols.linked\\":%d,", probes[0] != 0);');
  }
  lines.push('  printf("\\"end\\":0}\\n");', "  return 0;", "}");
  return lines.join("\n") + "\n";
}

/**
 * Compiles `source` with `cc` and runs it; its stdout, or null when there
 * is no C compiler (or the program does not build: the error is in
 * `failure`).
 */
export function runC(
  source: string,
): { output: string | null; failure?: string } {
  const dir = mkdtempSync(join(tmpdir(), "aioloop-headers-"));
  try {
    const src = join(dir, "headers.c");
    const exe = join(dir, "headers");
    writeFileSync(src, source);
    try {
      execFileSync("cc", ["-O0", "-o", exe, src], { stdio: "pipe" });
    } catch (e) {
      const err = e as { code?: string; stderr?: Uint8Array };
      if (err.code === "ENOENT") return { output: null, failure: "no cc" };
      return {
        output: null,
        failure: new TextDecoder().decode(err.stderr ?? new Uint8Array()),
      };
    }
    return { output: execFileSync(exe, { encoding: "utf8" }) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A difference between the table and the headers. */
export interface Mismatch {
  /** "constants.AF_INET6", "errno.EAGAIN", "addrinfo.addr", ... */
  key: string;
  /** The table's value. */
  ours: number | boolean;
  /** The headers' value (null: not defined there). */
  theirs: number | boolean | null;
}

/** The table's entries, flattened to "group.NAME" keys. */
export function tableEntries(
  table: PlatformTable,
): Map<string, number | boolean> {
  const out = new Map<string, number | boolean>();
  for (const [name, v] of Object.entries(table.constants)) {
    out.set(`constants.${name}`, v);
  }
  for (const [name, v] of Object.entries(table.errno)) {
    out.set(`errno.${name}`, v);
  }
  for (const [name, v] of Object.entries(table.gaiErrors)) {
    out.set(`gaiErrors.${name}`, v);
  }
  for (const [name, v] of Object.entries(table.addrinfo)) {
    out.set(`addrinfo.${name}`, v);
  }
  out.set("sockaddr.sunPathSize", table.sockaddr.sunPathSize);
  out.set("sockaddr.sinLen", table.sockaddr.sinLen);
  return out;
}

/**
 * Compares `table` with this machine's headers. null when there is no C
 * compiler; otherwise the entries that differ (a 0 in the table matches an
 * optional name the headers do not define: "this OS has no such flag").
 */
export function compareWithHeaders(
  table: PlatformTable,
): { checked: number; mismatches: Mismatch[] } | null {
  const { output, failure } = runC(headerProgram(table));
  if (output === null) {
    if (failure === "no cc") return null;
    throw new Error(`the header program did not build:\n${failure}`);
  }
  const c = JSON.parse(output) as Record<string, number | null>;
  const mismatches: Mismatch[] = [];
  let checked = 0;
  for (const [key, ours] of tableEntries(table)) {
    let theirs: number | boolean | null = c[key] ?? null;
    if (typeof ours === "boolean" && theirs !== null) theirs = theirs !== 0;
    checked++;
    if (theirs === ours) continue;
    const optional = OPTIONAL_CONSTANTS.some((n) => key === `constants.${n}`);
    if (theirs === null && ours === 0 && optional) continue;
    mismatches.push({ key, ours, theirs });
  }
  return { checked, mismatches };
}

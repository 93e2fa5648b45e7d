// The struct layouts and constants the FFI bindings state are checked
// against the C headers: a small C program (tests/c/layouts.c) prints the
// layouts, and one generated from this OS's constant table
// (tests/c/headers.ts) prints every constant, errno and getaddrinfo value
// the table names. Skipped, with a message, where no C compiler is
// installed; the layout programs are Linux's (epoll), the table check runs
// on any OS with a table.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EPOLL_EVENT_LAYOUT } from "../ffi/sys/linux/epoll.ts";
import {
  POLLERR,
  POLLFD_LAYOUT,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from "../ffi/sys/posix/poll.ts";
import { platform } from "../ffi/runtime.ts";
import { errno, libc, strerror } from "../ffi/libc.ts";
import { errnoName, hasHostTable, hostTable } from "../ffi/sys/platform.ts";
import { LINUX } from "../ffi/sys/linux/constants.ts";
import * as sa from "../ffi/sys/sockaddr.ts";
import * as dns from "../ffi/dns.ts";
import { compareWithHeaders } from "./c/headers.ts";

function cLayouts(): Record<string, number> | null {
  const dir = mkdtempSync(join(tmpdir(), "aioloop-layout-"));
  try {
    const src = fileURLToPath(new URL("./c/layouts.c", import.meta.url));
    const exe = join(dir, "layouts");
    execFileSync("cc", ["-O0", "-o", exe, src], { stdio: "pipe" });
    // Two JSON objects: the poller layouts, then the socket ones.
    const [pollers, socketsJson] = execFileSync(exe, { encoding: "utf8" })
      .trim().split("\n");
    return { ...JSON.parse(pollers), ...JSON.parse(socketsJson) };
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const c = platform === "linux" ? cLayouts() : null;
const skip = c === null ? "no C compiler (cc) or not Linux" : false;

describe("FFI layouts match the C headers", () => {
  it("struct epoll_event", { skip }, () => {
    assert.equal(EPOLL_EVENT_LAYOUT.size, c!.epoll_event_size);
    assert.equal(EPOLL_EVENT_LAYOUT.eventsOffset, c!.epoll_events_offset);
    assert.equal(EPOLL_EVENT_LAYOUT.dataOffset, c!.epoll_data_offset);
  });

  it("struct pollfd and poll flags", { skip }, () => {
    assert.equal(POLLFD_LAYOUT.size, c!.pollfd_size);
    assert.equal(POLLFD_LAYOUT.fdOffset, c!.pollfd_fd);
    assert.equal(POLLFD_LAYOUT.eventsOffset, c!.pollfd_events);
    assert.equal(POLLFD_LAYOUT.reventsOffset, c!.pollfd_revents);
    assert.deepEqual(
      [POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL],
      [c!.POLLIN, c!.POLLOUT, c!.POLLERR, c!.POLLHUP, c!.POLLNVAL],
    );
  });

  it("flag constants used by the bindings", { skip }, () => {
    // ffi/sys/linux/epoll.ts and linux/eventfd.ts derive EPOLL_CLOEXEC,
    // EFD_CLOEXEC and EFD_NONBLOCK from the Linux table's O_* values.
    assert.equal(c!.EPOLLIN, 0x001);
    assert.equal(c!.EPOLLOUT, 0x004);
    assert.equal(c!.EPOLL_CLOEXEC, LINUX.constants.O_CLOEXEC);
    assert.equal(c!.EFD_CLOEXEC, LINUX.constants.O_CLOEXEC);
    assert.equal(c!.EFD_NONBLOCK, LINUX.constants.O_NONBLOCK);
  });

  it("struct sockaddr_in, sockaddr_in6, sockaddr_un, sockaddr_storage", {
    skip,
  }, () => {
    const L = sa.SOCKADDR_LAYOUT;
    assert.deepEqual(
      [L.in.size, L.in.family, L.in.port, L.in.addr],
      [c!.in_size, c!.in_family, c!.in_port, c!.in_addr],
    );
    assert.deepEqual(
      [L.in6.size, L.in6.family, L.in6.port, L.in6.flowinfo, L.in6.addr],
      [c!.in6_size, c!.in6_family, c!.in6_port, c!.in6_flowinfo, c!.in6_addr],
    );
    assert.equal(L.in6.scopeId, c!.in6_scope_id);
    assert.deepEqual(
      [L.un.size, L.un.family, L.un.path],
      [c!.un_size, c!.un_family, c!.un_path],
    );
    assert.equal(sa.SOCKADDR_STORAGE_SIZE, c!.storage_size);
  });

  it("struct addrinfo", { skip }, () => {
    const L = dns.ADDRINFO_LAYOUT;
    assert.deepEqual(
      [L.size, L.flags, L.family, L.socktype, L.protocol, L.addrlen],
      [
        c!.ai_size,
        c!.ai_flags,
        c!.ai_family,
        c!.ai_socktype,
        c!.ai_protocol,
        c!.ai_addrlen,
      ],
    );
    assert.deepEqual(
      [L.addr, L.canonname, L.next],
      [c!.ai_addr, c!.ai_canonname, c!.ai_next],
    );
  });

  it("this OS's constant table matches its C headers, entry by entry", {
    skip: hasHostTable ? false : "no constant table for this OS",
  }, (t) => {
    const result = compareWithHeaders(hostTable);
    if (result === null) return t.skip("no C compiler (cc)");
    // Every constant, errno and EAI_* name, addrinfo offset and sockaddr fact.
    assert.ok(result.checked > 150, `only ${result.checked} entries checked`);
    assert.deepEqual(result.mismatches, []);
  });

  it("the public socket and getaddrinfo constants are this OS's table", () => {
    for (
      const [name, value] of Object.entries({
        AF_INET6: sa.AF_INET6,
        SOL_SOCKET: sa.SOL_SOCKET,
        SO_REUSEADDR: sa.SO_REUSEADDR,
        SOMAXCONN: sa.SOMAXCONN,
        AI_NUMERICSERV: dns.AI_NUMERICSERV,
        NI_NAMEREQD: dns.NI_NAMEREQD,
      })
    ) {
      assert.equal(
        value,
        hostTable.constants[name as keyof typeof hostTable.constants],
        name,
      );
    }
    assert.equal(dns.EAI_NONAME, hostTable.gaiErrors.EAI_NONAME);
    assert.deepEqual(dns.ADDRINFO_LAYOUT, hostTable.addrinfo);
  });

  it("errno is read from this thread's errno cell", () => {
    // close(-1) fails with EBADF and sets errno.
    assert.equal(libc.close(-1), -1);
    assert.equal(errnoName(errno()), "EBADF");
    assert.match(strerror(errno()), /Bad file descriptor/);
  });
});

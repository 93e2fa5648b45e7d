// The struct layouts and constants the FFI bindings state are checked
// against the C headers: a small C program (tests/c/layouts.c) prints them.
// Skipped, with a message, where no C compiler is installed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EPOLL_EVENT_LAYOUT } from "../ffi/sys/epoll.ts";
import {
  POLLERR,
  POLLFD_LAYOUT,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from "../ffi/sys/poll.ts";
import { platform } from "../ffi/runtime.ts";
import { errno, libc, strerror } from "../ffi/libc.ts";
import { errnoName } from "../ffi/sys/errno.ts";

function cLayouts(): Record<string, number> | null {
  const dir = mkdtempSync(join(tmpdir(), "aioloop-layout-"));
  try {
    const src = fileURLToPath(new URL("./c/layouts.c", import.meta.url));
    const exe = join(dir, "layouts");
    execFileSync("cc", ["-O0", "-o", exe, src], { stdio: "pipe" });
    return JSON.parse(execFileSync(exe, { encoding: "utf8" }));
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
    // Values hard-coded in ffi/sys/epoll.ts, wakers.ts and tests/sys.ts.
    assert.equal(c!.EPOLLIN, 0x001);
    assert.equal(c!.EPOLLOUT, 0x004);
    assert.equal(c!.EPOLL_CLOEXEC, 0o2000000);
    assert.equal(c!.EFD_CLOEXEC, 0o2000000);
    assert.equal(c!.EFD_NONBLOCK, 0o4000);
    assert.equal(c!.O_NONBLOCK, 0o4000);
    assert.equal(c!.O_CLOEXEC, 0o2000000);
  });

  it("errno is read from this thread's errno cell", () => {
    // close(-1) fails with EBADF and sets errno.
    assert.equal(libc.close(-1), -1);
    assert.equal(errnoName(errno()), "EBADF");
    assert.match(strerror(errno()), /Bad file descriptor/);
  });
});

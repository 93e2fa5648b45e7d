// One loop for every OS: the constant tables of Linux, macOS, FreeBSD,
// OpenBSD and NetBSD are checked here on whatever OS runs the tests (tables
// are plain data, selected by OS name), with what the bindings would bind
// on each, the BSD sockaddr layout, and the code paths macOS takes
// (no SOCK_NONBLOCK, no accept4, no pipe2, no sendfile) run on this OS.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AF_INET,
  AF_UNIX,
  os,
  OSError,
  SendfileNotAvailableError,
  SOCK_STREAM,
  Socket,
  socketpair,
} from "../mod.ts";
import { platform } from "../ffi/runtime.ts";
import {
  libc,
  type LibcCalls,
  nonBlockingPipe,
  osError,
  padVariadicCalls,
} from "../ffi/libc.ts";
import { _useSocketTable } from "../ffi/socket.ts";
import {
  COMMON_ERRNO,
  COMMON_GAI_ERRORS,
  CONSTANT_NAMES,
  EAGAIN,
  errnoName,
  F_GETFD,
  F_GETFL,
  FD_CLOEXEC,
  gaiErrorName,
  hasHostTable,
  hostTable,
  O_NONBLOCK,
  type PlatformTable,
  platformTable,
  POSIX_PLATFORMS,
} from "../ffi/sys/platform.ts";
import { librarySymbols } from "../ffi/sys/posix/symbols.ts";
import { sockaddrCodec, sockaddrLayout } from "../ffi/sys/sockaddr.ts";
import { newLoop, runLoop } from "./helpers.ts";

const OSES = ["linux", "darwin", "freebsd", "openbsd", "netbsd"];
const tables = OSES.map(platformTable);

/** Each table's value of a constant, in OSES order. */
function column(
  pick: (t: PlatformTable) => number | boolean | string,
): (number | boolean | string)[] {
  return tables.map(pick);
}

describe("constant tables", () => {
  it("exist for linux, darwin, freebsd, openbsd and netbsd, and only those", () => {
    assert.deepEqual([...POSIX_PLATFORMS].sort(), [...OSES].sort());
    for (const os of OSES) assert.equal(platformTable(os).os, os);
    assert.throws(() => platformTable("win32"), RangeError);
    assert.throws(() => platformTable("aix"), /no constant table/);
    assert.equal(hasHostTable, OSES.includes(platform));
    if (hasHostTable) assert.equal(hostTable.os, platform);
  });

  it("every table defines the same set of names, all integers", () => {
    for (const t of tables) {
      assert.deepEqual(
        Object.keys(t.constants).sort(),
        [...CONSTANT_NAMES].sort(),
        `${t.os} constants`,
      );
      for (const name of COMMON_ERRNO) {
        assert.ok(name in t.errno, `${t.os} has no ${name}`);
      }
      for (const name of COMMON_GAI_ERRORS) {
        assert.ok(name in t.gaiErrors, `${t.os} has no ${name}`);
      }
      for (
        const [name, value] of [
          ...Object.entries(t.constants),
          ...Object.entries(t.errno),
          ...Object.entries(t.gaiErrors),
          ...Object.entries(t.addrinfo),
        ]
      ) {
        assert.ok(Number.isInteger(value), `${t.os} ${name} = ${value}`);
      }
    }
  });

  it("values that differ between systems do", () => {
    // OSES order: linux, darwin, freebsd, openbsd, netbsd.
    assert.deepEqual(column((t) => t.constants.AF_INET6), [10, 30, 28, 24, 24]);
    assert.deepEqual(column((t) => t.errno.EAGAIN), [11, 35, 35, 35, 35]);
    assert.deepEqual(column((t) => t.errno.EINPROGRESS), [115, 36, 36, 36, 36]);
    assert.deepEqual(column((t) => t.errno.ECONNREFUSED), [
      111,
      61,
      61,
      61,
      61,
    ]);
    assert.deepEqual(column((t) => t.constants.SOL_SOCKET), [
      1,
      0xffff,
      0xffff,
      0xffff,
      0xffff,
    ]);
    assert.deepEqual(column((t) => t.constants.SO_REUSEADDR), [2, 4, 4, 4, 4]);
    assert.deepEqual(column((t) => t.constants.O_CLOEXEC), [
      0o2000000,
      0x01000000,
      0x00100000,
      0x10000,
      0x00400000,
    ]);
    assert.deepEqual(column((t) => t.constants.O_NONBLOCK), [
      0o4000,
      4,
      4,
      4,
      4,
    ]);
    assert.deepEqual(column((t) => t.constants.AI_NUMERICSERV), [
      0x400,
      0x1000,
      8,
      16,
      8,
    ]);
    assert.deepEqual(column((t) => t.gaiErrors.EAI_NONAME), [-2, 8, 8, -2, 8]);
    assert.deepEqual(column((t) => t.addrinfo.addr), [24, 32, 32, 24, 32]);
    assert.deepEqual(column((t) => t.addrinfo.canonname), [32, 24, 24, 32, 24]);
    assert.deepEqual(column((t) => t.sockaddr.sinLen), [
      false,
      true,
      true,
      true,
      true,
    ]);
    assert.deepEqual(column((t) => t.sockaddr.sunPathSize), [
      108,
      104,
      104,
      104,
      104,
    ]);
    assert.deepEqual(column((t) => t.symbols.errnoLocation), [
      "__errno_location",
      "__error",
      "__error",
      "__errno",
      "__errno",
    ]);
    // Absent flags are 0: macOS has no SOCK_NONBLOCK, Linux and OpenBSD
    // no SO_NOSIGPIPE.
    assert.deepEqual(column((t) => t.constants.SOCK_NONBLOCK), [
      0o4000,
      0,
      0x20000000,
      0x4000,
      0x20000000,
    ]);
    assert.deepEqual(column((t) => t.constants.SO_NOSIGPIPE), [
      0,
      0x1022,
      0x0800,
      0,
      0x0800,
    ]);
  });

  it("errno and EAI numbers name themselves back, per OS", () => {
    const aliases = new Set([
      "EWOULDBLOCK",
      "EDEADLOCK",
      "EOPNOTSUPP", // = ENOTSUP on Linux and FreeBSD
      "ENOTSUP",
    ]);
    for (const t of tables) {
      const seen = new Map<number, string>();
      for (const [name, value] of Object.entries(t.errno)) {
        const other = seen.get(value);
        assert.ok(
          other === undefined || aliases.has(name),
          `${t.os}: ${name} and ${other} are both ${value}`,
        );
        seen.set(value, other ?? name);
        assert.equal(t.errno[errnoName(value, t)], value, `${t.os} ${name}`);
      }
      for (const [name, value] of Object.entries(t.gaiErrors)) {
        assert.equal(gaiErrorName(value, t), name, `${t.os} ${name}`);
      }
      assert.equal(errnoName(t.errno.EAGAIN, t), "EAGAIN");
      assert.equal(errnoName(t.errno.ECONNRESET, t), "ECONNRESET");
    }
    const darwin = platformTable("darwin");
    assert.equal(errnoName(45, darwin), "ENOTSUP");
    assert.equal(errnoName(102, darwin), "EOPNOTSUPP");
    assert.equal(errnoName(35, platformTable("linux")), "EDEADLK");
    assert.equal(errnoName(9999, darwin), "E9999");
    // The errors this OS raises carry its own names.
    const e = osError(EAGAIN, "read");
    assert.equal(e.code, "EAGAIN");
    assert.equal(e.errno, hostTable.errno.EAGAIN);
  });
});

describe("symbols bound per OS", () => {
  const LINUX_ONLY = [
    "__errno_location",
    "eventfd",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "sendfile",
  ];
  const all = (os: string, cpu?: string) => {
    const s = librarySymbols(os, cpu);
    return [s.libc, s.socket, s.eventfd, s.epoll].flatMap(Object.keys);
  };

  it("no other OS is asked for a Linux-only symbol", () => {
    for (const os of ["darwin", "freebsd", "openbsd", "netbsd"]) {
      const names = all(os);
      for (const name of LINUX_ONLY) {
        assert.ok(!names.includes(name), `${os} would bind ${name}`);
      }
      const t = platformTable(os);
      assert.ok(names.includes(t.symbols.errnoLocation), os);
      // pipe2 and accept4 only where the OS has them (not macOS).
      assert.equal(names.includes("pipe2"), t.symbols.pipe2, `${os} pipe2`);
      assert.equal(
        names.includes("accept4"),
        t.symbols.accept4,
        `${os} accept4`,
      );
      assert.equal(
        names.includes("accept"),
        !t.symbols.accept4,
        `${os} accept`,
      );
    }
    const darwin = all("darwin");
    for (const name of ["pipe2", "accept4"]) {
      assert.ok(!darwin.includes(name), `darwin would bind ${name}`);
    }
    for (const name of ["pipe", "fcntl", "accept", "__error", "socket"]) {
      assert.ok(darwin.includes(name), `darwin lacks ${name}`);
    }
    // NetBSD's header renames socket(2).
    assert.ok(all("netbsd").includes("__socket30"));
    assert.ok(!all("netbsd").includes("socket"));
  });

  it("Linux binds its own symbols", () => {
    const names = all("linux");
    for (const name of [...LINUX_ONLY, "pipe2", "accept4", "socket"]) {
      assert.ok(names.includes(name), `linux lacks ${name}`);
    }
  });

  it("macOS arm64 passes the variadic argument of fcntl and open on the stack", () => {
    const arm = librarySymbols("darwin", "arm64").libc;
    const x64 = librarySymbols("darwin", "x64").libc;
    // 8 register arguments (2 named + 6 padding), then the stack slot.
    assert.equal(arm.fcntl.parameters.length, 9);
    assert.equal(arm.fcntl.parameters[8], "i64");
    assert.equal(arm.open.parameters.length, 9);
    assert.equal(x64.fcntl.parameters.length, 3);
    assert.equal(
      librarySymbols("linux", "arm64").libc.fcntl.parameters.length,
      3,
    );
  });

  it("the padded fcntl and open wrappers call the bound functions once, padding in place", () => {
    // As on macOS arm64: the object whose fcntl/open are replaced is the
    // one the bound functions live on.
    const seen: unknown[][] = [];
    const bound = {
      fcntl: (...args: unknown[]) => (seen.push(["fcntl", ...args]), 7),
      open: (...args: unknown[]) => (seen.push(["open", ...args]), 9),
    } as unknown as Pick<LibcCalls, "fcntl" | "open">;
    padVariadicCalls(bound);
    const path = new Uint8Array([0x2f, 0]);
    assert.equal(bound.fcntl(3, 4, 2048), 7);
    assert.equal(bound.open(path, 1, 0o644), 9);
    assert.deepEqual(seen, [
      ["fcntl", 3, 4, 0, 0, 0, 0, 0, 0, 2048],
      ["open", path, 1, 0, 0, 0, 0, 0, 0, 0o644],
    ]);
  });
});

describe("sockaddr on the BSD layout (sin_len, u8 family)", () => {
  it("encodes and decodes IPv4, IPv6 and Unix paths with the length byte", () => {
    for (const os of ["freebsd", "darwin", "openbsd"]) {
      const t = platformTable(os);
      const { encode, decode } = sockaddrCodec(t);
      const af = t.constants;

      const v4 = encode(af.AF_INET, ["127.0.0.1", 8080]);
      assert.equal(v4.length, 16);
      assert.deepEqual([...v4.bytes.subarray(0, 8)], [
        16, // sin_len
        af.AF_INET, // sin_family (u8)
        0x1f,
        0x90, // port 8080, network order
        127,
        0,
        0,
        1,
      ]);
      assert.deepEqual(decode(v4.bytes, v4.length), ["127.0.0.1", 8080]);

      const v6 = encode(af.AF_INET6, ["fe80::1", 443, 7, 3]);
      assert.equal(v6.length, 28);
      assert.equal(v6.bytes[0], 28);
      assert.equal(v6.bytes[1], af.AF_INET6);
      assert.deepEqual(decode(v6.bytes, v6.length), ["fe80::1", 443, 7, 3]);

      const un = encode(af.AF_UNIX, "/tmp/s.sock");
      assert.equal(un.length, 2 + 11 + 1);
      assert.deepEqual([...un.bytes.subarray(0, 2)], [un.length, af.AF_UNIX]);
      assert.equal(un.bytes.length, sockaddrLayout(t).un.size);
      assert.equal(decode(un.bytes, un.length), "/tmp/s.sock");

      // sun_path is 104 bytes with its NUL; no abstract namespace.
      assert.equal(
        decode(encode(af.AF_UNIX, "p".repeat(103)).bytes, 106).length,
        103,
      );
      assert.throws(() => encode(af.AF_UNIX, "p".repeat(104)), RangeError);
      assert.throws(() => encode(af.AF_UNIX, "\0abstract"), /Linux-only/);
      // Linux's numbers are not this OS's families.
      assert.throws(() => encode(10, ["::1", 1]), RangeError);
    }
  });

  it("the Linux layout keeps a u16 family and 108-byte paths", () => {
    const t = platformTable("linux");
    const { encode, decode } = sockaddrCodec(t);
    const v6 = encode(10, ["::1", 80]);
    assert.deepEqual([...v6.bytes.subarray(0, 2)], [10, 0]);
    assert.deepEqual(decode(v6.bytes, v6.length), ["::1", 80, 0, 0]);
    assert.equal(encode(1, "p".repeat(107)).length, 110);
    assert.equal(decode(encode(1, "\0name").bytes, 7), "\0name");
  });
});

function isNonBlocking(fd: number): boolean {
  return (libc.fcntl(fd, F_GETFL, 0) & O_NONBLOCK) !== 0;
}
function isCloexec(fd: number): boolean {
  return (libc.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC) !== 0;
}

/** This OS's table without SOCK_NONBLOCK/SOCK_CLOEXEC, accept4 or sendfile. */
function macLike(): PlatformTable {
  return {
    ...hostTable,
    constants: { ...hostTable.constants, SOCK_NONBLOCK: 0, SOCK_CLOEXEC: 0 },
    symbols: { ...hostTable.symbols, accept4: false, sendfile: null },
  };
}

describe("the macOS code paths, run on this OS", {
  skip: hasHostTable ? false : "no constant table for this OS",
}, () => {
  it("pipe() + fcntl gives a non-blocking, close-on-exec pipe", () => {
    const [r, w] = nonBlockingPipe(false);
    try {
      for (const fd of [r, w]) {
        assert.ok(isNonBlocking(fd), `fd ${fd} blocks`);
        assert.ok(isCloexec(fd), `fd ${fd} is inherited across exec`);
      }
      assert.equal(os.write(w, "x"), 1);
      assert.equal(new TextDecoder().decode(os.read(r)!), "x");
      assert.equal(os.read(r), null); // EAGAIN: it does not block
    } finally {
      os.close(r);
      os.close(w);
    }
  });

  it("socket(), accept() and socketpair() without flags get O_NONBLOCK and FD_CLOEXEC by fcntl", async () => {
    _useSocketTable(macLike());
    try {
      const listener = new Socket(AF_INET, SOCK_STREAM);
      const client = new Socket(AF_INET, SOCK_STREAM);
      const [a, b] = socketpair(AF_UNIX, SOCK_STREAM);
      let conn: Socket | undefined;
      try {
        listener.bind(["127.0.0.1", 0]);
        listener.listen();
        assert.equal(listener.accept(), null); // would block: EAGAIN
        client.connectEx(listener.getsockname());
        for (let i = 0; i < 200 && !conn; i++) {
          conn = listener.accept()?.[0];
          if (!conn) await new Promise((r) => setTimeout(r, 5));
        }
        assert.ok(conn, "no connection accepted");
        // Linux's accept() does not pass O_NONBLOCK on: prepare() did.
        for (const s of [listener, client, conn, a, b]) {
          assert.ok(isNonBlocking(s.fileno()), `${s} blocks`);
          assert.ok(isCloexec(s.fileno()), `${s} is inherited across exec`);
        }
        assert.equal(conn.recv(10), null);
        assert.equal(a.send(new TextEncoder().encode("hi")), 2);
        assert.equal(new TextDecoder().decode(b.recv(10)!), "hi");
      } finally {
        for (const s of [listener, client, conn, a, b]) s?.close();
      }
    } finally {
      _useSocketTable(null);
    }
  });

  it("without sendfile(2), Socket.sendfile is ENOSYS and the loop reads and sends", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aioloop-platform-"));
    const path = join(dir, "data");
    const data = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
    writeFileSync(path, data);
    _useSocketTable(macLike());
    const loop = newLoop();
    try {
      await runLoop(async () => {
        const [a, b] = socketpair();
        const fd = os.open(path);
        try {
          assert.throws(
            () => a.sendfile(fd, 0, 10),
            (e) => e instanceof OSError && e.code === "ENOSYS",
          );
          await assert.rejects(
            loop.sockSendfile(a, fd, 0, null, { fallback: false }),
            SendfileNotAvailableError,
          );
          const got: Uint8Array[] = [];
          const reading = (async () => {
            for (;;) {
              const chunk = await loop.sockRecv(b, 65536);
              if (chunk.length === 0) return; // EOF
              got.push(chunk);
            }
          })();
          assert.equal(await loop.sockSendfile(a, fd, 100), data.length - 100);
          a.shutdown(1); // SHUT_WR: EOF for the reader
          await reading;
          const joined = new Uint8Array(data.length - 100);
          let at = 0;
          for (const chunk of got) {
            joined.set(chunk, at);
            at += chunk.length;
          }
          assert.deepEqual(joined, data.subarray(100));
        } finally {
          os.close(fd);
          a.close();
          b.close();
        }
      }, loop);
    } finally {
      _useSocketTable(null);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

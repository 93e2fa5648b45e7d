// Our Socket type, sockaddr encoding, name resolution, sendfile,
// BufferedProtocol, and what loop.close() does to live connections.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  type BaseTransport,
  BufferedProtocol,
  CancelledError,
  GaiError,
  IPPROTO_TCP,
  openConnection,
  os,
  OSError,
  Protocol,
  RuntimeError,
  SendfileNotAvailableError,
  SO_RCVBUF,
  SO_REUSEADDR,
  SOCK_DGRAM,
  SOCK_STREAM,
  Socket,
  socketpair,
  SOL_SOCKET,
  TCP_NODELAY,
  TimeoutError,
  type Transport,
  waitFor,
} from "../mod.ts";
import { decodeSockaddr, encodeSockaddr } from "../ffi/sys/sockaddr.ts";
import { assertNoNewFds, newLoop, openFds, runLoop } from "./helpers.ts";
import { stalledListener } from "./net_helpers.ts";

const enc = new TextEncoder();

describe("Socket", () => {
  it("binds, listens and reports its address; close is idempotent", () => {
    const sock = new Socket(AF_INET, SOCK_STREAM);
    sock.bind(["127.0.0.1", 0]);
    sock.listen();
    const [host, port] = sock.getsockname() as [string, number];
    assert.equal(host, "127.0.0.1");
    assert.ok(port > 0);
    assert.match(String(sock), /AF_INET SOCK_STREAM laddr=127\.0\.0\.1:\d+/);
    sock.close();
    sock.close();
    assert.equal(sock.fileno(), -1);
    assert.throws(() => sock.getsockname(), { name: "OSError", code: "EBADF" });
  });

  it("options round-trip; bad arguments are TypeError/RangeError", () => {
    const sock = new Socket(AF_INET6, SOCK_STREAM);
    try {
      sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
      assert.equal(sock.getsockopt(SOL_SOCKET, SO_REUSEADDR), 1);
      sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
      assert.equal(sock.getsockopt(IPPROTO_TCP, TCP_NODELAY), 1);
      assert.ok(sock.getsockopt(SOL_SOCKET, SO_RCVBUF) > 0);
      assert.throws(() => sock.bind(["127.0.0.1", 0]), TypeError);
      assert.throws(() => sock.bind(["::1", 70000]), RangeError);
      assert.throws(() => sock.bind("/tmp/x" as never), TypeError);
      assert.throws(() => new Socket(99, SOCK_STREAM), RangeError);
      assert.throws(() => new Socket(AF_INET, 99), RangeError);
    } finally {
      sock.close();
    }
  });

  it("EADDRINUSE names the address; ECONNREFUSED via SO_ERROR", () => {
    const a = new Socket();
    const b = new Socket();
    try {
      a.bind(["127.0.0.1", 0]);
      a.listen();
      const port = (a.getsockname() as [string, number])[1];
      assert.throws(() => b.bind(["127.0.0.1", port]), (e: unknown) => {
        assert.ok(e instanceof OSError);
        assert.equal(e.code, "EADDRINUSE");
        assert.equal(e.syscall, "bind");
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        return true;
      });
    } finally {
      a.close();
      b.close();
    }
  });

  it("socketpair sends and receives; recv returns null when empty", () => {
    const [a, b] = socketpair();
    try {
      assert.equal(b.recv(10), null);
      assert.equal(a.send(enc.encode("hi")), 2);
      assert.deepEqual(b.recv(10), enc.encode("hi"));
      a.close();
      assert.deepEqual(b.recv(10), new Uint8Array(0));
    } finally {
      a.close();
      b.close();
    }
  });

  it("sockaddr encoding round-trips IPv4, IPv6, paths and abstract names", () => {
    const cases: [number, unknown][] = [
      [AF_INET, ["10.1.2.3", 8080]],
      [AF_INET6, ["fe80::1", 443, 7, 2]],
      [AF_UNIX, "/tmp/some.sock"],
      [AF_UNIX, "\0abstract-name"],
    ];
    for (const [family, address] of cases) {
      const { bytes, length } = encodeSockaddr(family, address as never);
      const back = decodeSockaddr(bytes, length);
      const expected = family === AF_INET6 && Array.isArray(address)
        ? address
        : address;
      assert.deepEqual(back, expected);
    }
    assert.throws(() => encodeSockaddr(AF_UNIX, "x".repeat(200)), RangeError);
  });

  it("Unix sockets in the abstract namespace bind and connect", () => {
    const name = `\0aioloop-test-${Math.random()}`;
    const server = new Socket(AF_UNIX, SOCK_STREAM);
    const client = new Socket(AF_UNIX, SOCK_STREAM);
    try {
      server.bind(name);
      server.listen();
      assert.equal(server.getsockname(), name);
      assert.equal(client.connectEx(name), 0);
      const accepted = server.accept();
      assert.ok(accepted !== null);
      accepted[0].close();
    } finally {
      server.close();
      client.close();
    }
  });
});

describe("name resolution", () => {
  it("numeric hosts are answered without the resolver", async () => {
    const loop = newLoop();
    await runLoop(async () => {
      const infos = await loop.getaddrinfo("127.0.0.1", 80, {
        type: SOCK_STREAM,
      });
      assert.deepEqual(infos, [[AF_INET, SOCK_STREAM, IPPROTO_TCP, "", [
        "127.0.0.1",
        80,
      ]]]);
      const six = await loop.getaddrinfo("::1", "443", { type: SOCK_DGRAM });
      assert.deepEqual(six[0][4], ["::1", 443, 0, 0]);
    }, loop);
  });

  it("localhost resolves off the JS thread; unknown names are GaiError", async () => {
    const loop = newLoop();
    const before = openFds();
    await runLoop(async () => {
      const infos = await loop.getaddrinfo("localhost", 80, {
        type: SOCK_STREAM,
      });
      assert.ok(infos.length >= 1);
      for (const info of infos) {
        assert.ok(info[0] === AF_INET || info[0] === AF_INET6);
        assert.equal((info[4] as [string, number])[1], 80);
      }
      await assert.rejects(
        loop.getaddrinfo("nonexistent.invalid", 80),
        (e: unknown) => {
          assert.ok(e instanceof GaiError);
          assert.ok(e instanceof OSError);
          assert.match(e.code, /^EAI_/);
          assert.equal(e.syscall, "getaddrinfo");
          assert.match(e.message, /nonexistent\.invalid/);
          return true;
        },
      );
      const [host, service] = await loop.getnameinfo(["127.0.0.1", 80]);
      assert.equal(typeof host, "string");
      assert.ok(service === "http" || service === "80");
    }, loop);
    // The resolver (a Worker in Bun) is gone with the loop.
    await assertNoNewFds(before);
  });
});

class Collect extends Protocol {
  chunks: Uint8Array[] = [];
  lost: Promise<Error | null>;
  private resolveLost!: (e: Error | null) => void;
  constructor() {
    super();
    this.lost = new Promise((r) => (this.resolveLost = r));
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data);
  }
  override connectionLost(exc: Error | null): void {
    this.resolveLost(exc);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function tempFile(
  size: number,
): { path: string; data: Uint8Array; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "aioloop-sendfile-"));
  const path = join(dir, "data.bin");
  const data = new Uint8Array(size).map((_, i) => (i * 7) & 255);
  writeFileSync(path, data);
  return { path, data, cleanup: () => rmSync(dir, { recursive: true }) };
}

describe("name resolution, cancelled", () => {
  it("a cancelled getaddrinfo settles as cancelled; the late answer is dropped and the loop goes on", async () => {
    const loop = newLoop();
    const before = openFds();
    await runLoop(async () => {
      for (let i = 0; i < 20; i++) {
        const fut = loop.getaddrinfo("localhost", 80, { type: SOCK_STREAM });
        assert.equal(fut.cancel(), true);
        await assert.rejects(fut, CancelledError);
      }
      // The resolver still answers the next question.
      const infos = await loop.getaddrinfo("localhost", 80, {
        type: SOCK_STREAM,
      });
      assert.ok(infos.length > 0);
    }, loop);
    await assertNoNewFds(before);
  });
});

describe("sendfile", () => {
  it("sends a file range over a transport with sendfile(2)", async () => {
    const file = tempFile(3 * 1024 * 1024);
    const loop = newLoop();
    try {
      await runLoop(async () => {
        const received = new Collect();
        const server = await loop.createServer(() => received, "127.0.0.1", 0);
        const port = (server.sockets[0].getsockname() as [string, number])[1];
        const [transport] = await loop.createConnection(
          () => new Protocol(),
          "127.0.0.1",
          port,
        );
        const fd = os.open(file.path);
        try {
          transport.write(enc.encode("head:"));
          const sent = await loop.sendfile(transport, fd, 100, 2_000_000);
          assert.equal(sent, 2_000_000);
          // The file position ends after what was sent, as in asyncio.
          assert.equal(os.seek(fd, 0), 0);
        } finally {
          os.close(fd);
        }
        transport.close();
        await received.lost;
        const got = received.bytes();
        assert.deepEqual(got.subarray(0, 5), enc.encode("head:"));
        assert.equal(got.length, 5 + 2_000_000);
        assert.deepEqual(got.subarray(5), file.data.subarray(100, 2_000_100));
        server.close();
        await server.waitClosed();
      }, loop);
    } finally {
      file.cleanup();
    }
  });

  it("a pipe cannot go through sendfile(2): fallback reads it, or SendfileNotAvailableError", async () => {
    const loop = newLoop();
    await runLoop(async () => {
      const [a, b] = socketpair();
      const [r, w] = os.pipe();
      try {
        os.write(w, "through a pipe");
        await assert.rejects(
          loop.sockSendfile(a, r, 0, null, { fallback: false }),
          SendfileNotAvailableError,
        );
        // pread() on a pipe fails too (ESPIPE): that error surfaces.
        await assert.rejects(loop.sockSendfile(a, r), { code: "ESPIPE" });
      } finally {
        a.close();
        b.close();
        os.close(r);
        os.close(w);
      }
    }, loop);
  });
});

describe("BufferedProtocol", () => {
  it("receives straight into the protocol's buffer", async () => {
    const loop = newLoop();
    await runLoop(async () => {
      const buffer = new Uint8Array(16);
      const seen: string[] = [];
      let done!: () => void;
      const eof = new Promise<void>((r) => (done = r));
      class Into extends BufferedProtocol {
        override getBuffer(_hint: number): Uint8Array {
          return buffer;
        }
        override bufferUpdated(n: number): void {
          seen.push(new TextDecoder().decode(buffer.subarray(0, n)));
        }
        override eofReceived(): void {
          done();
        }
      }
      const [a, b] = socketpair();
      const [transport] = await loop.connectAcceptedSocket(
        () => new Into(),
        a,
      );
      b.send(enc.encode("x".repeat(40)));
      b.close();
      await eof;
      assert.equal(seen.join(""), "x".repeat(40));
      assert.ok(seen.every((s) => s.length <= 16));
      transport.close();
    }, loop);
  });
});

describe("loop.close() and live connections", () => {
  it("closes transports and listening sockets; no fd survives", async () => {
    const before = openFds();
    const loop = newLoop();
    const made: BaseTransport[] = [];
    class Keep extends Protocol {
      override connectionMade(t: BaseTransport): void {
        made.push(t);
      }
    }
    await loop.runUntilComplete(async () => {
      const server = await loop.createServer(() => new Keep(), "127.0.0.1", 0);
      const port = (server.sockets[0].getsockname() as [string, number])[1];
      for (let i = 0; i < 5; i++) {
        await loop.createConnection(() => new Keep(), "127.0.0.1", port);
      }
      while (made.length < 10) {
        await new Promise((r) => loop.callLater(1, r));
      }
    });
    loop.close();
    await assertNoNewFds(before);
    assert.ok(made.every((t) => t.isClosing()));
    // Writing to a connection the closed loop dropped is a no-op.
    (made[0] as Transport).write(enc.encode("x"));
  });

  it("a closed loop refuses network calls with RuntimeError", async () => {
    const loop = newLoop();
    loop.close();
    await assert.rejects(
      loop.createServer(() => new Protocol(), "127.0.0.1", 0),
      RuntimeError,
    );
    const sock = new Socket();
    try {
      assert.throws(() => loop.sockRecv(sock, 1), RuntimeError);
    } finally {
      sock.close();
    }
  });
});

describe("happy eyeballs", () => {
  it("a stalled first address is overtaken after happyEyeballsDelay; the loser is closed", async () => {
    const loop = newLoop();
    const before = openFds();
    await runLoop(async () => {
      const stalled = await stalledListener(loop);
      const stalledAddr = stalled.address;
      const server = await loop.createServer(
        () => new Protocol(),
        "127.0.0.1",
        0,
      );
      const good = server.sockets[0].getsockname() as [string, number];
      // Two addresses for one name, the stalled one first.
      const resolve = loop.getaddrinfo.bind(loop);
      loop.getaddrinfo = ((host: string | null, port: unknown, opts?: object) =>
        host === "two.test"
          ? Promise.resolve([
            [AF_INET, SOCK_STREAM, IPPROTO_TCP, "", stalledAddr],
            [AF_INET, SOCK_STREAM, IPPROTO_TCP, "", good],
          ])
          : resolve(host, port as number, opts)) as typeof loop.getaddrinfo;
      const t0 = performance.now();
      const [transport] = await loop.createConnection(
        () =>
          new Protocol(),
        "two.test",
        80,
        { happyEyeballsDelay: 50 },
      );
      const took = performance.now() - t0;
      assert.deepEqual(transport.getExtraInfo("peername"), good);
      assert.ok(took >= 40 && took < 2000, `connected after ${took} ms`);
      transport.close();
      server.close();
      await server.waitClosed();
      stalled.close();
    }, loop);
    await assertNoNewFds(before);
  });
});

describe("cancelling connection setup", () => {
  it("waitFor() on a happy-eyeballs connect whose addresses all stall: TimeoutError, no fd left", async () => {
    const loop = newLoop();
    const before = openFds();
    await runLoop(async () => {
      const first = await stalledListener(loop);
      const second = await stalledListener(loop);
      const resolve = loop.getaddrinfo.bind(loop);
      loop.getaddrinfo = ((host: string | null, port: unknown, opts?: object) =>
        host === "two.test"
          ? Promise.resolve([
            [AF_INET, SOCK_STREAM, IPPROTO_TCP, "", first.address],
            [AF_INET, SOCK_STREAM, IPPROTO_TCP, "", second.address],
          ])
          : resolve(host, port as number, opts)) as typeof loop.getaddrinfo;
      for (const delay of [5, 50]) {
        await assert.rejects(
          waitFor(
            loop.createConnection(
              () =>
                new Protocol(),
              "two.test",
              80,
              {
                happyEyeballsDelay: delay,
              },
            ),
            30,
          ),
          TimeoutError,
        );
      }
      first.close();
      second.close();
    }, loop);
    await assertNoNewFds(before);
  });

  it("waitFor() on createConnection/openConnection to a stalled listener: TimeoutError, no fd left", async () => {
    const loop = newLoop();
    const before = openFds();
    await runLoop(async () => {
      const stalled = await stalledListener(loop);
      const addr = stalled.address;
      for (let i = 0; i < 3; i++) {
        await assert.rejects(
          waitFor(
            loop.createConnection(() => new Protocol(), addr[0], addr[1]),
            30,
          ),
          TimeoutError,
        );
        await assert.rejects(
          waitFor(openConnection(addr[0], addr[1]), 30),
          TimeoutError,
        );
      }
      stalled.close();
    }, loop);
    await assertNoNewFds(before);
  });
});

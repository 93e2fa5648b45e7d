// Defects that crashed, corrupted data or hung programs, each pinned by a
// test that fails on the code before its fix (issue 7): memory safety at
// the FFI edge, transports that cannot hurt each other, sendfile under
// close, sockets of calls in flight at loop.close(), Unix server cleanup,
// connectionMade errors and protocol factories.
import assert from "node:assert/strict";
import { existsSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  AF_UNIX,
  type BaseTransport,
  ConnectionError,
  connectRemoteCallback,
  DatagramProtocol,
  type ExceptionContext,
  os,
  Protocol,
  RuntimeError,
  Socket,
  socketpair,
  type Transport,
  waitFor,
} from "../mod.ts";
import { assertNoNewFds, newLoop, openFds, runLoop } from "./helpers.ts";
import {
  assertRejects,
  dec,
  enc,
  runBriefly,
  runNet,
  serverPort,
  stalledListener,
  tmpSockPath,
} from "./net_helpers.ts";

/** A pair of connected stream sockets with data pending on `b`. */
function pendingPair(bytes = 64): [Socket, Socket] {
  const [a, b] = socketpair();
  assert.equal(a.send(new Uint8Array(bytes).fill(7)), bytes);
  return [a, b];
}

describe("FFI edge: lengths, counts and fds are checked before C", () => {
  it("recvInto(buf, -1) on a short view is a RangeError, not heap corruption", () => {
    const [a, b] = pendingPair(4096);
    try {
      const small = new Uint8Array(16);
      assert.throws(() => b.recvInto(small, -1), RangeError);
      assert.throws(() => b.recvInto(small, NaN), RangeError);
      assert.throws(() => b.recvInto(small, 1.5), RangeError);
      assert.throws(() => b.recvInto(small, 17), /larger than the buffer/);
      assert.throws(() => b.recvInto(small, 2 ** 32 + 1), RangeError);
      assert.throws(() => b.recvfromInto(small, -1), RangeError);
      assert.throws(() => b.recvfromInto(small, NaN), RangeError);
      // The data is still there, intact.
      assert.equal(b.recvInto(small), 16);
      assert.deepEqual([...small], new Array(16).fill(7));
    } finally {
      a.close();
      b.close();
    }
  });

  it("lengths are bytes, not elements (Float64Array, ArrayBuffer, DataView)", () => {
    const [a, b] = socketpair();
    try {
      assert.equal(a.send(new Float64Array(2)), 16);
      assert.equal(a.send(new ArrayBuffer(16)), 16);
      assert.equal(a.send(new DataView(new ArrayBuffer(8))), 8);
      const into = new Uint16Array(32);
      assert.equal(b.recvInto(into), 40);
      assert.equal(b.recvInto(new Uint8Array(8)), null);
    } finally {
      a.close();
      b.close();
    }
  });

  it("a detached buffer is a TypeError, not an empty read that looks like EOF", () => {
    const [a, b] = pendingPair();
    try {
      const buf = new ArrayBuffer(16);
      const view = new Uint8Array(buf);
      structuredClone(buf, { transfer: [buf] });
      assert.throws(() => b.recvInto(view), TypeError);
      assert.throws(() => a.send(view), TypeError);
      assert.throws(() => a.send(buf), TypeError);
    } finally {
      a.close();
      b.close();
    }
  });

  it("addReader(2 ** 32 + fd) is a RangeError and the loop keeps serving", async () => {
    const [r, w] = os.pipe();
    try {
      const loop = newLoop();
      await runLoop(async () => {
        for (const bad of [2 ** 32 + r, 2 ** 31, -1, 1.5, NaN]) {
          assert.throws(() => loop.addReader(bad, () => {}), RangeError);
          assert.throws(() => loop.addWriter(bad, () => {}), RangeError);
        }
        const seen = loop.createFuture<number>();
        loop.addReader(r, () => {
          loop.removeReader(r);
          seen.setResult(os.read(r)!.length);
        });
        os.write(w, "abc");
        assert.equal(await waitFor(seen, 2000), 3);
      }, loop);
    } finally {
      os.close(r);
      os.close(w);
    }
  });
});

/** What hostile values do to one call: the error's class name, or "ok". */
function outcome(fn: () => unknown): string {
  try {
    const r = fn();
    if (r instanceof Promise) r.catch(() => {});
    return "ok";
  } catch (e) {
    return (e as Error).constructor.name;
  }
}

const HOSTILE: [string, unknown][] = [
  ["negative", -1],
  ["NaN", NaN],
  ["fractional", 1.5],
  ["2**31", 2 ** 31],
  ["2**32 + 3", 2 ** 32 + 3],
  ["huge", 2 ** 60],
  ["Infinity", Infinity],
  ["string", "3"],
  ["bigint", 3n],
  ["null", null],
  ["object", {}],
];

describe("hostile values at every FFI-facing method", () => {
  it("Socket methods: TypeError or RangeError, never a crash", () => {
    const [a, b] = pendingPair();
    const buf = new Uint8Array(8);
    const detachedBuf = new ArrayBuffer(8);
    const detachedView = new Uint8Array(detachedBuf);
    structuredClone(detachedBuf, { transfer: [detachedBuf] });
    const file = join(tmpdir(), `aioloop-hostile-${process.pid}.bin`);
    writeFileSync(file, "0123456789");
    const f = os.open(file);
    // Each call, and the hostile labels that are valid values for it.
    const offsets = ["2**31", "2**32 + 3"];
    const calls: [string, (v: unknown) => unknown, string[]?][] = [
      ["recvInto(buf, v)", (v) => b.recvInto(buf, v as number)],
      ["recvfromInto(buf, v)", (v) => b.recvfromInto(buf, v as number)],
      ["recv(v)", (v) => b.recv(v as number)],
      ["listen(v)", (v) => a.listen(v as number)],
      ["shutdown(v)", (v) => a.shutdown(v as number)],
      ["setsockopt(v, 1, 1)", (v) => a.setsockopt(v as number, 1, 1)],
      ["setsockopt(1, v, 1)", (v) => a.setsockopt(1, v as number, 1)],
      ["setsockopt(1, 1, v)", (v) => a.setsockopt(1, 1, v as number)],
      ["getsockopt(v, 1)", (v) => a.getsockopt(v as number, 1)],
      ["getsockopt(1, 1, v)", (v) => a.getsockopt(1, 1, v as number)],
      ["sendfile(v, 0, 1)", (v) => a.sendfile(v as number, 0, 1)],
      ["sendfile(0, v, 1)", (v) => a.sendfile(0, v as number, 1)],
      ["sendfile(0, 0, v)", (v) => a.sendfile(0, 0, v as number)],
      [
        "new Socket(AF_UNIX, 1, 0, v)",
        (v) => new Socket(AF_UNIX, 1, 0, v as number),
      ],
      ["socketpair(v)", (v) => socketpair(v as number)],
      ["os.read(v)", (v) => os.read(v as number)],
      ["os.read(fd, v)", (v) => os.read(f, v as number)],
      ["os.write(v, x)", (v) => os.write(v as number, "x")],
      ["os.close(v)", (v) => os.close(v as number)],
      ["os.pread(fd, buf, v)", (v) => os.pread(f, buf, v as number), offsets],
      ["os.seek(fd, v)", (v) => os.seek(f, v as number), offsets],
    ];
    const wrong: string[] = [];
    try {
      for (const [name, call, valid = []] of calls) {
        for (const [label, value] of HOSTILE) {
          if (valid.includes(label)) continue;
          // Some hostile values are valid for some arguments (a negative
          // backlog means 0, -1 is a valid level); those must succeed or
          // fail with an OSError, never reach C unchecked.
          const got = outcome(() => call(value));
          if (!["TypeError", "RangeError", "OSError", "ok"].includes(got)) {
            wrong.push(`${name} with ${label}: ${got}`);
          }
          if (
            got === "ok" && typeof value === "number" &&
            (!Number.isInteger(value) || Math.abs(value) >= 2 ** 31)
          ) {
            wrong.push(`${name} with ${label}: accepted`);
          }
        }
      }
      for (
        const data of [
          "text",
          42,
          null,
          [1, 2],
          detachedBuf,
          detachedView,
        ]
      ) {
        assert.throws(() => a.send(data as Uint8Array), TypeError);
        assert.throws(() => b.recvInto(data as Uint8Array), TypeError);
        assert.throws(() => a.sendto(data as Uint8Array, null), TypeError);
      }
      assert.deepEqual(wrong, []);
      // Still a working pair.
      assert.equal(b.recvInto(new Uint8Array(64)), 64);
    } finally {
      a.close();
      b.close();
      os.close(f);
      unlinkSync(file);
    }
  });

  it("loop methods: typed errors for hostile values, and the loop still serves", async () => {
    const loop = newLoop();
    const [sa, sb] = socketpair();
    try {
      await runLoop(async () => {
        const wrong: string[] = [];
        const buf = new Uint8Array(8);
        const syncCalls: [string, (v: unknown) => unknown][] = [
          ["addReader(v)", (v) => loop.addReader(v as number, () => {})],
          ["addWriter(v)", (v) => loop.addWriter(v as number, () => {})],
          ["removeReader(v)", (v) => loop.removeReader(v as number)],
          ["removeWriter(v)", (v) => loop.removeWriter(v as number)],
        ];
        for (const [name, call] of syncCalls) {
          for (const [label, value] of HOSTILE) {
            const got = outcome(() => call(value));
            if (got !== "TypeError" && got !== "RangeError") {
              wrong.push(`${name} with ${label}: ${got}`);
            }
          }
        }
        // Each call, and the hostile labels that are valid values for it
        // (a file offset may be 2**31; a port may be the string "3").
        const asyncCalls: [
          string,
          (v: unknown) => PromiseLike<unknown>,
          string[]?,
        ][] = [
          ["sockRecv(sock, v)", (v) => loop.sockRecv(sb, v as number)],
          ["sockRecvfrom(sock, v)", (v) => loop.sockRecvfrom(sb, v as number)],
          [
            "sockRecvfromInto(sock, buf, v)",
            (v) => loop.sockRecvfromInto(sb, buf, v as number),
          ],
          [
            "sockRecvInto(sock, v)",
            (v) => loop.sockRecvInto(sb, v as Uint8Array),
          ],
          [
            "sockSendall(sock, v)",
            (v) => loop.sockSendall(sa, v as Uint8Array),
          ],
          [
            "sockSendfile(sock, v)",
            (v) => loop.sockSendfile(sa, v as number, 0, null),
          ],
          [
            "sockSendfile(sock, fd, v)",
            (v) => loop.sockSendfile(sa, 0, v as number, null),
            ["2**31", "2**32 + 3"],
          ],
          [
            "createServer(h, v)",
            (v) =>
              loop.createServer(() => new Protocol(), "127.0.0.1", v as number),
            ["string"],
          ],
          [
            "createConnection(h, v)",
            (v) =>
              loop.createConnection(
                () => new Protocol(),
                "127.0.0.1",
                v as number,
              ),
            ["string"],
          ],
          [
            "createServer(v, 0)",
            (v) => loop.createServer(() => new Protocol(), v as string, 0),
            ["string"],
          ],
        ];
        for (const [name, call, valid = []] of asyncCalls) {
          for (const [label, value] of HOSTILE) {
            // null is a valid value for several of these (port null, ...).
            if (value === null || valid.includes(label)) continue;
            let got = "ok";
            try {
              await waitFor(call(value), 2000);
            } catch (e) {
              got = (e as Error).constructor.name;
            }
            if (!["TypeError", "RangeError"].includes(got)) {
              // sockRecv(sock, 3n) etc. must not hang or succeed.
              wrong.push(`${name} with ${label}: ${got}`);
            }
          }
        }
        assert.deepEqual(wrong, []);
        // The loop still serves: a real round trip on the same pair.
        await loop.sockSendall(sa, enc("still here"));
        assert.equal(dec(await loop.sockRecv(sb, 100)), "still here");
      }, loop);
    } finally {
      sa.close();
      sb.close();
    }
  });
});

describe("remote callback handles are checked before their fd is used", () => {
  it("connectRemoteCallback() with a forged handle: TypeError/RangeError, no write to a random fd", () => {
    const loop = newLoop();
    try {
      const handle = loop.createRemoteCallback(() => {});
      for (const wakeFd of [2 ** 32 + 1, -1, 1.5, "3"]) {
        assert.throws(
          () => connectRemoteCallback({ ...handle, wakeFd } as never),
          (e: unknown) => e instanceof RangeError || e instanceof TypeError,
        );
      }
      for (
        const forged of [null, {}, { ...handle, queue: new ArrayBuffer(64) }]
      ) {
        assert.throws(
          () => connectRemoteCallback(forged as never),
          TypeError,
        );
      }
    } finally {
      loop.close();
    }
  });
});

/** A protocol that records what it got. */
class Recorder extends Protocol {
  transport: Transport | null = null;
  lost: (Error | null)[] = [];
  received: Uint8Array[] = [];
  override connectionMade(t: BaseTransport): void {
    this.transport = t as Transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.received.push(data);
  }
  override connectionLost(exc: Error | null): void {
    this.lost.push(exc);
  }
}

describe("transports cannot hurt each other", () => {
  it("a late write()/abort() on a closed transport leaves the connection that reuses its fd alone", async () => {
    await runNet(async (loop) => {
      const served: Recorder[] = [];
      const server = await loop.createServer(
        () => {
          const p = new Recorder();
          served.push(p);
          // Not reading until told: the clients' writes stay buffered.
          return Object.assign(p, {
            connectionMade(t: BaseTransport) {
              p.transport = t as Transport;
              (t as Transport).pauseReading();
            },
          });
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);
      const big = new Uint8Array(8 * 1024 * 1024);
      const fdOf = (t: Transport) =>
        (t.getExtraInfo("socket") as Socket).fileno();
      const connect = () =>
        loop.createConnection(() => new Recorder(), "127.0.0.1", port);
      // Several connections close with 8 MiB buffered each, so that the
      // runtime taking one freed fd number meanwhile cannot spoil the test.
      const old: [Transport, Recorder][] = [];
      for (let i = 0; i < 4; i++) old.push(await connect());
      const oldFds = old.map(([t]) => fdOf(t));
      for (const [t] of old) {
        t.write(big);
        assert.ok(t.getWriteBufferSize() > 0, "8 MiB should not fit at once");
        t.close();
      }
      while (served.length < 4) await runBriefly(1);
      for (const peer of served) peer.transport!.resumeReading();
      while (old.some(([, p]) => p.lost.length === 0)) await runBriefly(1);
      // New connections get the freed fd numbers (the lowest free first).
      const fresh: [Transport, Recorder][] = [];
      for (let i = 0; i < 4; i++) fresh.push(await connect());
      const reused = fresh.filter(([t]) => oldFds.includes(fdOf(t)));
      assert.ok(
        reused.length > 0,
        `new connections reuse closed ones' fd numbers (${oldFds} vs ${
          fresh.map(([t]) => fdOf(t))
        })`,
      );
      for (const [t] of fresh) {
        t.write(big);
        assert.ok(t.getWriteBufferSize() > 0);
      }
      // The stale transports: dropped quietly, nothing to the new ones.
      for (const [t] of old) {
        t.write(enc("x"));
        t.abort();
      }
      while (served.length < 8) await runBriefly(1);
      for (const peer of served.slice(4)) peer.transport!.resumeReading();
      const deadline = performance.now() + 8000;
      while (
        fresh.some(([t]) => t.getWriteBufferSize() > 0) &&
        performance.now() < deadline
      ) {
        await runBriefly(1);
      }
      assert.deepEqual(
        fresh.map(([t]) => t.getWriteBufferSize()),
        [0, 0, 0, 0],
        "every new connection must drain",
      );
      for (const [t] of fresh) t.close();
      while (fresh.some(([, p]) => p.lost.length === 0)) await runBriefly(1);
      assert.deepEqual(old.map(([, p]) => p.lost), [[null], [null], [null], [
        null,
      ]]);
      server.close();
      await server.waitClosed();
    });
  });

  it("write() during loop.sendfile() raises for the whole call", async () => {
    const path = join(tmpdir(), `aioloop-sendfile-${process.pid}-w.bin`);
    writeFileSync(path, new Uint8Array(4 * 1024 * 1024).fill(1));
    const fd = os.open(path);
    try {
      await runNet(async (loop) => {
        const got: Uint8Array[] = [];
        let serverSide: Transport | null = null;
        const server = await loop.createServer(
          () =>
            Object.assign(new Recorder(), {
              connectionMade(t: BaseTransport) {
                serverSide = t as Transport;
              },
              dataReceived(d: Uint8Array) {
                got.push(d);
              },
            }),
          "127.0.0.1",
          0,
        );
        const [tr] = await loop.createConnection(
          () => new Recorder(),
          "127.0.0.1",
          serverPort(server),
        );
        const sending = loop.sendfile(tr, fd, 0, null);
        await runBriefly(2);
        assert.throws(() => tr.write(enc("in the middle")), RuntimeError);
        const sent = await sending;
        assert.equal(sent, 4 * 1024 * 1024);
        tr.write(enc("after"));
        tr.close();
        const deadline = performance.now() + 5000;
        let total = 0;
        while (performance.now() < deadline) {
          total = got.reduce((n, c) => n + c.length, 0);
          if (total >= sent + 5) break;
          await runBriefly(1);
        }
        assert.equal(total, sent + 5);
        const all = new Uint8Array(total);
        let at = 0;
        for (const c of got) {
          all.set(c, at);
          at += c.length;
        }
        assert.ok(all.subarray(0, sent).every((x) => x === 1));
        assert.equal(dec(all.subarray(sent)), "after");
        (serverSide as Transport | null)?.close();
        server.close();
        await server.waitClosed();
      });
    } finally {
      os.close(fd);
      unlinkSync(path);
    }
  });

  for (const how of ["close", "abort"] as const) {
    it(`transport.${how}() during sendfile() to a peer that never reads rejects it`, async () => {
      const path = join(tmpdir(), `aioloop-sendfile-${process.pid}-${how}.bin`);
      writeFileSync(path, new Uint8Array(16 * 1024 * 1024));
      const fd = os.open(path);
      try {
        await runNet(async (loop) => {
          const server = await loop.createServer(
            () =>
              Object.assign(new Recorder(), {
                connectionMade(t: BaseTransport) {
                  (t as Transport).pauseReading();
                },
              }),
            "127.0.0.1",
            0,
          );
          const [tr, proto] = await loop.createConnection(
            () => new Recorder(),
            "127.0.0.1",
            serverPort(server),
          );
          const sending = loop.sendfile(tr, fd, 0, null);
          // Until the socket is full and the sendfile waits.
          await runBriefly(5);
          tr[how]();
          await assertRejects(
            waitFor(sending, 3000),
            (e) => assert.ok(e instanceof ConnectionError, String(e)),
          );
          while (proto.lost.length === 0) await runBriefly(1);
          server.close();
          server.abortClients();
          await server.waitClosed();
        });
      } finally {
        os.close(fd);
        unlinkSync(path);
      }
    });
  }
});

describe("loop.close() and servers leave nothing behind", () => {
  it("loop.close() closes the socket of a createConnection still in SYN_SENT", async () => {
    const before = openFds();
    const holder = newLoop();
    let stalled: { address: [string, number]; close(): void } | null = null;
    await runLoop(async () => {
      stalled = await stalledListener(holder);
    }, holder);
    try {
      for (let i = 0; i < 5; i++) {
        const loop = newLoop();
        const connecting = loop.createConnection(
          () => new Protocol(),
          stalled!.address[0],
          stalled!.address[1],
        );
        connecting.then(undefined, () => {});
        await loop.runUntilComplete(async () => {
          await new Promise((r) => setTimeout(r, 20));
        });
        loop.close();
      }
    } finally {
      (stalled as { close(): void } | null)?.close();
    }
    await assertNoNewFds(before);
  });

  it("createUnixServer({ sock }) removes the socket's path at close (CPython 3.13)", async () => {
    const path = tmpSockPath("given");
    await runNet(async (loop) => {
      const sock = new Socket(AF_UNIX);
      sock.bind(path);
      const server = await loop.createUnixServer(() => new Protocol(), null, {
        sock,
      });
      assert.ok(existsSync(path));
      server.close();
      await server.waitClosed();
      assert.equal(existsSync(path), false);
    });
  });

  it("createUnixServer({ sock, cleanupSocket: false }) leaves the path", async () => {
    const path = tmpSockPath("kept");
    try {
      await runNet(async (loop) => {
        const sock = new Socket(AF_UNIX);
        sock.bind(path);
        const server = await loop.createUnixServer(
          () => new Protocol(),
          null,
          { sock, cleanupSocket: false },
        );
        server.close();
        await server.waitClosed();
        assert.ok(existsSync(path));
      });
    } finally {
      unlinkSync(path);
    }
  });
});

describe("the datagram transport's internals stay inside", () => {
  it("exception contexts and fd-ownership errors name the SocketDatagramTransport users hold", async () => {
    const loop = newLoop();
    const handled: ExceptionContext[] = [];
    loop.setExceptionHandler((_l, ctx) => handled.push(ctx));
    await runLoop(async () => {
      class Throws extends DatagramProtocol {
        override datagramReceived(): void {
          throw new Error("boom in datagramReceived");
        }
      }
      const [tr] = await loop.createDatagramEndpoint(() => new Throws(), {
        localAddr: ["127.0.0.1", 0],
      });
      const sock = tr.getExtraInfo("socket") as Socket;
      assert.throws(
        () => loop.addReader(sock.fileno(), () => {}),
        (e: unknown) =>
          e instanceof RuntimeError &&
          /SocketDatagramTransport/.test(e.message) &&
          !/DatagramCore/.test(e.message),
      );
      assert.doesNotMatch(String(tr), /DatagramCore/);
      const [peer] = await loop.createDatagramEndpoint(
        () => new DatagramProtocol(),
        { remoteAddr: sock.getsockname() },
      );
      peer.sendto(enc("hi"));
      while (handled.length === 0) await runBriefly(1);
      assert.equal(handled[0].transport, tr);
      peer.close();
      await runBriefly(2);
    }, loop);
  });
});

describe("protocol errors at setup", () => {
  it("connectionMade() that throws: reported, createConnection resolves, close() gives connectionLost(null)", async () => {
    const loop = newLoop();
    const handled: ExceptionContext[] = [];
    loop.setExceptionHandler((_l, ctx) => handled.push(ctx));
    await runLoop(async () => {
      const server = await loop.createServer(
        () => new Protocol(),
        "127.0.0.1",
        0,
      );
      class Broken extends Recorder {
        override connectionMade(t: BaseTransport): void {
          super.connectionMade(t);
          throw new Error("boom in connectionMade");
        }
      }
      const [tr, proto] = await loop.createConnection(
        () => new Broken(),
        "127.0.0.1",
        serverPort(server),
      );
      assert.equal(handled.length, 1);
      assert.match(String(handled[0].exception), /boom in connectionMade/);
      assert.equal(handled[0].transport, tr);
      assert.equal(tr.isClosing(), false);
      tr.close();
      while (proto.lost.length === 0) await runBriefly(1);
      assert.deepEqual(proto.lost, [null]);
      server.close();
      await server.waitClosed();
    }, loop);
  });

  it("a protocol factory that returns a non-protocol is a TypeError that says so", async () => {
    await runNet(async (loop) => {
      const server = await loop.createServer(
        () => new Protocol(),
        "127.0.0.1",
        0,
      );
      for (const made of [null, 42, {}, { connectionMade() {} }]) {
        await assertRejects(
          loop.createConnection(
            () => made as unknown as Protocol,
            "127.0.0.1",
            serverPort(server),
          ),
          (e) => {
            assert.ok(e instanceof TypeError, String(e));
            assert.match(String(e), /protocolFactory\(\) must return/);
          },
        );
      }
      await assertRejects(
        loop.createDatagramEndpoint(() => new Protocol() as never, {
          localAddr: ["127.0.0.1", 0],
        }),
        (e) => assert.match(String(e), /DatagramProtocol/),
      );
      server.close();
      await server.waitClosed();
    });
  });

  it("createServer(123, 0) is a TypeError naming host", async () => {
    await runNet(async (loop) => {
      await assertRejects(
        loop.createServer(() => new Protocol(), 123 as unknown as string, 0),
        (e) => {
          assert.ok(e instanceof TypeError);
          assert.match(String(e), /host must be/);
        },
      );
    });
  });
});

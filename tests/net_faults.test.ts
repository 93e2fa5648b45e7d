// Networking faults: refused, in-use, unreachable and unresolvable
// addresses; a peer that vanishes mid-write; half-closed connections; a
// reader that stops reading while the peer floods; a server closed with live
// clients; thousands of connections opened and closed against one server;
// partial writes through a tiny send buffer.
//
// Loopback and unix paths under os.tmpdir() only; every port is 0. Each test
// runs on its own loop with a deadline, fails on anything that reaches the
// loop's exception handler (asyncio reports none of these faults there), and
// checks that no fd outlives the loop. Protocols record every callback and
// flag any that comes after connectionLost() (or data after close()).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { assertNoNewFds, openFds } from "./helpers.ts";
import { assertRejects, runBriefly, runNet } from "./net_helpers.ts";
import { abstractName, inet, serverPort, tmpSockPath } from "./net_helpers.ts";
import {
  assertSameBytes,
  concat,
  dec,
  enc,
  NO_IPV6,
  pattern,
} from "./net_helpers.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AI_NUMERICHOST,
  type BaseTransport,
  BrokenPipeError,
  ConnectionRefusedError,
  ConnectionResetError,
  type Future,
  GaiError,
  type InetAddress,
  openConnection,
  openUnixConnection,
  OSError,
  Protocol,
  type SelectorEventLoop,
  type Server,
  sleep,
  SO_RCVBUF,
  SO_SNDBUF,
  Socket,
  SOL_SOCKET,
  startServer,
  startUnixServer,
  type StreamReader,
  type StreamWriter,
  type Transport,
} from "../mod.ts";

// ---------------------------------------------------------------------------
// Bytes and addresses.

/** An OSError with `code`, `syscall`, and every `parts` in its message. */
function isOSError(
  code: string,
  syscall: string,
  parts: string[],
  cls: abstract new (...args: never[]) => Error = OSError,
): (e: unknown) => void {
  return (e) => {
    assert.ok(e instanceof OSError, `not an OSError: ${String(e)}`);
    assert.ok(e instanceof cls, `not a ${cls.name}: ${String(e)}`);
    assert.equal(e.code, code, String(e));
    assert.equal(e.syscall, syscall, String(e));
    assert.equal(typeof e.errno, "number");
    for (const part of parts) {
      assert.ok(
        e.message.includes(part),
        `"${part}" is not in the message: ${e.message}`,
      );
    }
  };
}

/** The connection errors a vanished peer may cause (or a plain EOF). */
function isPeerGone(exc: unknown): boolean {
  if (exc === null) return true;
  return exc instanceof ConnectionResetError ||
    exc instanceof BrokenPipeError ||
    (exc instanceof OSError &&
      ["ECONNRESET", "EPIPE", "ECONNABORTED", "ENOTCONN"].includes(exc.code));
}

/**
 * A small TCP send buffer. Below ~36 KiB Linux's loopback TCP crawls at
 * ~2 MB/s (each send waits for an ACK), so 64 KiB: still far below the
 * megabytes the tests push, so writes are partial all the time.
 */
const SMALL_SNDBUF = 64 * 1024;

/** Lets in-flight I/O settle: loop iterations, a short wait, iterations. */
async function settle(): Promise<void> {
  await runBriefly(20);
  await sleep(50);
  await runBriefly(20);
}

/** Waits, a loop iteration at a time, until `cond()` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(1);
}

// ---------------------------------------------------------------------------
// The harness.

// ---------------------------------------------------------------------------
// A protocol that records its callbacks and flags out-of-order ones.

class Rec extends Protocol {
  transport: Transport | null = null;
  readonly calls: string[] = [];
  readonly problems: string[] = [];
  readonly chunks: Uint8Array[] = [];
  nbytes = 0;
  /** Keep received chunks (off for floods). */
  keepChunks = true;
  /** What eofReceived() returns. */
  keepOpenOnEof = false;
  /** close() or abort() was called by the test. */
  closedByUs = false;
  readonly made: Future<void>;
  readonly eof: Future<void>;
  readonly done: Future<Error | null>;
  private waiters: [number, Future<void>][] = [];

  constructor(readonly loop: SelectorEventLoop) {
    super();
    this.made = loop.createFuture<void>();
    this.eof = loop.createFuture<void>();
    this.done = loop.createFuture<Error | null>();
  }

  protected enter(name: string): void {
    this.calls.push(name);
    if (this.done.done()) this.problems.push(`${name} after connectionLost`);
    if (!this.made.done() && name !== "connectionMade") {
      this.problems.push(`${name} before connectionMade`);
    }
  }

  override connectionMade(transport: BaseTransport): void {
    this.enter("connectionMade");
    if (this.transport !== null) this.problems.push("connectionMade twice");
    this.transport = transport as Transport;
    this.made.setResult();
  }

  override dataReceived(data: Uint8Array): void {
    this.enter("dataReceived");
    if (this.closedByUs) this.problems.push("dataReceived after close()");
    if (this.eof.done()) this.problems.push("dataReceived after EOF");
    if (this.keepChunks) this.chunks.push(data.slice());
    this.nbytes += data.length;
    this.waiters = this.waiters.filter(([n, fut]) => {
      if (this.nbytes < n) return true;
      if (!fut.done()) fut.setResult();
      return false;
    });
  }

  override eofReceived(): boolean {
    this.enter("eofReceived");
    if (this.closedByUs) this.problems.push("eofReceived after close()");
    if (this.eof.done()) this.problems.push("eofReceived twice");
    else this.eof.setResult();
    return this.keepOpenOnEof;
  }

  override pauseWriting(): void {
    this.enter("pauseWriting");
  }

  override resumeWriting(): void {
    this.enter("resumeWriting");
  }

  override connectionLost(exc: Error | null): void {
    this.enter("connectionLost");
    if (this.done.done()) this.problems.push("connectionLost twice");
    else this.done.setResult(exc);
  }

  /** Closes the transport (and remembers that we did). */
  close(): void {
    this.closedByUs = true;
    this.transport!.close();
  }

  /** Aborts the transport (and remembers that we did). */
  abort(): void {
    this.closedByUs = true;
    this.transport!.abort();
  }

  /** Resolves once at least `n` bytes have arrived. */
  waitBytes(n: number): Future<void> {
    const fut = this.loop.createFuture<void>();
    if (this.nbytes >= n) fut.setResult();
    else this.waiters.push([n, fut]);
    return fut;
  }

  data(): Uint8Array {
    return concat(this.chunks);
  }
}

/** Echoes what it receives. */
class EchoRec extends Rec {
  override dataReceived(data: Uint8Array): void {
    super.dataReceived(data);
    this.transport!.write(data);
  }
}

/** Hands out the server-side protocols in connection order. */
class Accepted<P extends Rec> {
  readonly protos: P[] = [];
  private ready: P[] = [];
  private waiting: Future<P>[] = [];

  constructor(
    readonly loop: SelectorEventLoop,
    readonly make: (index: number) => P,
  ) {}

  readonly factory = (): P => {
    const proto = this.make(this.protos.length);
    this.protos.push(proto);
    proto.made.addDoneCallback(() => {
      const waiter = this.waiting.shift();
      if (waiter) waiter.setResult(proto);
      else this.ready.push(proto);
    });
    return proto;
  };

  /** The next connected server-side protocol. */
  next(): Future<P> {
    const fut = this.loop.createFuture<P>();
    const proto = this.ready.shift();
    if (proto) fut.setResult(proto);
    else this.waiting.push(fut);
    return fut;
  }
}

function problemsOf(protos: Rec[]): string[] {
  return protos.flatMap((p, i) => p.problems.map((x) => `#${i}: ${x}`));
}

/** A TCP socket bound to 127.0.0.1 (or ::1) but not listening: refuses. */
function boundNotListening(host = "127.0.0.1"): [Socket, number] {
  const sock = new Socket(host.includes(":") ? AF_INET6 : AF_INET);
  sock.bind([host, 0]);
  return [sock, inet(sock.getsockname())[1]];
}

// ---------------------------------------------------------------------------

describe("addresses that fail", () => {
  it("connection refused (TCP): ConnectionRefusedError, ECONNREFUSED, syscall connect, host and port in the message", () =>
    runNet(async (loop) => {
      const [idle, port] = boundNotListening();
      try {
        const check = isOSError(
          "ECONNREFUSED",
          "connect",
          ["127.0.0.1", String(port)],
          ConnectionRefusedError,
        );
        await assertRejects(openConnection("127.0.0.1", port), check);
        await assertRejects(
          loop.createConnection(() => new Rec(loop), "127.0.0.1", port),
          check,
        );
        await assertRejects(async () => {
          const sock = new Socket(AF_INET);
          try {
            await loop.sockConnect(sock, ["127.0.0.1", port]);
          } finally {
            sock.close();
          }
        }, check);
      } finally {
        idle.close();
      }
    }));

  it("connection refused (IPv6 ::1): the address in the message", {
    skip: NO_IPV6,
  }, () =>
    runNet(async () => {
      const [idle, port] = boundNotListening("::1");
      try {
        await assertRejects(
          openConnection("::1", port),
          isOSError(
            "ECONNREFUSED",
            "connect",
            ["::1", String(port)],
            ConnectionRefusedError,
          ),
        );
      } finally {
        idle.close();
      }
    }));

  it("unix: no such path is ENOENT, a path nobody listens on is ECONNREFUSED; the path is in the message", () =>
    runNet(async (loop) => {
      const missing = tmpSockPath("faults");
      await assertRejects(
        openUnixConnection(missing),
        isOSError("ENOENT", "connect", [missing]),
      );
      await assertRejects(
        loop.createUnixConnection(() => new Rec(loop), missing),
        isOSError("ENOENT", "connect", [missing]),
      );
      const path = tmpSockPath("faults");
      const idle = new Socket(AF_UNIX);
      try {
        idle.bind(path);
        await assertRejects(
          openUnixConnection(path),
          isOSError("ECONNREFUSED", "connect", [path], ConnectionRefusedError),
        );
      } finally {
        idle.close();
        rmSync(path, { force: true });
      }
    }));

  it("address in use (TCP): OSError EADDRINUSE, syscall bind, host and port in the message", () =>
    runNet(async (loop) => {
      const first = await loop.createServer(
        () => new Rec(loop),
        "127.0.0.1",
        0,
      );
      const port = serverPort(first);
      const check = isOSError("EADDRINUSE", "bind", [
        "127.0.0.1",
        String(port),
      ]);
      await assertRejects(
        loop.createServer(() => new Rec(loop), "127.0.0.1", port),
        check,
      );
      await assertRejects(
        startServer(() => {}, "127.0.0.1", port),
        check,
      );
      // The failed attempts left the first server alone.
      assert.equal(first.isServing(), true);
      const [, writer] = await openConnection("127.0.0.1", port);
      writer.close();
      await writer.waitClosed();
      first.close();
      await first.waitClosed();
    }));

  it("address in use (abstract unix name): OSError EADDRINUSE, syscall bind, the name in the message", () =>
    runNet(async () => {
      const name = abstractName("faults");
      const first = await startUnixServer((_r, w) => w.close(), name);
      await assertRejects(
        startUnixServer(() => {}, name),
        isOSError("EADDRINUSE", "bind", [name.slice(1)]),
      );
      const [reader, writer] = await openUnixConnection(name);
      assert.equal((await reader.read()).length, 0);
      writer.close();
      await writer.waitClosed();
      first.close();
      await first.waitClosed();
    }));

  it("unreachable network (224.0.0.1, refused by the kernel, no packet sent): ENETUNREACH, syscall connect, the address in the message", () =>
    runNet(async (loop) => {
      const check = isOSError("ENETUNREACH", "connect", ["224.0.0.1", "9"]);
      await assertRejects(openConnection("224.0.0.1", 9), check);
      await assertRejects(
        loop.createConnection(() => new Rec(loop), "224.0.0.1", 9),
        check,
      );
    }));

  it("unresolvable name (numeric-only lookup, no DNS traffic): GaiError EAI_NONAME, syscall getaddrinfo, the name in the message", () =>
    runNet(async (loop) => {
      const host = "no-such-host.invalid";
      const check = (e: unknown) => {
        assert.ok(e instanceof GaiError, `not a GaiError: ${String(e)}`);
        isOSError("EAI_NONAME", "getaddrinfo", [host])(e);
      };
      await assertRejects(
        openConnection(host, 80, { flags: AI_NUMERICHOST }),
        check,
      );
      await assertRejects(
        loop.createConnection(() => new Rec(loop), host, 80, {
          flags: AI_NUMERICHOST,
        }),
        check,
      );
      await assertRejects(
        startServer(() => {}, host, 0, { flags: AI_NUMERICHOST }),
        check,
      );
    }));
});

describe("peers that misbehave", () => {
  it("a peer that vanishes mid-write: connectionLost(error or null), nothing reported, the server keeps serving", () =>
    runNet(async (loop) => {
      const FLOOD = 8 << 20;
      const accepted = new Accepted(loop, (i) => {
        if (i > 0) return new EchoRec(loop);
        const p = new Rec(loop);
        p.keepChunks = false;
        p.made.addDoneCallback(() => p.transport!.write(pattern(FLOOD)));
        return p;
      });
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = serverPort(server);

      class AbortOnData extends Rec {
        override dataReceived(data: Uint8Array): void {
          super.dataReceived(data);
          if (!this.closedByUs) this.abort();
        }
      }
      const [, vanishing] = await loop.createConnection(
        () => new AbortOnData(loop),
        "127.0.0.1",
        port,
      );
      const flooder = await accepted.next();
      assert.equal(await vanishing.done, null);
      const exc = await flooder.done;
      assert.ok(isPeerGone(exc), `connectionLost(${String(exc)})`);
      assert.ok(flooder.transport!.isClosing());
      assert.equal(flooder.transport!.getWriteBufferSize(), 0);
      // Writing to the lost connection is ignored, not thrown.
      flooder.transport!.write(enc("late"));
      assert.ok(vanishing.nbytes < FLOOD, `${vanishing.nbytes} bytes arrived`);

      // Another client is served as usual.
      const [tr, pr] = await loop.createConnection(
        () => new Rec(loop),
        "127.0.0.1",
        port,
      );
      tr.write(enc("still there?"));
      await pr.waitBytes(12);
      assert.equal(dec(pr.data()), "still there?");
      pr.close();
      assert.equal(await pr.done, null);
      server.close();
      await server.waitClosed();
      assert.deepEqual(
        problemsOf([...accepted.protos, vanishing, pr]),
        [],
      );
    }));

  it("streams: a peer that vanishes while the handler writes and drains: drain() throws a connection error; the next client is served", () =>
    runNet(async (loop) => {
      const handlerErrors: unknown[] = [];
      const firstDone = loop.createFuture<void>();
      let n = 0;
      const server = await startServer(
        async (r, w) => {
          if (n++ === 0) {
            try {
              const block = pattern(64 * 1024);
              for (let i = 0; i < 4096; i++) {
                w.write(block);
                await w.drain();
              }
            } catch (e) {
              handlerErrors.push(e);
            } finally {
              w.close();
              firstDone.setResult();
            }
            return;
          }
          w.write(await r.readline());
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);

      const [reader, writer] = await openConnection("127.0.0.1", port);
      await reader.readexactly(1000);
      writer.transport.abort();
      await firstDone;
      assert.equal(handlerErrors.length, 1, "drain() never failed");
      assert.ok(
        isPeerGone(handlerErrors[0]) && handlerErrors[0] !== null,
        `got ${String(handlerErrors[0])}`,
      );

      const [r2, w2] = await openConnection("127.0.0.1", port);
      w2.write(enc("next\n"));
      assert.equal(dec(await r2.readline()), "next\n");
      w2.close();
      await w2.waitClosed();
      server.close();
      await server.waitClosed();
    }));

  it("a half-closed connection: the client's writeEof reaches eofReceived(); the server still writes back 1 MiB", () =>
    runNet(async (loop) => {
      const REPLY = pattern(1 << 20, 7);
      class HalfServer extends Rec {
        override eofReceived(): boolean {
          super.eofReceived();
          // The read side is done; the write side stays open: answer later.
          this.loop.callSoon(() => {
            const t = this.transport!;
            if (t.isClosing()) this.problems.push("closed after EOF");
            t.write(enc(`${dec(this.data())}:`));
            t.write(REPLY);
            this.close();
          });
          return true;
        }
      }
      const accepted = new Accepted(loop, () => new HalfServer(loop));
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const [tr, pr] = await loop.createConnection(
        () => new Rec(loop),
        "127.0.0.1",
        serverPort(server),
      );
      const sp = await accepted.next();
      assert.equal(tr.canWriteEof(), true);
      tr.write(enc("request"));
      tr.writeEof();
      assert.equal(tr.isClosing(), false);
      await sp.eof;
      assert.equal(await pr.done, null);
      assert.equal(await sp.done, null);
      const got = pr.data();
      assert.equal(dec(got.subarray(0, 8)), "request:");
      assertSameBytes(got.subarray(8), REPLY);
      assert.deepEqual(
        sp.calls.filter((c) => c !== "dataReceived"),
        ["connectionMade", "eofReceived", "connectionLost"],
      );
      assert.deepEqual(
        pr.calls.filter((c) => c !== "dataReceived"),
        ["connectionMade", "eofReceived", "connectionLost"],
      );
      server.close();
      await server.waitClosed();
      assert.deepEqual(problemsOf([sp, pr]), []);
    }));

  it("a reader that stops reading while the peer floods: the sender gets pauseWriting and its buffer stays under the water marks", () =>
    runNet(async (loop) => {
      const TOTAL = 4 << 20;
      const CHUNK = 64 * 1024;
      const payload = pattern(TOTAL, 8);

      class Flooder extends Rec {
        paused = false;
        sent = 0;
        maxBuffer = 0;
        readonly firstPause = this.loop.createFuture<void>();
        override connectionMade(transport: BaseTransport): void {
          super.connectionMade(transport);
          // Small kernel buffers: the transport's buffer does the holding.
          (transport.getExtraInfo("socket") as Socket).setsockopt(
            SOL_SOCKET,
            SO_SNDBUF,
            SMALL_SNDBUF,
          );
          this.pump();
        }
        pump(): void {
          const t = this.transport!;
          while (!this.paused && this.sent < TOTAL && !t.isClosing()) {
            t.write(payload.subarray(this.sent, this.sent + CHUNK));
            this.sent += CHUNK;
            this.maxBuffer = Math.max(this.maxBuffer, t.getWriteBufferSize());
          }
        }
        override pauseWriting(): void {
          super.pauseWriting();
          this.paused = true;
          if (!this.firstPause.done()) this.firstPause.setResult();
        }
        override resumeWriting(): void {
          super.resumeWriting();
          this.paused = false;
          this.loop.callSoon(() => this.pump());
        }
      }
      class Stalled extends Rec {
        override connectionMade(transport: BaseTransport): void {
          super.connectionMade(transport);
          this.transport!.pauseReading();
        }
      }
      const accepted = new Accepted(loop, () => new Flooder(loop));
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const sock = new Socket(AF_INET);
      sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);
      try {
        await loop.sockConnect(sock, ["127.0.0.1", serverPort(server)]);
      } catch (error) {
        sock.close();
        throw error;
      }
      const [tr, pr] = await loop.createConnection(
        () => new Stalled(loop),
        undefined,
        undefined,
        { sock },
      );
      const sp = await accepted.next();
      const st = sp.transport!;
      const [low, high] = st.getWriteBufferLimits();
      assert.deepEqual([low, high], [16 * 1024, 64 * 1024]);
      assert.equal(tr.isReading(), false);

      await sp.firstPause;
      // Let the kernel buffers fill up, then nothing moves any more.
      await settle();
      const sentAtStall = sp.sent;
      const bufferAtStall = st.getWriteBufferSize();
      assert.ok(sentAtStall < TOTAL, "the whole flood went out unread");
      await settle();
      assert.equal(sp.paused, true);
      assert.equal(sp.sent, sentAtStall, "the sender went on while paused");
      assert.equal(pr.nbytes, 0);
      assert.equal(st.getWriteBufferSize(), bufferAtStall);
      assert.ok(
        bufferAtStall > low && bufferAtStall <= high + CHUNK,
        `buffer ${bufferAtStall}`,
      );

      // Reading again: the flood completes through pause/resume cycles,
      // the buffer never above high + one chunk, every byte in order.
      tr.resumeReading();
      await pr.waitBytes(TOTAL);
      assert.equal(pr.nbytes, TOTAL);
      assertSameBytes(pr.data(), payload);
      assert.ok(sp.maxBuffer <= high + CHUNK, `max buffer ${sp.maxBuffer}`);
      const pauses = sp.calls.filter((c) => c === "pauseWriting").length;
      const resumes = sp.calls.filter((c) => c === "resumeWriting").length;
      assert.ok(pauses >= 2 && resumes >= 2, `${pauses} / ${resumes}`);
      assert.ok(resumes === pauses || resumes === pauses - 1);
      await until(() => st.getWriteBufferSize() === 0);
      pr.close();
      await pr.done;
      await sp.done;
      server.close();
      await server.waitClosed();
      assert.deepEqual(problemsOf([sp, pr]), []);
    }, { timeout: 15000 }));

  it("streams: a server that never reads while the client floods with write + drain: drain blocks, the buffers stay bounded, then all of it arrives", () =>
    runNet(async (loop) => {
      const LIMIT = 64 * 1024;
      const CHUNK = 64 * 1024;
      const CAP = 64 << 20;
      const payload = pattern(CAP + CHUNK, 9);
      const release = loop.createFuture<void>();
      const serverSide = loop.createFuture<[StreamReader, StreamWriter]>();
      const received = loop.createFuture<Uint8Array>();
      // Small kernel buffers on both sides: the stream buffers do the holding.
      const listening = new Socket(AF_INET);
      listening.setsockopt(SOL_SOCKET, SO_RCVBUF, 4096);
      listening.bind(["127.0.0.1", 0]);
      const server = await startServer(
        async (r, w) => {
          serverSide.setResult([r, w]);
          await release;
          received.setResult(await r.read());
          w.close();
        },
        undefined,
        undefined,
        { sock: listening, limit: LIMIT },
      );
      const [, writer] = await openConnection("127.0.0.1", serverPort(server));
      (writer.getExtraInfo("socket") as Socket).setsockopt(
        SOL_SOCKET,
        SO_SNDBUF,
        SMALL_SNDBUF,
      );
      const [low, high] = writer.transport.getWriteBufferLimits();
      assert.deepEqual([low, high], [16 * 1024, 64 * 1024]);

      let sent = 0;
      let maxBuffer = 0;
      let stop = false;
      const flood = loop.createTask(async () => {
        while (!stop) {
          if (sent >= CAP) throw new Error(`${sent} bytes went out unread`);
          writer.write(payload.subarray(sent, sent + CHUNK));
          sent += CHUNK;
          const size = writer.transport.getWriteBufferSize();
          maxBuffer = Math.max(maxBuffer, size);
          await writer.drain();
        }
        writer.writeEof();
      });
      const [sr, sw] = await serverSide;
      // The server's reader pauses its transport past twice its limit.
      await until(() => !sw.transport.isReading() || flood.done());
      assert.equal(flood.done(), false, "the flood ended");
      await settle();
      const sentAtStall = sent;
      await settle();
      assert.equal(sent, sentAtStall, "drain() let the client go on");
      assert.equal(sw.transport.isReading(), false);
      const size = writer.transport.getWriteBufferSize();
      // Paused: somewhere between the marks (resumed only at low).
      assert.ok(size > low && size <= high + CHUNK, `client buffer ${size}`);
      assert.ok(maxBuffer <= high + CHUNK, `client buffer max ${maxBuffer}`);
      const held = /(\d+) bytes/.exec(String(sr));
      assert.ok(held, String(sr));
      assert.ok(
        Number(held[1]) > 2 * LIMIT &&
          Number(held[1]) <= 2 * LIMIT + 256 * 1024,
        `the server's reader holds ${held[1]} bytes`,
      );

      stop = true;
      release.setResult();
      await flood;
      const all = await received;
      assert.equal(all.length, sent);
      assertSameBytes(all, payload.subarray(0, sent));
      writer.close();
      await writer.waitClosed();
      server.close();
      await server.waitClosed();
    }, { timeout: 15000 }));
});

describe("servers and many connections", () => {
  it("close() + abortClients() with live clients: every side sees connectionLost, waitClosed() resolves, new connections are refused", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop, () => new Rec(loop));
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = serverPort(server);
      const clients: Rec[] = [];
      for (let i = 0; i < 3; i++) {
        const [tr, pr] = await loop.createConnection(
          () => new Rec(loop),
          "127.0.0.1",
          port,
        );
        tr.write(enc(`client ${i}`));
        clients.push(pr);
      }
      const serverSide = [];
      for (let i = 0; i < 3; i++) serverSide.push(await accepted.next());
      for (const sp of serverSide) await sp.waitBytes(8);
      // Some unsent data on the server side, dropped by the abort.
      for (const sp of serverSide) sp.transport!.write(enc("pending"));

      server.close();
      assert.equal(server.isServing(), false);
      assert.deepEqual(server.sockets, []);
      let closed = false;
      const waiting = server.waitClosed().then(() => {
        closed = true;
      });
      await runBriefly(5);
      assert.equal(closed, false, "waitClosed() resolved with live clients");
      assert.equal(clients.some((c) => c.done.done()), false);
      await assertRejects(
        openConnection("127.0.0.1", port),
        (e) => assert.ok(e instanceof ConnectionRefusedError, String(e)),
      );

      server.abortClients();
      for (const sp of serverSide) assert.equal(await sp.done, null);
      for (const c of clients) {
        const exc = await c.done;
        assert.ok(isPeerGone(exc), `client connectionLost(${String(exc)})`);
      }
      await waiting;
      assert.equal(closed, true);
      assert.deepEqual(problemsOf([...serverSide, ...clients]), []);
    }));

  it("streams: close() + closeClients() ends handlers blocked in readline; clients read EOF; waitClosed() resolves", () =>
    runNet(async (loop) => {
      const results: string[] = [];
      const allIn = loop.createFuture<void>();
      let connected = 0;
      const server = await startServer(
        async (r, w) => {
          if (++connected === 3) allIn.setResult();
          const line = await r.readline();
          results.push(`line=${JSON.stringify(dec(line))}`);
          w.close();
        },
        "127.0.0.1",
        0,
      );
      const port = serverPort(server);
      const clients = [];
      for (let i = 0; i < 3; i++) {
        clients.push(await openConnection("127.0.0.1", port));
      }
      await allIn;
      server.close();
      server.closeClients();
      for (const [reader, writer] of clients) {
        assert.equal((await reader.read()).length, 0);
        writer.close();
        await writer.waitClosed();
      }
      await server.waitClosed();
      await until(() => results.length === 3);
      assert.deepEqual(results, ['line=""', 'line=""', 'line=""']);
    }));

  it("10,000 connections opened and closed against one server: no fd left, no callback after connectionLost", () =>
    runNet(async (loop) => {
      const COUNT = 10_000;
      const PARALLEL = 50;
      const accepted = new Accepted(loop, () => {
        const p = new EchoRec(loop);
        p.keepChunks = false;
        return p;
      });
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = serverPort(server);
      const clients: Rec[] = [];

      const oneConnection = async (i: number) => {
        const [tr, pr] = await loop.createConnection(
          () => new Rec(loop),
          "127.0.0.1",
          port,
        );
        clients.push(pr);
        const msg = enc(`ping ${i}`);
        tr.write(msg);
        await pr.waitBytes(msg.length);
        if (dec(pr.data()) !== `ping ${i}`) {
          pr.problems.push(`echo was ${dec(pr.data())}`);
        }
        // Half the clients close, half abort.
        if (i % 2 === 0) pr.close();
        else pr.abort();
        const exc = await pr.done;
        if (exc !== null) pr.problems.push(`connectionLost(${exc})`);
      };

      // One connection first, so whatever the loop opens lazily is open.
      await oneConnection(-1);
      await until(() => accepted.protos.every((p) => p.done.done()));
      const before = openFds();

      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          while (next < COUNT) await oneConnection(next++);
        }),
      );
      const elapsed = performance.now() - started;
      await until(() => accepted.protos.every((p) => p.done.done()));
      assert.equal(clients.length, COUNT + 1);
      assert.equal(accepted.protos.length, COUNT + 1);
      for (const sp of accepted.protos) {
        const exc = await sp.done;
        if (!isPeerGone(exc)) sp.problems.push(`connectionLost(${exc})`);
      }
      // Every socket of every connection is closed while the loop runs.
      await assertNoNewFds(before);
      // Late events (none expected) would show up as problems.
      await runBriefly(10);
      server.close();
      await server.waitClosed();
      assert.deepEqual(problemsOf([...accepted.protos, ...clients]), []);
      assert.ok(elapsed < 20000, `${COUNT} connections took ${elapsed} ms`);
    }, { timeout: 18000 }));
});

describe("partial writes", () => {
  async function smallSendBuffer(
    loop: SelectorEventLoop,
    family: number,
    address: InetAddress | string,
    size: number,
  ): Promise<Socket> {
    const sock = new Socket(family);
    try {
      sock.setsockopt(SOL_SOCKET, SO_SNDBUF, size);
      await loop.sockConnect(sock, address);
      return sock;
    } catch (error) {
      sock.close();
      throw error;
    }
  }

  async function fourMiB(
    loop: SelectorEventLoop,
    server: Server,
    connect: () => Promise<Socket>,
    accepted: Accepted<Rec>,
  ): Promise<void> {
    const N = 4 << 20;
    const payload = pattern(N, 10);
    const [tr, pr] = await loop.createConnection(
      () => new Rec(loop),
      undefined,
      undefined,
      { sock: await connect() },
    );
    const sp = await accepted.next();
    sp.keepOpenOnEof = true;
    tr.write(payload);
    const left = tr.getWriteBufferSize();
    assert.ok(left > 0 && left < N, `${left} bytes buffered`);
    assert.ok(pr.calls.includes("pauseWriting"));
    // Many small writes queue behind it, in order.
    const tail: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) tail.push(enc(`<${i}>`));
    tr.writelines(tail.slice(0, 500));
    for (const piece of tail.slice(500)) tr.write(piece);
    tr.writeEof();
    await sp.eof;
    const got = sp.data();
    const tailBytes = concat(tail);
    assert.equal(got.length, N + tailBytes.length);
    assertSameBytes(got.subarray(0, N), payload);
    assertSameBytes(got.subarray(N), tailBytes);
    assert.equal(tr.getWriteBufferSize(), 0);
    assert.ok(pr.calls.includes("resumeWriting"));
    sp.close();
    assert.equal(await pr.done, null);
    assert.equal(await sp.done, null);
    server.close();
    await server.waitClosed();
    assert.deepEqual(problemsOf([sp, pr]), []);
  }

  it("TCP: a 4 MiB write through a 64 KiB SO_SNDBUF arrives intact, then 1,000 small writes in order", () =>
    runNet(async (loop) => {
      const accepted = new Accepted(loop, () => new Rec(loop));
      const server = await loop.createServer(accepted.factory, "127.0.0.1", 0);
      const port = serverPort(server);
      await fourMiB(
        loop,
        server,
        () => smallSendBuffer(loop, AF_INET, ["127.0.0.1", port], SMALL_SNDBUF),
        accepted,
      );
    }, { timeout: 15000 }));

  it("unix socket: a 4 MiB write through a 4 KiB SO_SNDBUF arrives intact, then 1,000 small writes in order", () =>
    runNet(async (loop) => {
      const path = tmpSockPath("faults");
      const accepted = new Accepted(loop, () => new Rec(loop));
      const server = await loop.createUnixServer(accepted.factory, path);
      await fourMiB(
        loop,
        server,
        () => smallSendBuffer(loop, AF_UNIX, path, 4096),
        accepted,
      );
    }, { timeout: 15000 }));
});

// The networking algorithms live in the base loop and reach the I/O model
// only through its hooks (issue 8): a loop subclass that changes a hook
// changes every path that makes a transport, and the base loop's sendfile
// fallback (read + write() with flow control) works on any transport.
import assert from "node:assert/strict";
import { unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type BaseProtocol,
  type BaseTransport,
  os,
  Protocol,
  type Selector,
  SelectorEventLoop,
  SendfileNotAvailableError,
  type Server,
  SO_RCVBUF,
  SO_SNDBUF,
  type Socket,
  SOL_SOCKET,
  type Transport,
} from "../mod.ts";
import { policy, runLoop } from "./helpers.ts";
import {
  assertSameBytes,
  pattern,
  runBriefly,
  serverPort,
} from "./net_helpers.ts";

/** A selector loop whose hooks are watched (and sendfile(2) turned off). */
class HookedLoop extends SelectorEventLoop {
  made: string[] = [];
  constructor(selector: Selector) {
    super(selector);
  }
  override _makeSocketTransport(
    sock: Socket,
    protocol: BaseProtocol,
    waiter: Parameters<SelectorEventLoop["_makeSocketTransport"]>[2],
    extra?: Record<string, unknown>,
    server: Server | null = null,
  ): Transport {
    this.made.push(server === null ? "client" : "accepted");
    return super._makeSocketTransport(sock, protocol, waiter, extra, server);
  }
  override _sendfileNative(): Promise<number> {
    return Promise.reject(new SendfileNotAvailableError("turned off"));
  }
}

/** Collects what it receives; can pause its transport's reading. */
class Sink extends Protocol {
  transport!: Transport;
  chunks: Uint8Array[] = [];
  override connectionMade(t: BaseTransport): void {
    this.transport = t as Transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data);
  }
  get size(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
}

describe("the base loop's networking reaches transports through hooks", () => {
  it("createConnection and accepted connections both go through _makeSocketTransport", async () => {
    const loop = new HookedLoop(new policy.selectorClass());
    await runLoop(async () => {
      const server = await loop.createServer(
        () => new Sink(),
        "127.0.0.1",
        0,
      );
      const [tr] = await loop.createConnection(
        () => new Sink(),
        "127.0.0.1",
        serverPort(server),
      );
      while (loop.made.length < 2) await runBriefly(1);
      assert.deepEqual([...loop.made].sort(), ["accepted", "client"]);
      tr.close();
      server.close();
      await server.abortClients();
      await server.waitClosed();
    }, loop);
  });

  it("sendfile falls back to read + write() through the transport's flow control", async () => {
    const path = join(tmpdir(), `aioloop-fallback-${process.pid}.bin`);
    const data = pattern(3 * 1024 * 1024 + 17, 7);
    writeFileSync(path, data);
    const fd = os.open(path);
    const loop = new HookedLoop(new policy.selectorClass());
    try {
      await runLoop(async () => {
        let peer: Sink | null = null;
        const server = await loop.createServer(
          () => {
            peer = new Sink();
            return peer;
          },
          "127.0.0.1",
          0,
        );
        const [tr, proto] = await loop.createConnection(
          () => new Sink(),
          "127.0.0.1",
          serverPort(server),
        );
        while (peer === null) await runBriefly(1);
        const receiver = peer as Sink;
        // A slow peer: the fallback must wait on flow control, not buffer
        // the whole file.
        receiver.transport.pauseReading();
        // Small kernel buffers, so the file cannot hide in them.
        for (const t of [tr, receiver.transport]) {
          const sock = t.getExtraInfo("socket") as Socket;
          sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 64 * 1024);
          sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 64 * 1024);
        }
        tr.setWriteBufferLimits(64 * 1024);
        const sending = loop.sendfile(tr, fd, 5, null);
        let maxBuffered = 0;
        for (let i = 0; i < 20; i++) {
          await runBriefly(1);
          maxBuffered = Math.max(maxBuffered, tr.getWriteBufferSize());
        }
        assert.equal(tr.getProtocol() === proto, false, "a stand-in protocol");
        receiver.transport.resumeReading();
        const sent = await sending;
        assert.equal(sent, data.length - 5);
        assert.ok(
          maxBuffered <= 64 * 1024 + 256 * 1024,
          `the fallback buffered ${maxBuffered} bytes despite flow control`,
        );
        assert.equal(tr.getProtocol(), proto, "the protocol is restored");
        assert.equal(tr.isReading(), true, "reading resumes");
        assert.equal(os.seek(fd, 0), 0);
        while (receiver.size < sent) await runBriefly(1);
        const got = new Uint8Array(receiver.size);
        let at = 0;
        for (const c of receiver.chunks) {
          got.set(c, at);
          at += c.length;
        }
        assertSameBytes(got, data.subarray(5));
        await assert.rejects(
          loop.sendfile(tr, fd, 0, null, { fallback: false }),
          SendfileNotAvailableError,
        );
        tr.close();
        server.close();
        server.abortClients();
        await server.waitClosed();
      }, loop);
    } finally {
      os.close(fd);
      unlinkSync(path);
    }
  });
});

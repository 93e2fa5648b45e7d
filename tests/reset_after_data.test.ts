// A peer that sends data and then resets the connection: the reader gets
// the data, then ECONNRESET, as the kernel orders them, on every selector.
//
// Written against libkqueue, whose waiter reads (and so clears) SO_ERROR
// when it reports a socket error: the socket layer keeps that error
// (ffi/sys/bsd/kevent.ts) and reports it once the socket has no more data.
// These cases lost it (a reset became a clean EOF) or gave it to the next
// socket on the same fd number; epoll and poll never record one.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newLoop } from "./helpers.ts";
import { dec, enc } from "./net_helpers.ts";
import {
  AF_INET,
  AF_UNIX,
  type InetAddress,
  Protocol,
  type SelectorEventLoop,
  sleep,
  SOCK_STREAM,
  Socket,
  SOL_SOCKET,
  type Transport,
} from "../mod.ts";
import { socketpair } from "../ffi/socket.ts";
import { platform } from "../ffi/runtime.ts";

/** SO_LINGER: asm-generic/socket.h (Linux) 13; sys/socket.h (BSDs) 0x80. */
const SO_LINGER = platform === "linux" ? 13 : 0x0080;

/** Closes `sock` with a reset (SO_LINGER on, 0 seconds). */
function resetClose(sock: Socket): void {
  const linger = new Uint8Array(8); // struct linger { int l_onoff, l_linger; }
  new DataView(linger.buffer).setInt32(0, 1, true);
  sock.setsockopt(SOL_SOCKET, SO_LINGER, linger);
  sock.close();
}

function outcome(e: unknown): string {
  return (e as { code?: string }).code ?? String(e);
}

/** A listening socket on 127.0.0.1 and its address. */
function listener(): [Socket, InetAddress] {
  const srv = new Socket(AF_INET, SOCK_STREAM);
  srv.bind(["127.0.0.1", 0]);
  srv.listen();
  return [srv, srv.getsockname() as InetAddress];
}

/**
 * Runs `fn` on a new loop with `cli`, a client socket connected to `conn`,
 * the accepted end; closes the loop and every socket afterwards (the loop
 * first, as asyncio allows, with whatever it still watches).
 */
async function connected(
  fn: (loop: SelectorEventLoop, cli: Socket, conn: Socket) => Promise<void>,
): Promise<void> {
  const loop = newLoop();
  const [srv, address] = listener();
  const cli = new Socket(AF_INET, SOCK_STREAM);
  try {
    await loop.runUntilComplete(async () => {
      await loop.sockConnect(cli, address);
      const [conn] = await loop.sockAccept(srv);
      await fn(loop, cli, conn);
    });
  } finally {
    loop.close();
    cli.close();
    srv.close();
  }
}

describe("data, then a reset", () => {
  it("sockRecv gives the data, then ECONNRESET", () =>
    connected(async (loop, cli, conn) => {
      const first = loop.sockRecv(cli, 3); // waiting: a reader is registered
      await sleep(20);
      conn.send(enc("hello"));
      resetClose(conn);
      const got = [dec(await first)];
      await sleep(20);
      for (;;) {
        try {
          const data = await loop.sockRecv(cli, 100);
          got.push(data.length === 0 ? "EOF" : dec(data));
          if (data.length === 0) break;
        } catch (e) {
          got.push(outcome(e));
          break;
        }
      }
      assert.equal(got.join(""), "helloECONNRESET", got.join(", "));
    }));

  it("a transport that paused reading in dataReceived() still loses the connection with the reset", async () => {
    const loop = newLoop();
    const [srv, [host, port]] = listener();
    try {
      await loop.runUntilComplete(async () => {
        const lost = loop.createFuture<void>();
        const events: string[] = [];
        class Pausing extends Protocol {
          transport: Transport | null = null;
          override connectionMade(t: Transport): void {
            this.transport = t;
          }
          override dataReceived(data: Uint8Array): void {
            events.push(`data ${data.length}`);
            this.transport!.pauseReading(); // as a StreamReader over its limit
            loop.callLater(50, () => this.transport!.resumeReading());
          }
          override eofReceived(): boolean {
            events.push("eof");
            return false;
          }
          override connectionLost(e: Error | null): void {
            events.push(`lost ${e === null ? "null" : outcome(e)}`);
            lost.setResult();
          }
        }
        const accepted = loop.sockAccept(srv);
        await loop.createConnection(() => new Pausing(), host, port);
        const [conn] = await accepted;
        await sleep(20);
        conn.send(enc("hello"));
        resetClose(conn);
        await lost;
        assert.deepEqual(events, ["data 5", "lost ECONNRESET"]);
      });
    } finally {
      loop.close();
      srv.close();
    }
  });

  it("sockRecvfrom on a stream socket rejects with ECONNRESET, not an empty read", () =>
    connected(async (loop, cli, conn) => {
      const pending = loop.sockRecvfrom(cli, 100);
      await sleep(20);
      resetClose(conn);
      let got: string;
      try {
        got = `data ${(await pending)[0].length}`;
      } catch (e) {
        got = outcome(e);
      }
      assert.equal(got, "ECONNRESET");
    }));

  it("a new socket on the closed one's fd number does not inherit its reset", async () => {
    let oldFd = -1;
    await connected(async (loop, cli, conn) => {
      oldFd = cli.fileno();
      const got = loop.createFuture<string>();
      loop.addReader(oldFd, () => {
        if (!got.done()) {
          got.setResult(String(cli.recvInto(new Uint8Array(100))));
        }
      });
      await sleep(20);
      conn.send(enc("hello"));
      resetClose(conn); // data and reset before the next wait
      assert.equal(await got, "5");
      // The loop closes with the reader still registered.
    });
    const fresh: Socket[] = [];
    try {
      for (let i = 0; i < 500; i++) {
        if (fresh.some((s) => s.fileno() === oldFd)) break;
        fresh.push(...socketpair(AF_UNIX, SOCK_STREAM));
      }
      const mine = fresh.find((s) => s.fileno() === oldFd);
      assert.ok(mine, `no new socket got fd ${oldFd}`);
      let got: string;
      try {
        got = String(mine.recvInto(new Uint8Array(10))); // nothing was sent
      } catch (e) {
        got = outcome(e);
      }
      assert.equal(got, "null", `the new socket on fd ${oldFd}`);
    } finally {
      for (const s of fresh) s.close();
    }
  });
});

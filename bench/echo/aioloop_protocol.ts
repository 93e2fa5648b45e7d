/**
 * TCP echo server for `bench/echo.mjs`: aioloop, Protocol style. Each
 * connection's `dataReceived` writes the bytes back with
 * `transport.write`. Listens on 127.0.0.1, port 0, prints `READY <port>`.
 * TCP_NODELAY: aioloop's transports set it, as asyncio's do; it is set
 * again here, explicitly, as in the other servers.
 *
 *     deno run -A bench/echo/aioloop_protocol.ts
 *     bun bench/echo/aioloop_protocol.ts
 *
 * @module
 */
import {
  getRunningLoop,
  type InetAddress,
  IPPROTO_TCP,
  Protocol,
  run,
  type SelectorEventLoop,
  type Socket,
  TCP_NODELAY,
  type Transport,
} from "../../mod.ts";

class Echo extends Protocol {
  #transport: Transport | null = null;

  override connectionMade(transport: Transport): void {
    const sock = transport.getExtraInfo("socket") as Socket;
    sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    this.#transport!.write(data);
  }
}

await run(async () => {
  // run() makes the default policy's loop, a SelectorEventLoop.
  const loop = getRunningLoop() as SelectorEventLoop;
  const server = await loop.createServer(() => new Echo(), "127.0.0.1", 0);
  const [, port] = server.sockets[0].getsockname() as InetAddress;
  console.log(`READY ${port}`);
  await server.serveForever();
});

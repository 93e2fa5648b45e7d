/**
 * TCP echo server for `bench/echo.mjs`: aioloop, BufferedProtocol style.
 * The transport receives straight into the protocol's own 256 KiB buffer
 * (no copy per read, unlike Protocol, whose `dataReceived` gets bytes it
 * owns), and `bufferUpdated` writes them back. Listens on 127.0.0.1, port
 * 0, prints `READY <port>`; TCP_NODELAY as in the other servers.
 *
 *     deno run -A bench/echo/aioloop_buffered.ts
 *     bun bench/echo/aioloop_buffered.ts
 *
 * @module
 */
import {
  BufferedProtocol,
  getRunningLoop,
  type InetAddress,
  IPPROTO_TCP,
  run,
  type Socket,
  TCP_NODELAY,
  type Transport,
} from "../../mod.ts";

class Echo extends BufferedProtocol {
  #transport: Transport | null = null;
  readonly #buffer = new Uint8Array(256 * 1024);

  override connectionMade(transport: Transport): void {
    const sock = transport.getExtraInfo("socket") as Socket;
    sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    this.#transport = transport;
  }

  override getBuffer(_sizehint: number): Uint8Array {
    return this.#buffer;
  }

  override bufferUpdated(nbytes: number): void {
    // write() sends at once and copies only what the kernel did not take,
    // so the buffer is free again when it returns.
    this.#transport!.write(this.#buffer.subarray(0, nbytes));
  }
}

await run(async () => {
  const loop = getRunningLoop();
  const server = await loop.createServer(() => new Echo(), "127.0.0.1", 0);
  const [, port] = server.sockets[0].getsockname() as InetAddress;
  console.log(`READY ${port}`);
  await server.serveForever();
});

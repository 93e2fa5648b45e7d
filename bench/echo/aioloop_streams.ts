/**
 * TCP echo server for `bench/echo.mjs`: aioloop, streams style
 * (`startServer`). Each connection reads up to 64 KiB, writes it back and
 * awaits `drain()`, until EOF (or a reset by the client, which ends the
 * connection quietly). Listens on 127.0.0.1, port 0, prints
 * `READY <port>`. TCP_NODELAY: aioloop's transports set it, as asyncio's
 * do; it is set again here, explicitly, as in the other servers.
 *
 *     deno run -A bench/echo/aioloop_streams.ts
 *     bun bench/echo/aioloop_streams.ts
 *
 * @module
 */
import {
  ConnectionError,
  type InetAddress,
  IPPROTO_TCP,
  run,
  type Socket,
  startServer,
  type StreamReader,
  type StreamWriter,
  TCP_NODELAY,
} from "../../mod.ts";

async function echo(reader: StreamReader, writer: StreamWriter): Promise<void> {
  const sock = writer.getExtraInfo("socket") as Socket;
  sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  try {
    for (;;) {
      const data = await reader.read(65536);
      if (data.length === 0) break;
      writer.write(data);
      await writer.drain();
    }
  } catch (error) {
    // The load generator closes its sockets with echoes still unread, which
    // resets the connection: nothing to echo any more.
    if (!(error instanceof ConnectionError)) throw error;
  } finally {
    writer.close();
  }
}

await run(async () => {
  const server = await startServer(echo, "127.0.0.1", 0);
  const [, port] = server.sockets[0].getsockname() as InetAddress;
  console.log(`READY ${port}`);
  await server.serveForever();
});

/**
 * TCP echo server for `bench/echo.mjs`: Deno's own `Deno.listen`, one
 * read/write loop per connection (a 64 KiB buffer, `conn.read`, then
 * `conn.write` until all of it is written). Listens on 127.0.0.1, port 0,
 * prints `READY <port>`; `setNoDelay(true)` (TCP_NODELAY) on every
 * connection, as in the other servers.
 *
 *     deno run -A bench/echo/deno_native.ts
 *
 * @module
 */

async function echo(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buffer = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      let written = 0;
      while (written < n) {
        written += await conn.write(buffer.subarray(written, n));
      }
    }
  } catch {
    // The client went away (reset): nothing to echo any more.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(`READY ${listener.addr.port}`);
for await (const conn of listener) echo(conn);

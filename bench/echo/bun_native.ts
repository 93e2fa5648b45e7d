/**
 * TCP echo server for `bench/echo.mjs`: Bun's own `Bun.listen` with socket
 * handlers. `data` writes the bytes back; what `socket.write` could not
 * take at once is queued and written from `drain`, so nothing is lost.
 * Listens on 127.0.0.1, port 0, prints `READY <port>`; `setNoDelay(true)`
 * (TCP_NODELAY) on every connection, as in the other servers.
 *
 *     bun bench/echo/bun_native.ts
 *
 * @module
 */

/** The few parts of Bun's socket API used here (no Bun types in Deno). */
interface EchoSocket {
  data: { pending: Uint8Array[] };
  write(data: Uint8Array): number;
  setNoDelay(noDelay?: boolean): boolean;
  end(): void;
}

interface BunListen {
  listen(options: {
    hostname: string;
    port: number;
    socket: {
      open(socket: EchoSocket): void;
      data(socket: EchoSocket, data: Uint8Array): void;
      drain(socket: EchoSocket): void;
      error(socket: EchoSocket, error: Error): void;
    };
  }): { port: number };
}

/** Writes `data`, or what `write` did not take, to the socket's queue. */
function send(socket: EchoSocket, data: Uint8Array): void {
  const { pending } = socket.data;
  if (pending.length === 0) {
    const written = socket.write(data);
    if (written === data.length) return;
    data = data.subarray(Math.max(0, written));
  }
  // Bun reuses the buffer passed to `data`: keep a copy.
  pending.push(data.slice());
}

/** Writes the queue until the socket takes less than it is offered. */
function flush(socket: EchoSocket): void {
  const { pending } = socket.data;
  while (pending.length > 0) {
    const head = pending[0];
    const written = socket.write(head);
    if (written < head.length) {
      pending[0] = head.subarray(Math.max(0, written));
      return;
    }
    pending.shift();
  }
}

const bun = Reflect.get(globalThis, "Bun") as BunListen;
const server = bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = { pending: [] };
      socket.setNoDelay(true);
    },
    data: send,
    drain: flush,
    error(socket) {
      socket.end();
    },
  },
});
console.log(`READY ${server.port}`);

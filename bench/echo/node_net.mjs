// TCP echo server for bench/echo.mjs: Node's own `node:net`, run with the
// system `node`. `socket.pipe(socket)` writes back every byte it reads
// (with backpressure). Listens on 127.0.0.1, port 0, prints
// `READY <port>`; TCP_NODELAY on every connection (`noDelay: true`), as
// in the other servers.
//
//     node bench/echo/node_net.mjs
import { createServer } from "node:net";

const server = createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
});
server.listen(0, "127.0.0.1", () => {
  console.log(`READY ${server.address().port}`);
});

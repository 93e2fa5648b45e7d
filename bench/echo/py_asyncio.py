"""TCP echo server for bench/echo.mjs: CPython asyncio (or uvloop with
--uvloop), Protocol style; --buffered: BufferedProtocol (receives into
its own 256 KiB buffer); --streams: start_server, read(65536), write,
await drain(), like bench/echo/aioloop_streams.ts.

Listens on 127.0.0.1, port 0, prints "READY <port>" once listening, and
writes back every byte it reads (transport.write in data_received).
TCP_NODELAY is set on every accepted socket (asyncio and uvloop already
do; it is set explicitly, as in the other servers).

    python3 bench/echo/py_asyncio.py [--uvloop] [--buffered | --streams]
"""
import asyncio
import socket
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class BufferedEcho(asyncio.BufferedProtocol):
    def __init__(self):
        self.buffer = bytearray(256 * 1024)
        self.view = memoryview(self.buffer)

    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        self.transport.write(self.view[:nbytes])


async def echo_streams(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the load generator resets its connections at the end
    finally:
        writer.close()


async def main():
    loop = asyncio.get_running_loop()
    if "--streams" in sys.argv[1:]:
        server = await asyncio.start_server(echo_streams, "127.0.0.1", 0)
    elif "--buffered" in sys.argv[1:]:
        server = await loop.create_server(BufferedEcho, "127.0.0.1", 0)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await server.serve_forever()


def new_loop():
    if "--uvloop" in sys.argv[1:]:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


if __name__ == "__main__":
    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())

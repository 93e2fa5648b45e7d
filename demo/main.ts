/**
 * The aioloop demo: timers, fd watching on a pipe, a Worker waking the
 * loop, a TCP echo server on the loop (protocol style) with clients in
 * both styles (streams, and a web ReadableStream), and the host runtime's
 * own HTTP server answering while the loop runs (busy and idle). Run it
 * with Deno or Bun:
 *
 *     deno run -A demo/main.ts
 *     bun demo/main.ts
 *
 * @module
 */
import {
  type BaseTransport,
  gather,
  getRunningLoop,
  openConnection,
  os,
  Protocol,
  run,
  SelectorEventLoop,
  sleep,
  type Transport,
} from "../mod.ts";

const runtime = Reflect.get(globalThis, "Bun") ? "Bun" : "Deno";
const t0 = performance.now();
const log = (msg: string) =>
  console.log(`[${(performance.now() - t0).toFixed(1).padStart(7)} ms] ${msg}`);

/** Timers: callLater in an order other than their deadlines. */
async function timers(): Promise<void> {
  const loop = getRunningLoop();
  const fired: number[] = [];
  const done = loop.createFuture<void>();
  for (const ms of [30, 10, 20]) {
    loop.callLater(ms, () => {
      fired.push(ms);
      log(`timer: callLater(${ms}) fired`);
      if (fired.length === 3) done.setResult();
    });
  }
  const cancelled = loop.callLater(15, () => log("never printed"));
  cancelled.cancel();
  await done;
}

/** fd watching: a reader on a pipe, fed by a timer. */
async function pipeReader(): Promise<void> {
  const loop = getRunningLoop();
  const [r, w] = os.pipe();
  const got = loop.createFuture<string>();
  let text = "";
  loop.addReader(r, () => {
    const chunk = os.read(r);
    if (chunk === null) return;
    if (chunk.length === 0) {
      loop.removeReader(r);
      got.setResult(text);
      return;
    }
    text += new TextDecoder().decode(chunk);
    log(`pipe: reader got ${chunk.length} bytes`);
  });
  loop.callLater(5, () => os.write(w, "hello "));
  loop.callLater(10, () => os.write(w, "from a pipe"));
  loop.callLater(15, () => os.close(w));
  log(`pipe: read "${await got}" until EOF`);
  os.close(r);
}

/** A Worker schedules callbacks on this loop through a RemoteCallback. */
async function workerWakeup(): Promise<void> {
  const loop = getRunningLoop();
  if (!(loop instanceof SelectorEventLoop)) {
    throw new TypeError("needs a SelectorEventLoop");
  }
  const done = loop.createFuture<void>();
  let count = 0;
  const handle = loop.createRemoteCallback((n: number, sentAt: number) => {
    const lag = (Date.now() - sentAt).toFixed(0);
    log(`worker: call #${n} ran on the loop (${lag} ms after it was sent)`);
    if (++count === 3) done.setResult();
  });
  const worker = new Worker(new URL("./worker.ts", import.meta.url), {
    type: "module",
  });
  worker.postMessage(handle);
  await done;
  worker.terminate();
}

/** A protocol that echoes every byte back. */
class Echo extends Protocol {
  private transport!: Transport;
  override connectionMade(transport: BaseTransport): void {
    this.transport = transport as Transport;
    const [host, port] = transport.getExtraInfo("peername") as [string, number];
    log(`tcp: server accepted ${host}:${port}`);
  }
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

/** TCP on the loop: an echo server, a streams client, a web-stream client. */
async function tcpEcho(): Promise<void> {
  const loop = getRunningLoop();
  const server = await loop.createServer(() => new Echo(), "127.0.0.1", 0);
  const [host, port] = server.sockets[0].getsockname() as [string, number];
  log(`tcp: echo server listening on ${host}:${port}`);

  const [reader, writer] = await openConnection(host, port);
  const encoder = new TextEncoder();
  for (const line of ["ping\n", "pong\n"]) {
    writer.write(encoder.encode(line));
    await writer.drain();
    const echoed = new TextDecoder().decode(await reader.readline());
    log(`tcp: streams client got back ${JSON.stringify(echoed)}`);
  }
  writer.close();
  await writer.waitClosed();

  // The same connection type through web streams, for the rest of the
  // runtime's world: pipe a ReadableStream in, read the echo as one.
  const [webReader, webWriter] = await openConnection(host, port);
  const payload = new Blob(["web ", "streams ", "round trip"]).stream();
  const [echo] = await Promise.all([
    new Response(webReader.toReadableStream()).text(),
    payload.pipeTo(webWriter.toWritableStream()),
  ]);
  log(`tcp: web-stream client got back ${JSON.stringify(echo)}`);

  server.close();
  server.closeClients();
  await server.waitClosed();
  log("tcp: server closed, every connection gone");
}

/** The host's own HTTP server answers while the loop is busy. */
async function hostServer(): Promise<void> {
  const loop = getRunningLoop();
  const handler = (req: Request) =>
    new Response(
      `hello from ${runtime}'s own server (${new URL(req.url).pathname})`,
    );
  const bun = Reflect.get(globalThis, "Bun") as
    | { serve(o: unknown): { port: number; stop(force: boolean): void } }
    | undefined;
  let url: string;
  let close: () => Promise<void>;
  if (bun) {
    const server = bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: handler,
    });
    url = `http://127.0.0.1:${server.port}`;
    close = () => Promise.resolve(server.stop(true));
  } else {
    const deno = Reflect.get(globalThis, "Deno") as {
      serve(o: unknown, h: unknown): {
        addr: { port: number };
        shutdown(): Promise<void>;
      };
    };
    const server = deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      handler,
    );
    url = `http://127.0.0.1:${server.addr.port}`;
    close = () => server.shutdown();
  }
  // Keep the loop busy with a callSoon chain while fetching.
  let spins = 0;
  let busy = true;
  const spin = () => {
    spins++;
    if (busy) loop.callSoon(spin);
  };
  loop.callSoon(spin);
  const res = await fetch(`${url}/while-busy`);
  log(`http: "${await res.text()}" (loop ran ${spins} callbacks meanwhile)`);
  busy = false;
  await sleep(1);
  const idle = await fetch(`${url}/while-idle`);
  log(`http: "${await idle.text()}"`);
  await close();
}

await run(async () => {
  const loop = getRunningLoop();
  log(
    `aioloop demo on ${runtime}, selector ${
      (loop as { selectorName?: string }).selectorName
    }`,
  );
  await gather(timers(), pipeReader());
  await workerWakeup();
  await tcpEcho();
  await hostServer();
  log("done; the loop closes");
});

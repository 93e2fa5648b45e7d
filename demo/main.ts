/**
 * The aioloop demo: timers, fd watching on a pipe, a Worker waking the
 * loop, and the host runtime's own HTTP server answering while the loop
 * runs (busy and idle). Run it with Deno or Bun:
 *
 *     deno run -A demo/main.ts
 *     bun demo/main.ts
 *
 * @module
 */
import {
  gather,
  getRunningLoop,
  os,
  run,
  SelectorEventLoop,
  sleep,
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
  await hostServer();
  log("done; the loop closes");
});

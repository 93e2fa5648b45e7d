/**
 * Wake round trip from a Worker to the main thread, measured on the
 * Worker's side (see `bench/rtt_worker.ts`); the first argument picks:
 *
 * - `ours`: the main thread runs an idle aioloop `SelectorEventLoop`
 *   (nothing scheduled); the Worker calls a callback made by
 *   `loop.createRemoteCallback()` and blocks in `Atomics.wait` until the
 *   callback, run by the loop, stores and notifies a shared word.
 * - `native`: the Worker posts a message; the main thread's `onmessage`
 *   posts it back.
 *
 * `--iterations=5000` timed round trips after `--warmup=500`, with
 * `--gap=200` µs of sleep between them in the Worker. Prints one JSON line
 * with p50, p99 and other percentiles in microseconds, and the share of
 * round trips under 30 µs.
 *
 *     deno run -A bench/worker_rtt.ts ours
 *     bun bench/worker_rtt.ts native
 *
 * @module
 */
import { SelectorEventLoop } from "../mod.ts";
import { args, emit, intOption, percentile } from "./common.ts";
import type { RttRequest } from "./rtt_worker.ts";

const WARMUP = intOption("warmup", 500);
const ITERATIONS = intOption("iterations", 5000);
const GAP_MICROS = intOption("gap", 200);
const SAFETY_MS = 60_000;

function startWorker(): Worker {
  return new Worker(new URL("./rtt_worker.ts", import.meta.url), {
    type: "module",
  });
}

/** Round trips through the loop's remote callback, in µs. */
async function ours(): Promise<Float64Array> {
  const loop = new SelectorEventLoop();
  const sync = new SharedArrayBuffer(4);
  const word = new Int32Array(sync);
  const samples = new SharedArrayBuffer(ITERATIONS * 8);
  let failure: unknown = null;
  const handle = loop.createRemoteCallback((i: number) => {
    if (i < 0) {
      loop.stop();
      return;
    }
    Atomics.store(word, 0, i);
    Atomics.notify(word, 0);
  });
  const worker = startWorker();
  worker.onerror = (e) => {
    e.preventDefault?.();
    failure = e.message ?? e;
    loop.stop();
  };
  // A host timer, not a loop timer: the loop itself has nothing scheduled.
  const safety = setTimeout(() => {
    failure = `no result after ${SAFETY_MS} ms`;
    loop.stop();
  }, SAFETY_MS);
  const request: RttRequest = {
    mode: "ours",
    warmup: WARMUP,
    iterations: ITERATIONS,
    gapMicros: GAP_MICROS,
    handle,
    sync,
    samples,
  };
  worker.postMessage(request);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(safety);
    worker.terminate();
    loop.close();
  }
  if (failure !== null) throw new Error(`worker failed: ${String(failure)}`);
  return new Float64Array(samples);
}

/** Round trips of postMessage / onmessage, in µs. */
function native(): Promise<Float64Array> {
  return new Promise((resolve, reject) => {
    const worker = startWorker();
    const safety = setTimeout(() => {
      worker.terminate();
      reject(new Error(`no result after ${SAFETY_MS} ms`));
    }, SAFETY_MS);
    worker.onerror = (e) => {
      e.preventDefault?.();
      clearTimeout(safety);
      worker.terminate();
      reject(new Error(`worker failed: ${e.message}`));
    };
    worker.onmessage = (e: MessageEvent) => {
      if (typeof e.data === "number") {
        worker.postMessage(e.data);
        return;
      }
      clearTimeout(safety);
      worker.terminate();
      resolve(e.data.samples as Float64Array);
    };
    const request: RttRequest = {
      mode: "native",
      warmup: WARMUP,
      iterations: ITERATIONS,
      gapMicros: GAP_MICROS,
    };
    worker.postMessage(request);
  });
}

const mode = args()[0];
if (mode !== "ours" && mode !== "native") {
  throw new RangeError(`unknown mode ${String(mode)}`);
}
const samples = mode === "ours" ? await ours() : await native();
emit({
  mode: `rtt-${mode}`,
  unit: "us",
  iterations: samples.length,
  gapMicros: GAP_MICROS,
  p50: percentile(samples, 50),
  p90: percentile(samples, 90),
  p99: percentile(samples, 99),
  min: percentile(samples, 0),
  max: percentile(samples, 100),
  under30: samples.filter((us) => us < 30).length / samples.length,
});

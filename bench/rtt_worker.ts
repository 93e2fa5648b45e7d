/**
 * The Worker side of `bench/worker_rtt.ts`: measures round trips to the
 * main thread and reports them in microseconds.
 *
 * - `ours`: `connectRemoteCallback(handle).call(i)`, then blocks in
 *   `Atomics.wait` until the loop-side callback stored `i` in the shared
 *   word and notified it. The samples go into a shared Float64Array; a
 *   final `call(-1)` tells the loop to stop.
 * - `native`: `postMessage(i)`, and the main thread's `onmessage` posts
 *   `i` back. The samples are posted at the end.
 *
 * Between two round trips the Worker sleeps `gapMicros` (Atomics.wait with
 * a timeout), so each call finds the main thread idle again.
 *
 * @module
 */
import { connectRemoteCallback, type RemoteCallbackHandle } from "../mod.ts";

/** What the main thread sends to start a run. */
export interface RttRequest {
  mode: "ours" | "native";
  warmup: number;
  iterations: number;
  gapMicros: number;
  /** `ours`: the loop's remote callback. */
  handle?: RemoteCallbackHandle;
  /** `ours`: Int32 word 0 is the last acknowledged call. */
  sync?: SharedArrayBuffer;
  /** `ours`: Float64 samples, one per timed iteration. */
  samples?: SharedArrayBuffer;
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};
const now: () => number = performance.now.bind(performance);
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function pause(micros: number): void {
  if (micros > 0) Atomics.wait(sleeper, 0, 0, micros / 1000);
}

function runOurs(request: RttRequest): void {
  const remote = connectRemoteCallback(request.handle!);
  const word = new Int32Array(request.sync!);
  const out = new Float64Array(request.samples!);
  const total = request.warmup + request.iterations;
  for (let i = 1; i <= total; i++) {
    const start = now();
    remote.call(i);
    while (Atomics.load(word, 0) !== i) Atomics.wait(word, 0, i - 1);
    const took = now() - start;
    if (i > request.warmup) out[i - request.warmup - 1] = took * 1000;
    pause(request.gapMicros);
  }
  remote.call(-1);
}

function runNative(request: RttRequest): void {
  const total = request.warmup + request.iterations;
  const samples = new Float64Array(request.iterations);
  let i = 0;
  let start = 0;
  const next = () => {
    if (++i > total) {
      scope.onmessage = null;
      scope.postMessage({ samples });
      return;
    }
    start = now();
    scope.postMessage(i);
  };
  scope.onmessage = (e: MessageEvent) => {
    const took = now() - start;
    if (e.data !== i) throw new Error(`expected ${i}, got ${e.data}`);
    if (i > request.warmup) samples[i - request.warmup - 1] = took * 1000;
    pause(request.gapMicros);
    next();
  };
  next();
}

scope.onmessage = (e: MessageEvent<RttRequest>) => {
  if (e.data.mode === "ours") runOurs(e.data);
  else runNative(e.data);
};

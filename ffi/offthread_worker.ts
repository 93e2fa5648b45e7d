/**
 * A runner Worker (Bun): makes blocking C calls for ffi/offthread.ts.
 *
 * It receives its SharedArrayBuffer in the first message, then blocks in
 * `Atomics.wait` on the `request` word and serves one call per request
 * (the protocol is described at `RUNNER_CTL`). Bindings are made the first
 * time a call names them, from the description the JS thread wrote.
 * An error (a library or symbol that cannot be bound) goes back as a
 * WireError, so the caller gets the same class. After `exit` it touches
 * nothing shared and closes itself.
 *
 * @module
 */
import {
  bindNative,
  errorToWire,
  type NativeCall,
  RUNNER_CTL as C,
} from "./offthread.ts";
import type { NativeType } from "./runtime.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The call a description names: library, symbol, parameters, result. */
function describe(description: string): NativeCall {
  const [library, symbol, parameters, result] = description.split("\0");
  return {
    library,
    symbol,
    parameters:
      (parameters === "" ? [] : parameters.split(",")) as NativeType[],
    result: result as NativeType,
  };
}

function serve(shared: SharedArrayBuffer): void {
  const ctl = new Int32Array(shared);
  const cells = new Float64Array(shared, 0, C.text / 8);
  const text = new Uint8Array(shared, C.text);
  const bindings = new Map<number, (...args: number[]) => unknown>();
  const args: number[] = [];
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, C.request, seen);
    if (Atomics.load(ctl, C.exit)) break;
    const request = Atomics.load(ctl, C.request);
    if (request === seen) continue;
    seen = request;
    try {
      const id = ctl[C.binding];
      const define = ctl[C.define];
      let fn = bindings.get(id);
      if (fn === undefined || define > 0) {
        const spec = describe(decoder.decode(text.slice(0, define)));
        fn = bindNative(spec, false);
        bindings.set(id, fn);
      }
      const argc = ctl[C.argc];
      args.length = argc;
      for (let i = 0; i < argc; i++) args[i] = cells[C.args + i];
      cells[C.result] = fn(...args) as number;
      ctl[C.status] = 0;
    } catch (error) {
      const wire = errorToWire(error);
      wire.message = wire.message.slice(0, 1000); // fits the text area
      const bytes = encoder.encode(JSON.stringify(wire));
      text.set(bytes);
      ctl[C.errorLength] = bytes.length;
      ctl[C.status] = 1;
    }
    Atomics.store(ctl, C.done, request);
    Atomics.notify(ctl, C.done);
  }
}

const scope = globalThis as unknown as {
  onmessage: ((e: { data: SharedArrayBuffer }) => void) | null;
  close?: () => void;
};
scope.onmessage = (e) => {
  scope.onmessage = null;
  serve(e.data);
  scope.close?.();
};

/**
 * The waiter Worker (Bun): blocks in poll(2) on request and reports back.
 *
 * Protocol (Int32 words of a SharedArrayBuffer, see `WAITER_CTL`): the main
 * thread stores the pollfd address, count and timeout, bumps `request` and
 * notifies; this thread polls, drains the interrupt descriptor, stores the
 * request number in `done` and notifies. `exit` ends the loop; `exited` is
 * set last, after which this thread touches no descriptor.
 *
 * @module
 */
import { libc, libcPath } from "./libc.ts";
import { openLibrary, pointerFromAddress } from "./runtime.ts";
import { WAITER_CTL as CTL } from "./waiter.ts";

const { poll } = openLibrary(libcPath, {
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
}).symbols;

const drainBuffer = new Uint8Array(64);

function serve(shared: SharedArrayBuffer): void {
  const ctl = new Int32Array(shared);
  const address = new Float64Array(shared);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctl, CTL.request, seen);
    if (Atomics.load(ctl, CTL.exit)) break;
    const request = Atomics.load(ctl, CTL.request);
    if (request === seen) continue;
    seen = request;
    poll(
      pointerFromAddress(address[CTL.addressF64]),
      Atomics.load(ctl, CTL.count),
      Atomics.load(ctl, CTL.timeout),
    );
    if (Atomics.load(ctl, CTL.exit)) break;
    libc.read(Atomics.load(ctl, CTL.interruptFd), drainBuffer, 64);
    Atomics.store(ctl, CTL.done, request);
    Atomics.notify(ctl, CTL.done);
  }
  Atomics.store(ctl, CTL.exited, 1);
  Atomics.notify(ctl, CTL.exited);
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

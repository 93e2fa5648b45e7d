/**
 * The demo's Worker: receives a RemoteCallbackHandle and calls the loop's
 * callback three times, 20 ms apart.
 *
 * @module
 */
import { connectRemoteCallback, type RemoteCallbackHandle } from "../mod.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<RemoteCallbackHandle>) => void) | null;
};
scope.onmessage = (e) => {
  const remote = connectRemoteCallback(e.data);
  let n = 0;
  const timer = setInterval(() => {
    remote.call(++n, Date.now());
    if (n === 3) clearInterval(timer);
  }, 20);
};

/**
 * What this OS offers the loop besides its selectors: the best waker.
 * Only the files under `ffi/sys/` and the selector registry
 * (`ffi/selectors.ts`) know which OS has what.
 *
 * @module
 */
import type { Waker } from "../selector.ts";
import { platform } from "../runtime.ts";
import { EventFdWaker } from "./linux/eventfd.ts";
import { PipeWaker, signalFd } from "./posix/waker.ts";

/** The best waker for this OS: an eventfd on Linux, a self-pipe elsewhere. */
export function createWaker(): Waker {
  return platform === "linux" ? new EventFdWaker() : new PipeWaker();
}

export { signalFd };

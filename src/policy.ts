/**
 * The default loop policy: a {@link SelectorEventLoop} over the best
 * selector for this OS (epoll on Linux, kqueue on macOS and the BSDs), or
 * the one named by an option or by the `AIOLOOP_SELECTOR` environment
 * variable ("epoll", "kqueue", "poll"). On Linux, "kqueue" needs libkqueue
 * (`AIOLOOP_LIBKQUEUE`).
 *
 * @module
 */
import { DefaultSelector, selectorClass } from "../ffi/selectors.ts";
import { readEnv } from "../ffi/runtime.ts";
import {
  _setDefaultPolicyFactory,
  type AbstractEventLoop,
  BaseDefaultEventLoopPolicy,
} from "./events.ts";
import type { SelectorClass } from "../ffi/selector.ts";
import { SelectorEventLoop } from "./selector_events.ts";

/** Options of {@link DefaultEventLoopPolicy}. */
export interface DefaultPolicyOptions {
  /** A backend name ("epoll", "kqueue", "poll") or a selector class. */
  selector?: string | SelectorClass;
}

/** The environment variable that picks the selector backend. */
export const SELECTOR_ENV = "AIOLOOP_SELECTOR";

/**
 * Creates SelectorEventLoops over the chosen selector: the option, else
 * `AIOLOOP_SELECTOR`, else the best one for this OS.
 */
export class DefaultEventLoopPolicy extends BaseDefaultEventLoopPolicy {
  /** The selector class new loops use. */
  readonly selectorClass: SelectorClass;

  /** Creates the policy; throws RangeError for an unknown backend name. */
  constructor(options: DefaultPolicyOptions = {}) {
    super();
    const choice = options.selector ?? readEnv(SELECTOR_ENV) ?? "";
    this.selectorClass = typeof choice === "function"
      ? choice
      : choice === ""
      ? DefaultSelector
      : selectorClass(choice);
  }

  /** Makes a SelectorEventLoop over the chosen selector. */
  protected override _loopFactory(): AbstractEventLoop {
    return new SelectorEventLoop(new this.selectorClass());
  }
}

_setDefaultPolicyFactory(() => new DefaultEventLoopPolicy());

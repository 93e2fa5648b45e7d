/**
 * aioloop: asyncio's event loop for Deno and Bun, over the OS poller
 * (epoll, poll) through FFI.
 *
 * ```ts
 * import { run, sleep, getRunningLoop } from "@aioloop/aioloop";
 *
 * await run(async () => {
 *   const loop = getRunningLoop();
 *   loop.callLater(10, () => console.log("10 ms later"));
 *   await sleep(20);
 * });
 * ```
 *
 * Names are asyncio's in camelCase; times are milliseconds.
 *
 * @module
 */
export {
  _getRunningLoop,
  AbstractEventLoop,
  AbstractEventLoopPolicy,
  AbstractServer,
  BaseDefaultEventLoopPolicy,
  type Callback,
  CallContext,
  type Coroutine,
  type ExceptionContext,
  type ExceptionHandler,
  getEventLoop,
  getEventLoopPolicy,
  getRunningLoop,
  Handle,
  newEventLoop,
  setEventLoop,
  setEventLoopPolicy,
  type TaskFactory,
  type TaskOptions,
  TimerHandle,
  withContext,
} from "./src/events.ts";
export {
  BaseEventLoop,
  BUSY_YIELD_INTERVAL_MS,
  MAXIMUM_SELECT_TIMEOUT,
  MIN_CANCELLED_TIMER_HANDLES_FRACTION,
  MIN_SCHEDULED_TIMER_HANDLES,
} from "./src/base_events.ts";
export {
  connectRemoteCallback,
  REMOTE_QUEUE_BYTES,
  SelectorEventLoop,
} from "./src/selector_events.ts";
export {
  EVENT_READ,
  EVENT_WRITE,
  type FileLike,
  type ReadyEvent,
  type Selector,
  type SelectorClass,
  type SelectorKey,
  type WaitSet,
  type Waker,
} from "./src/selectors.ts";
export {
  availableSelectors,
  DefaultSelector,
  EpollSelector,
  PollSelector,
  selectorClass,
} from "./ffi/selectors.ts";
export { type MutableKey, SelectorBase } from "./ffi/sys/selector_base.ts";
export {
  DefaultEventLoopPolicy,
  type DefaultPolicyOptions,
  SELECTOR_ENV,
} from "./src/policy.ts";
export { type DoneCallback, Future, isFuture } from "./src/futures.ts";
export {
  allTasks,
  type Awaitable,
  currentTask,
  ensureFuture,
  gather,
  type GatherOptions,
  shield,
  sleep,
  Task,
  type TaskConstructorOptions,
  waitFor,
} from "./src/tasks.ts";
export { run, type RunOptions } from "./src/runners.ts";
export {
  Context,
  ContextVar,
  copyContext,
  LookupError,
  MISSING,
  Token,
} from "./src/context.ts";
export {
  CancelledError,
  FatalError,
  InvalidStateError,
  NotImplementedError,
  OSError,
  RuntimeError,
  TimeoutError,
} from "./src/exceptions.ts";
export type { RemoteCallback, RemoteCallbackHandle } from "./src/remote.ts";
export { type Logger, setLogger } from "./src/log.ts";
export * as os from "./ffi/os.ts";

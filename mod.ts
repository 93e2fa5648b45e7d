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
  type CreateConnectionOptions,
  type CreateServerOptions,
  type CreateUnixServerOptions,
  type DatagramEndpointOptions,
  type ExceptionContext,
  type ExceptionHandler,
  type GetaddrinfoOptions,
  getEventLoop,
  getEventLoopPolicy,
  getRunningLoop,
  Handle,
  newEventLoop,
  type SendfileOptions,
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
  ACCEPT_RETRY_DELAY,
  connectRemoteCallback,
  REMOTE_QUEUE_BYTES,
  SelectorEventLoop,
  type SelectorEventLoopOptions,
} from "./src/selector_events.ts";
export {
  EVENT_READ,
  EVENT_WRITE,
  type FileLike,
  type NativeWait,
  type ReadyEvent,
  type Selector,
  type SelectorClass,
  type SelectorKey,
  type WaitSet,
  type Waker,
} from "./ffi/selector.ts";
export {
  availableSelectors,
  DefaultSelector,
  EpollSelector,
  KqueueSelector,
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
export {
  DEFAULT_SHUTDOWN_TIMEOUT,
  run,
  type RunOptions,
} from "./src/runners.ts";
export {
  Context,
  ContextVar,
  copyContext,
  LookupError,
  MISSING,
  Token,
} from "./src/context.ts";
export {
  BrokenPipeError,
  CancelledError,
  ConnectionAbortedError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  FatalError,
  GaiError,
  InvalidStateError,
  NotImplementedError,
  OSError,
  RuntimeError,
  SendfileNotAvailableError,
  TimeoutError,
} from "./src/exceptions.ts";
export {
  BaseProtocol,
  BufferedProtocol,
  DatagramProtocol,
  Protocol,
} from "./src/protocols.ts";
export {
  BaseTransport,
  DatagramTransport,
  ReadTransport,
  Transport,
  WriteTransport,
} from "./src/transports.ts";
export { DEFAULT_HIGH_WATER } from "./src/flow_control.ts";
export { MAX_READ_SIZE } from "./src/selector_transports.ts";
export { Server } from "./src/server.ts";
export { interleaveAddrinfos } from "./src/base_events.ts";
export {
  type ClientConnected,
  IncompleteReadError,
  LimitOverrunError,
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
  STREAM_LIMIT,
  type StreamOptions,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
} from "./src/streams.ts";
export { Socket, socketpair } from "./ffi/socket.ts";
export {
  type Address,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  AF_UNSPEC,
  type Inet6Address,
  type InetAddress,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_V6ONLY,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_BROADCAST,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_SNDBUF,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_SOCKET,
  SOMAXCONN,
  TCP_NODELAY,
} from "./ffi/sys/sockaddr.ts";
export {
  type AddrInfo,
  AI_ADDRCONFIG,
  AI_CANONNAME,
  AI_NUMERICHOST,
  AI_NUMERICSERV,
  AI_PASSIVE,
  NI_DGRAM,
  NI_NAMEREQD,
  NI_NUMERICHOST,
  NI_NUMERICSERV,
} from "./ffi/dns.ts";
export type { RemoteCallback, RemoteCallbackHandle } from "./src/remote.ts";
export { type Logger, setLogger } from "./src/log.ts";
export * as os from "./ffi/os.ts";
export type { NativeType } from "./ffi/runtime.ts";

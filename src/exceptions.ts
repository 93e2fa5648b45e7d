/**
 * The error classes of the loop, named as asyncio names them.
 *
 * @module
 */

/** The operation is cancelled (asyncio.CancelledError). */
export class CancelledError extends Error {
  /** Creates the error; `message` is the cancel message, if any. */
  constructor(message?: string) {
    super(message ?? "");
    this.name = "CancelledError";
  }
}

/** The object is not in a state that allows the operation. */
export class InvalidStateError extends Error {
  /** Creates the error with a message that says what was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidStateError";
  }
}

/** The operation exceeded its deadline (asyncio's TimeoutError). */
export class TimeoutError extends Error {
  /** Creates the error. */
  constructor(message = "") {
    super(message);
    this.name = "TimeoutError";
  }
}

/** Python's RuntimeError: a call made in the wrong loop state. */
export class RuntimeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RuntimeError";
  }
}

/** A method that this build of the loop does not provide (yet). */
export class NotImplementedError extends Error {
  /** Creates the error. */
  constructor(message = "") {
    super(message);
    this.name = "NotImplementedError";
  }
}

/**
 * A fatal error: thrown from a callback, it is not given to the exception
 * handler but stops the loop and leaves `runForever()`/`runUntilComplete()`
 * (the port of Python's SystemExit and KeyboardInterrupt).
 */
export class FatalError extends Error {
  /** Creates the error. */
  constructor(message = "", options?: ErrorOptions) {
    super(message, options);
    this.name = "FatalError";
  }
}

/** A failed system call: `errno`, its name in `code`, and the `syscall`. */
export class OSError extends Error {
  /** The C errno value. */
  readonly errno: number;
  /** The errno name, as Node spells it (`EBADF`, `EADDRINUSE`, ...). */
  readonly code: string;
  /** The system call that failed. */
  readonly syscall: string;

  /** Creates the error; `detail` is appended to the message. */
  constructor(
    errno: number,
    code: string,
    strerror: string,
    syscall: string,
    detail?: string,
  ) {
    super(
      `[Errno ${errno}] ${strerror} (${code}, ${syscall})` +
        (detail ? `: ${detail}` : ""),
    );
    this.name = "OSError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

/** A connection-related OSError (Python's ConnectionError). */
export class ConnectionError extends OSError {
  /** The class name, as Python names it. */
  override name = "ConnectionError";
}

/** The peer refused the connection (ECONNREFUSED). */
export class ConnectionRefusedError extends ConnectionError {
  /** The class name, as Python names it. */
  override name = "ConnectionRefusedError";
}

/** The peer reset the connection (ECONNRESET). */
export class ConnectionResetError extends ConnectionError {
  /** The class name, as Python names it. */
  override name = "ConnectionResetError";
}

/** The connection was aborted (ECONNABORTED). */
export class ConnectionAbortedError extends ConnectionError {
  /** The class name, as Python names it. */
  override name = "ConnectionAbortedError";
}

/** Writing to a connection the peer has closed (EPIPE, ESHUTDOWN). */
export class BrokenPipeError extends ConnectionError {
  /** The class name, as Python names it. */
  override name = "BrokenPipeError";
}

/**
 * Name resolution failed (Python's socket.gaierror): `errno` is the
 * getaddrinfo result (EAI_*), `code` its name, like "EAI_NONAME".
 */
export class GaiError extends OSError {
  /** The class name. */
  override name = "GaiError";
}

/** The OSError class for an errno name (ConnectionRefusedError, ...). */
export function osErrorClass(code: string): typeof OSError {
  switch (code) {
    case "ECONNREFUSED":
      return ConnectionRefusedError;
    case "ECONNRESET":
      return ConnectionResetError;
    case "ECONNABORTED":
      return ConnectionAbortedError;
    case "EPIPE":
    case "ESHUTDOWN":
      return BrokenPipeError;
    default:
      return OSError;
  }
}

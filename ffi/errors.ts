/**
 * The errors of failed system calls, named as Python names them: `OSError`
 * with `errno`, `code` (the errno name) and `syscall`, its connection
 * subclasses, `GaiError` for name resolution, and `RuntimeError` for a
 * wrong state (a closed selector or loop). They live here, at the FFI edge
 * that raises them; `src/exceptions.ts` re-exports them.
 *
 * @module
 */

/** Python's RuntimeError: a call made in the wrong loop state. */
export class RuntimeError extends Error {
  /** Creates the error; `options.cause` keeps what led to it. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
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

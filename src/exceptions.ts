/**
 * The error classes of the loop, named as asyncio names them.
 *
 * @module
 */
import { RuntimeError } from "../ffi/errors.ts";

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

/**
 * The I/O model cannot send this file natively (asyncio's
 * SendfileNotAvailableError); sendfile() falls back unless told not to.
 */
export class SendfileNotAvailableError extends RuntimeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SendfileNotAvailableError";
  }
}

export {
  BrokenPipeError,
  ConnectionAbortedError,
  ConnectionError,
  ConnectionRefusedError,
  ConnectionResetError,
  GaiError,
  OSError,
  osErrorClass,
  RuntimeError,
} from "../ffi/errors.ts";

/**
 * The loop's logger: where the default exception handler and debug-mode
 * warnings write. Console by default; replace it with {@link setLogger}.
 *
 * @module
 */

/** A log sink with the two levels the loop uses. */
export interface Logger {
  /** Errors (unhandled exceptions). */
  error(message: string, error?: unknown): void;
  /** Warnings (slow callbacks, debug checks). */
  warning(message: string): void;
}

const consoleLogger: Logger = {
  error(message, error) {
    if (error === undefined) console.error(message);
    else console.error(message, error);
  },
  warning(message) {
    console.warn(message);
  },
};

let current: Logger = consoleLogger;

/** The logger in use. */
export const logger: Logger = {
  error: (message, error) => current.error(message, error),
  warning: (message) => current.warning(message),
};

/** Replaces the logger (null restores the console); returns the old one. */
export function setLogger(next: Logger | null): Logger {
  const old = current;
  current = next ?? consoleLogger;
  return old;
}

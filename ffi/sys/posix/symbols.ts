/**
 * Which C symbols the bindings would bind on an OS: the specs of
 * `ffi/libc.ts`, `ffi/socket.ts`, `../linux/eventfd.ts` and
 * `../linux/epoll.ts`, computed from that OS's table without loading
 * anything, so tests check on Linux that macOS or a BSD is never asked
 * for a Linux-only symbol.
 *
 * @module
 */
import { arch, type SymbolSpec } from "../../runtime.ts";
import { libcSymbols } from "../../libc.ts";
import { socketSymbols } from "../../socket.ts";
import { eventfdSymbols } from "../linux/eventfd.ts";
import { epollSymbols } from "../linux/epoll.ts";
import { platformTable } from "./table.ts";

/** The symbol specs each binding file would open, by file. */
export interface LibrarySymbols {
  /** `ffi/libc.ts`. */
  readonly libc: Readonly<Record<string, SymbolSpec>>;
  /** `ffi/socket.ts`. */
  readonly socket: Readonly<Record<string, SymbolSpec>>;
  /** `ffi/sys/linux/eventfd.ts` (none off Linux). */
  readonly eventfd: Readonly<Record<string, SymbolSpec>>;
  /** `ffi/sys/linux/epoll.ts` (none off Linux). */
  readonly epoll: Readonly<Record<string, SymbolSpec>>;
}

/**
 * What the bindings would bind on `os` (a `process.platform` name) and
 * `cpu` (a `process.arch` name, default this one). RangeError for an OS
 * without a table.
 */
export function librarySymbols(os: string, cpu: string = arch): LibrarySymbols {
  const table = platformTable(os);
  return {
    libc: libcSymbols(table, cpu),
    socket: socketSymbols(table),
    eventfd: eventfdSymbols(table),
    epoll: epollSymbols(table),
  };
}

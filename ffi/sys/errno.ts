/**
 * errno names and values of this OS. Kept for the files that still import
 * it: the numbers live in the per-OS tables (`./posix/table.ts`) and
 * `./platform.ts` exports them by name; import from there.
 *
 * @module
 */
export {
  EAGAIN,
  EBADF,
  EEXIST,
  EINTR,
  ENOENT,
  EPERM,
  errnoName,
} from "./platform.ts";

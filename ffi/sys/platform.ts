/**
 * What this OS offers the rest of the module: its constants by name (from
 * the table of this OS, see `./posix/table.ts`) and the best waker. Only
 * the files under `ffi/sys/` and the selector registry (`ffi/selectors.ts`)
 * know which OS has what.
 *
 * ```ts
 * import { AF_INET6, EAGAIN, platformTable } from "./platform.ts";
 * platformTable("darwin").constants.AF_INET6; // 30, whatever OS runs this
 * ```
 *
 * @module
 */
import type { Waker } from "../selector.ts";
import { EventFdWaker } from "./linux/eventfd.ts";
import { PipeWaker, signalFd } from "./posix/waker.ts";
import { hostTable } from "./posix/table.ts";

export {
  COMMON_ERRNO,
  COMMON_GAI_ERRORS,
  CONSTANT_NAMES,
  errnoName,
  gaiErrorName,
  hasHostTable,
  hostTable,
  type PlatformTable,
  platformTable,
  POSIX_PLATFORMS,
} from "./posix/table.ts";

/** The best waker for this OS: an eventfd on Linux, a self-pipe elsewhere. */
export function createWaker(): Waker {
  return hostTable.symbols.eventfd ? new EventFdWaker() : new PipeWaker();
}

export { signalFd };

const C = hostTable.constants;
const E = hostTable.errno;

/** Unspecified address family (any, in getaddrinfo hints). */
export const AF_UNSPEC: number = C.AF_UNSPEC;
/** Unix-domain sockets. */
export const AF_UNIX: number = C.AF_UNIX;
/** IPv4. */
export const AF_INET: number = C.AF_INET;
/** IPv6 (10 on Linux, 30 on macOS, 28 on FreeBSD, 24 on OpenBSD and NetBSD). */
export const AF_INET6: number = C.AF_INET6;
/** Stream sockets (TCP, Unix streams). */
export const SOCK_STREAM: number = C.SOCK_STREAM;
/** Datagram sockets (UDP, Unix datagrams). */
export const SOCK_DGRAM: number = C.SOCK_DGRAM;
/** socket(2) type flag: non-blocking; 0 where there is none (macOS). */
export const SOCK_NONBLOCK: number = C.SOCK_NONBLOCK;
/** socket(2) type flag: close-on-exec; 0 where there is none (macOS). */
export const SOCK_CLOEXEC: number = C.SOCK_CLOEXEC;
/** Socket-level options (1 on Linux, 0xffff on the BSDs and macOS). */
export const SOL_SOCKET: number = C.SOL_SOCKET;
/** Allow reuse of a local address in TIME_WAIT. */
export const SO_REUSEADDR: number = C.SO_REUSEADDR;
/** TCP keep-alive probes. */
export const SO_KEEPALIVE: number = C.SO_KEEPALIVE;
/** Allow sending broadcast datagrams. */
export const SO_BROADCAST: number = C.SO_BROADCAST;
/** Several sockets may bind the same address and port. */
export const SO_REUSEPORT: number = C.SO_REUSEPORT;
/** Send buffer size. */
export const SO_SNDBUF: number = C.SO_SNDBUF;
/** Receive buffer size. */
export const SO_RCVBUF: number = C.SO_RCVBUF;
/** The pending socket error (read and cleared). */
export const SO_ERROR: number = C.SO_ERROR;
/** No SIGPIPE on a broken connection (EPIPE instead); 0 where there is none. */
export const SO_NOSIGPIPE: number = C.SO_NOSIGPIPE;
/** TCP. */
export const IPPROTO_TCP: number = C.IPPROTO_TCP;
/** UDP. */
export const IPPROTO_UDP: number = C.IPPROTO_UDP;
/** IPv6-level options. */
export const IPPROTO_IPV6: number = C.IPPROTO_IPV6;
/** Disable Nagle's algorithm. */
export const TCP_NODELAY: number = C.TCP_NODELAY;
/** An AF_INET6 socket accepts IPv6 only. */
export const IPV6_V6ONLY: number = C.IPV6_V6ONLY;
/** shutdown(2): no more receptions. */
export const SHUT_RD: number = C.SHUT_RD;
/** shutdown(2): no more transmissions (sends FIN). */
export const SHUT_WR: number = C.SHUT_WR;
/** shutdown(2): both. */
export const SHUT_RDWR: number = C.SHUT_RDWR;
/** The listen backlog ceiling of the C headers (the kernel may cap it lower). */
export const SOMAXCONN: number = C.SOMAXCONN;
/** send(2) flag: no SIGPIPE on a broken connection (EPIPE instead). */
export const MSG_NOSIGNAL: number = C.MSG_NOSIGNAL;
/** open(2): read only. */
export const O_RDONLY: number = C.O_RDONLY;
/** open(2): write only. */
export const O_WRONLY: number = C.O_WRONLY;
/** open(2): read and write. */
export const O_RDWR: number = C.O_RDWR;
/** open(2)/fcntl(2): non-blocking. */
export const O_NONBLOCK: number = C.O_NONBLOCK;
/** open(2): close-on-exec. */
export const O_CLOEXEC: number = C.O_CLOEXEC;
/** open(2): create if missing. */
export const O_CREAT: number = C.O_CREAT;
/** open(2): truncate. */
export const O_TRUNC: number = C.O_TRUNC;
/** fcntl(2): get the descriptor flags (FD_CLOEXEC). */
export const F_GETFD: number = C.F_GETFD;
/** fcntl(2): set the descriptor flags. */
export const F_SETFD: number = C.F_SETFD;
/** fcntl(2): get the file status flags (O_NONBLOCK). */
export const F_GETFL: number = C.F_GETFL;
/** fcntl(2): set the file status flags. */
export const F_SETFL: number = C.F_SETFL;
/** The close-on-exec descriptor flag. */
export const FD_CLOEXEC: number = C.FD_CLOEXEC;
/** lseek(2): the offset is absolute. */
export const SEEK_SET: number = C.SEEK_SET;
/** getaddrinfo flag: the address is for bind() (any address when host is null). */
export const AI_PASSIVE: number = C.AI_PASSIVE;
/** getaddrinfo flag: fill in the canonical name. */
export const AI_CANONNAME: number = C.AI_CANONNAME;
/** getaddrinfo flag: the host must be numeric. */
export const AI_NUMERICHOST: number = C.AI_NUMERICHOST;
/** getaddrinfo flag: the service must be numeric. */
export const AI_NUMERICSERV: number = C.AI_NUMERICSERV;
/** getaddrinfo flag: only families configured on this host. */
export const AI_ADDRCONFIG: number = C.AI_ADDRCONFIG;
/** getnameinfo flag: numeric host. */
export const NI_NUMERICHOST: number = C.NI_NUMERICHOST;
/** getnameinfo flag: numeric service. */
export const NI_NUMERICSERV: number = C.NI_NUMERICSERV;
/** getnameinfo flag: fail when the name is not found. */
export const NI_NAMEREQD: number = C.NI_NAMEREQD;
/** getnameinfo flag: the service is a datagram one (udp). */
export const NI_DGRAM: number = C.NI_DGRAM;

// errno values the bindings test for.
/** Operation not permitted. */
export const EPERM: number = E.EPERM;
/** No such file or directory. */
export const ENOENT: number = E.ENOENT;
/** Interrupted system call. */
export const EINTR: number = E.EINTR;
/** Bad file descriptor. */
export const EBADF: number = E.EBADF;
/** Resource temporarily unavailable (EWOULDBLOCK): 11 on Linux, 35 elsewhere. */
export const EAGAIN: number = E.EAGAIN;
/** File exists. */
export const EEXIST: number = E.EEXIST;
/** Invalid argument. */
export const EINVAL: number = E.EINVAL;
/** Function not implemented. */
export const ENOSYS: number = E.ENOSYS;
/** A non-blocking connect has started. */
export const EINPROGRESS: number = E.EINPROGRESS;

/**
 * FreeBSD, OpenBSD and NetBSD constants: one shared 4.4BSD base and one
 * table per system for what differs. 64-bit (LP64) systems only.
 *
 * - FreeBSD 12+ (`sys/sys/*.h`, `sys/netinet*`, `include/netdb.h`; values
 *   read from FreeBSD 14's headers, unchanged since 12 unless noted).
 * - OpenBSD 7.x (`sys/sys/*.h`, `include/netdb.h`; 7.5 headers).
 * - NetBSD 9+ (`sys/sys/*.h`, `include/netdb.h`; NetBSD 10 headers).
 *
 * Check them against a source checkout (or an installed /usr/include) with
 * `node scripts/check-headers.mjs --freebsd <src>` (`--openbsd`,
 * `--netbsd`). The kqueue numbers are not here: the kqueue files next to this one have them.
 *
 * @module
 */
import type { ConstantName, PlatformTable } from "../posix/table.ts";

// errno 1-81, the same on every BSD (sys/sys/errno.h), and on macOS.
const BSD_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EDEADLK: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  EAGAIN: 35,
  EINPROGRESS: 36,
  EALREADY: 37,
  ENOTSOCK: 38,
  EDESTADDRREQ: 39,
  EMSGSIZE: 40,
  EPROTOTYPE: 41,
  ENOPROTOOPT: 42,
  EPROTONOSUPPORT: 43,
  ESOCKTNOSUPPORT: 44,
  EOPNOTSUPP: 45,
  EPFNOSUPPORT: 46,
  EAFNOSUPPORT: 47,
  EADDRINUSE: 48,
  EADDRNOTAVAIL: 49,
  ENETDOWN: 50,
  ENETUNREACH: 51,
  ENETRESET: 52,
  ECONNABORTED: 53,
  ECONNRESET: 54,
  ENOBUFS: 55,
  EISCONN: 56,
  ENOTCONN: 57,
  ESHUTDOWN: 58,
  ETOOMANYREFS: 59,
  ETIMEDOUT: 60,
  ECONNREFUSED: 61,
  ELOOP: 62,
  ENAMETOOLONG: 63,
  EHOSTDOWN: 64,
  EHOSTUNREACH: 65,
  ENOTEMPTY: 66,
  EPROCLIM: 67,
  EUSERS: 68,
  EDQUOT: 69,
  ESTALE: 70,
  EREMOTE: 71,
  EBADRPC: 72,
  ERPCMISMATCH: 73,
  EPROGUNAVAIL: 74,
  EPROGMISMATCH: 75,
  EPROCUNAVAIL: 76,
  ENOLCK: 77,
  ENOSYS: 78,
  EFTYPE: 79,
  EAUTH: 80,
  ENEEDAUTH: 81,
} as const;

// The socket, fcntl and open values the three share (sys/sys/socket.h,
// sys/sys/fcntl.h, sys/netinet/in.h, sys/netinet/tcp.h,
// sys/netinet6/in6.h, sys/sys/unistd.h).
const BSD_COMMON = {
  AF_UNSPEC: 0,
  AF_UNIX: 1,
  AF_INET: 2,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOL_SOCKET: 0xffff,
  SO_REUSEADDR: 0x0004,
  SO_KEEPALIVE: 0x0008,
  SO_BROADCAST: 0x0020,
  SO_REUSEPORT: 0x0200,
  SO_SNDBUF: 0x1001,
  SO_RCVBUF: 0x1002,
  SO_ERROR: 0x1007,
  IPPROTO_TCP: 6,
  IPPROTO_UDP: 17,
  IPPROTO_IPV6: 41,
  TCP_NODELAY: 0x01,
  IPV6_V6ONLY: 27,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  SOMAXCONN: 128,
  O_RDONLY: 0x0000,
  O_WRONLY: 0x0001,
  O_RDWR: 0x0002,
  O_NONBLOCK: 0x0004,
  O_CREAT: 0x0200,
  O_TRUNC: 0x0400,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  FD_CLOEXEC: 1,
  SEEK_SET: 0,
} as const;

// include/netdb.h of FreeBSD and NetBSD (KAME): the same flags and the same
// positive getaddrinfo results (macOS has these results too).
const KAME_NETDB = {
  AI_PASSIVE: 0x00000001,
  AI_CANONNAME: 0x00000002,
  AI_NUMERICHOST: 0x00000004,
  AI_NUMERICSERV: 0x00000008,
  AI_ADDRCONFIG: 0x00000400,
  NI_NUMERICHOST: 0x00000002,
  NI_NUMERICSERV: 0x00000008,
  NI_NAMEREQD: 0x00000004,
  NI_DGRAM: 0x00000010,
} as const;
const KAME_GAI_ERRORS = {
  EAI_ADDRFAMILY: 1,
  EAI_AGAIN: 2,
  EAI_BADFLAGS: 3,
  EAI_FAIL: 4,
  EAI_FAMILY: 5,
  EAI_MEMORY: 6,
  EAI_NODATA: 7,
  EAI_NONAME: 8,
  EAI_SERVICE: 9,
  EAI_SOCKTYPE: 10,
  EAI_SYSTEM: 11,
  EAI_BADHINTS: 12,
  EAI_PROTOCOL: 13,
  EAI_OVERFLOW: 14,
} as const;

// struct addrinfo, LP64: FreeBSD and NetBSD put ai_canonname before
// ai_addr (as macOS does); OpenBSD puts ai_addr first (as glibc does).
const ADDRINFO_CANONNAME_FIRST = {
  size: 48,
  flags: 0,
  family: 4,
  socktype: 8,
  protocol: 12,
  addrlen: 16,
  canonname: 24,
  addr: 32,
  next: 40,
} as const;

// Every BSD: u8 sin_len/sin6_len/sun_len before a u8 family, sun_path[104].
const BSD_SOCKADDR = {
  sinLen: true,
  sunPathSize: 104,
  abstractNames: false,
} as const;

type Constants = Readonly<Record<ConstantName, number>>;

/** The FreeBSD table (FreeBSD 12+, amd64 and arm64). */
export const FREEBSD: PlatformTable = {
  os: "freebsd",
  source: "FreeBSD 14 headers (sys/sys, sys/netinet*, include/netdb.h); " +
    "FreeBSD 12+",
  libc: "libc.so.7",
  constants: {
    ...BSD_COMMON,
    ...KAME_NETDB,
    AF_INET6: 28, // sys/sys/socket.h
    SOCK_NONBLOCK: 0x20000000, // FreeBSD 10+
    SOCK_CLOEXEC: 0x10000000,
    SO_NOSIGPIPE: 0x0800,
    MSG_NOSIGNAL: 0x00020000,
    O_CLOEXEC: 0x00100000, // sys/sys/fcntl.h
  } satisfies Constants,
  errno: {
    ...BSD_ERRNO,
    // sys/sys/errno.h, FreeBSD 12+
    EIDRM: 82,
    ENOMSG: 83,
    EOVERFLOW: 84,
    ECANCELED: 85,
    EILSEQ: 86,
    ENOATTR: 87,
    EDOOFUS: 88,
    EBADMSG: 89,
    EMULTIHOP: 90,
    ENOLINK: 91,
    EPROTO: 92,
    ENOTCAPABLE: 93,
    ECAPMODE: 94,
    ENOTRECOVERABLE: 95,
    EOWNERDEAD: 96,
    EINTEGRITY: 97, // FreeBSD 12.1+
    EWOULDBLOCK: BSD_ERRNO.EAGAIN,
    ENOTSUP: BSD_ERRNO.EOPNOTSUPP,
  },
  gaiErrors: KAME_GAI_ERRORS,
  noSigpipe: "MSG_NOSIGNAL",
  sockaddr: BSD_SOCKADDR,
  addrinfo: ADDRINFO_CANONNAME_FIRST,
  symbols: {
    errnoLocation: "__error", // sys/sys/errno.h
    pipe2: true, // FreeBSD 10.0
    accept4: true, // FreeBSD 10.0
    eventfd: false, // FreeBSD 13 has one; the self-pipe serves everywhere
    epoll: false,
    // int sendfile(int fd, int s, off_t offset, size_t nbytes,
    //              struct sf_hdtr *hdtr, off_t *sbytes, int flags);
    // not bound: the loop reads and sends.
    sendfile: null,
    socket: "socket",
  },
};

/** The OpenBSD table (OpenBSD 7.x, amd64 and arm64). */
export const OPENBSD: PlatformTable = {
  os: "openbsd",
  source: "OpenBSD 7.5 headers (sys/sys, sys/netinet*, include/netdb.h)",
  // OpenBSD's ld.so takes the highest libc.so.MAJOR.MINOR for "libc.so".
  libc: "libc.so",
  constants: {
    ...BSD_COMMON,
    AF_INET6: 24, // sys/sys/socket.h
    SOCK_NONBLOCK: 0x4000, // OpenBSD 5.7+
    SOCK_CLOEXEC: 0x8000,
    SO_NOSIGPIPE: 0, // none: MSG_NOSIGNAL on every send
    MSG_NOSIGNAL: 0x400,
    O_CLOEXEC: 0x10000, // sys/sys/fcntl.h
    // include/netdb.h (OpenBSD's own, not KAME's numbers)
    AI_PASSIVE: 1,
    AI_CANONNAME: 2,
    AI_NUMERICHOST: 4,
    AI_NUMERICSERV: 16,
    AI_ADDRCONFIG: 64, // OpenBSD 5.9+
    NI_NUMERICHOST: 1,
    NI_NUMERICSERV: 2,
    NI_NAMEREQD: 8,
    NI_DGRAM: 16,
  } satisfies Constants,
  errno: {
    ...BSD_ERRNO,
    // sys/sys/errno.h, OpenBSD 6.1+
    EIPSEC: 82,
    ENOATTR: 83,
    EILSEQ: 84,
    ENOMEDIUM: 85,
    EMEDIUMTYPE: 86,
    EOVERFLOW: 87,
    ECANCELED: 88,
    EIDRM: 89,
    ENOMSG: 90,
    ENOTSUP: 91,
    EBADMSG: 92,
    ENOTRECOVERABLE: 93,
    EOWNERDEAD: 94,
    EPROTO: 95,
    EWOULDBLOCK: BSD_ERRNO.EAGAIN,
  },
  // include/netdb.h: negative, as glibc's, but numbered on to -14.
  gaiErrors: {
    EAI_BADFLAGS: -1,
    EAI_NONAME: -2,
    EAI_AGAIN: -3,
    EAI_FAIL: -4,
    EAI_NODATA: -5,
    EAI_FAMILY: -6,
    EAI_SOCKTYPE: -7,
    EAI_SERVICE: -8,
    EAI_ADDRFAMILY: -9,
    EAI_MEMORY: -10,
    EAI_SYSTEM: -11,
    EAI_BADHINTS: -12,
    EAI_PROTOCOL: -13,
    EAI_OVERFLOW: -14,
  },
  noSigpipe: "MSG_NOSIGNAL",
  sockaddr: BSD_SOCKADDR,
  // include/netdb.h: ai_addr before ai_canonname.
  addrinfo: { ...ADDRINFO_CANONNAME_FIRST, addr: 24, canonname: 32 },
  symbols: {
    errnoLocation: "__errno", // sys/sys/errno.h
    pipe2: true, // OpenBSD 5.3
    accept4: true, // OpenBSD 5.7
    eventfd: false,
    epoll: false,
    sendfile: null, // none
    socket: "socket",
  },
};

/** The NetBSD table (NetBSD 9+, amd64 and aarch64). */
export const NETBSD: PlatformTable = {
  os: "netbsd",
  source: "NetBSD 10 headers (sys/sys, sys/netinet*, include/netdb.h); " +
    "NetBSD 9+",
  libc: "libc.so.12",
  constants: {
    ...BSD_COMMON,
    ...KAME_NETDB,
    AF_INET6: 24, // sys/sys/socket.h
    SOCK_NONBLOCK: 0x20000000, // NetBSD 6+
    SOCK_CLOEXEC: 0x10000000,
    SO_NOSIGPIPE: 0x0800,
    MSG_NOSIGNAL: 0x0400,
    O_CLOEXEC: 0x00400000, // sys/sys/fcntl.h
  } satisfies Constants,
  errno: {
    ...BSD_ERRNO,
    // sys/sys/errno.h, NetBSD 7+
    EIDRM: 82,
    ENOMSG: 83,
    EOVERFLOW: 84,
    EILSEQ: 85,
    ENOTSUP: 86,
    ECANCELED: 87,
    EBADMSG: 88,
    ENODATA: 89,
    ENOSR: 90,
    ENOSTR: 91,
    ETIME: 92,
    ENOATTR: 93,
    EMULTIHOP: 94,
    ENOLINK: 95,
    EPROTO: 96,
    EOWNERDEAD: 97,
    ENOTRECOVERABLE: 98,
    EWOULDBLOCK: BSD_ERRNO.EAGAIN,
  },
  gaiErrors: KAME_GAI_ERRORS,
  noSigpipe: "MSG_NOSIGNAL",
  sockaddr: BSD_SOCKADDR,
  addrinfo: ADDRINFO_CANONNAME_FIRST,
  symbols: {
    errnoLocation: "__errno", // sys/sys/errno.h
    pipe2: true, // NetBSD 6.0
    accept4: true, // NetBSD 8.0
    eventfd: false, // NetBSD 10 has one; the self-pipe serves everywhere
    epoll: false,
    sendfile: null, // none
    // sys/sys/socket.h: int socket(int, int, int) __RENAME(__socket30);
    socket: "__socket30",
  },
};

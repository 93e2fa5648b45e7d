/**
 * The constant tables of the POSIX systems we run on, and the choice among
 * them. One table per OS, each value defined once, next to the header it
 * comes from: `../linux/constants.ts` (glibc, Linux x86-64 and aarch64),
 * `../darwin/constants.ts` (macOS, xnu and Libinfo headers),
 * `../bsd/constants.ts` (FreeBSD 12+, OpenBSD, NetBSD).
 *
 * Nothing here loads a library: {@link platformTable} takes any OS name, so
 * tests can check the macOS or FreeBSD table (and what would be bound with
 * it) on Linux. `../platform.ts` exports the values of this machine's table
 * by name; the files that `platform.ts` itself imports (libc, the wakers)
 * read {@link hostTable} from here instead, to keep the imports acyclic.
 * `scripts/check-headers.mjs` compares the tables with the C headers.
 *
 * @module
 */
import { platform } from "../../runtime.ts";
import { LINUX } from "../linux/constants.ts";
import { DARWIN } from "../darwin/constants.ts";
import { FREEBSD, NETBSD, OPENBSD } from "../bsd/constants.ts";

/**
 * The names every table defines (the same set in each; 0 marks a flag or
 * option the OS does not have, such as SOCK_NONBLOCK on macOS).
 */
export const CONSTANT_NAMES = [
  "AF_UNSPEC",
  "AF_UNIX",
  "AF_INET",
  "AF_INET6",
  "SOCK_STREAM",
  "SOCK_DGRAM",
  "SOCK_NONBLOCK",
  "SOCK_CLOEXEC",
  "SOL_SOCKET",
  "SO_REUSEADDR",
  "SO_KEEPALIVE",
  "SO_BROADCAST",
  "SO_REUSEPORT",
  "SO_SNDBUF",
  "SO_RCVBUF",
  "SO_ERROR",
  "SO_NOSIGPIPE",
  "IPPROTO_TCP",
  "IPPROTO_UDP",
  "IPPROTO_IPV6",
  "TCP_NODELAY",
  "IPV6_V6ONLY",
  "SHUT_RD",
  "SHUT_WR",
  "SHUT_RDWR",
  "SOMAXCONN",
  "MSG_NOSIGNAL",
  "O_RDONLY",
  "O_WRONLY",
  "O_RDWR",
  "O_NONBLOCK",
  "O_CLOEXEC",
  "O_CREAT",
  "O_TRUNC",
  "F_GETFD",
  "F_SETFD",
  "F_GETFL",
  "F_SETFL",
  "FD_CLOEXEC",
  "SEEK_SET",
  "AI_PASSIVE",
  "AI_CANONNAME",
  "AI_NUMERICHOST",
  "AI_NUMERICSERV",
  "AI_ADDRCONFIG",
  "NI_NUMERICHOST",
  "NI_NUMERICSERV",
  "NI_NAMEREQD",
  "NI_DGRAM",
] as const;

/** A name of {@link CONSTANT_NAMES}. */
export type ConstantName = typeof CONSTANT_NAMES[number];

/** The names a system may lack: 0 in its table means "no such flag". */
export const OPTIONAL_CONSTANTS: readonly ConstantName[] = [
  "SOCK_NONBLOCK",
  "SOCK_CLOEXEC",
  "SO_NOSIGPIPE",
  "MSG_NOSIGNAL",
];

/**
 * The errno names every table defines (POSIX, plus the BSD socket errors
 * every system here has). A table may define more (EPROCLIM, ECHRNG, ...).
 */
export const COMMON_ERRNO = [
  "EPERM",
  "ENOENT",
  "ESRCH",
  "EINTR",
  "EIO",
  "ENXIO",
  "E2BIG",
  "ENOEXEC",
  "EBADF",
  "ECHILD",
  "EDEADLK",
  "ENOMEM",
  "EACCES",
  "EFAULT",
  "ENOTBLK",
  "EBUSY",
  "EEXIST",
  "EXDEV",
  "ENODEV",
  "ENOTDIR",
  "EISDIR",
  "EINVAL",
  "ENFILE",
  "EMFILE",
  "ENOTTY",
  "ETXTBSY",
  "EFBIG",
  "ENOSPC",
  "ESPIPE",
  "EROFS",
  "EMLINK",
  "EPIPE",
  "EDOM",
  "ERANGE",
  "EAGAIN",
  "EWOULDBLOCK",
  "EINPROGRESS",
  "EALREADY",
  "ENOTSOCK",
  "EDESTADDRREQ",
  "EMSGSIZE",
  "EPROTOTYPE",
  "ENOPROTOOPT",
  "EPROTONOSUPPORT",
  "ESOCKTNOSUPPORT",
  "ENOTSUP",
  "EOPNOTSUPP",
  "EPFNOSUPPORT",
  "EAFNOSUPPORT",
  "EADDRINUSE",
  "EADDRNOTAVAIL",
  "ENETDOWN",
  "ENETUNREACH",
  "ENETRESET",
  "ECONNABORTED",
  "ECONNRESET",
  "ENOBUFS",
  "EISCONN",
  "ENOTCONN",
  "ESHUTDOWN",
  "ETOOMANYREFS",
  "ETIMEDOUT",
  "ECONNREFUSED",
  "ELOOP",
  "ENAMETOOLONG",
  "EHOSTDOWN",
  "EHOSTUNREACH",
  "ENOTEMPTY",
  "EUSERS",
  "EDQUOT",
  "ESTALE",
  "EREMOTE",
  "ENOLCK",
  "ENOSYS",
  "EOVERFLOW",
  "ECANCELED",
  "EIDRM",
  "ENOMSG",
  "EILSEQ",
  "EBADMSG",
  "EPROTO",
  "ENOTRECOVERABLE",
  "EOWNERDEAD",
] as const;

/** A name of {@link COMMON_ERRNO}. */
export type CommonErrno = typeof COMMON_ERRNO[number];

/** The getaddrinfo/getnameinfo result names every table defines. */
export const COMMON_GAI_ERRORS = [
  "EAI_ADDRFAMILY",
  "EAI_AGAIN",
  "EAI_BADFLAGS",
  "EAI_FAIL",
  "EAI_FAMILY",
  "EAI_MEMORY",
  "EAI_NODATA",
  "EAI_NONAME",
  "EAI_SERVICE",
  "EAI_SOCKTYPE",
  "EAI_SYSTEM",
  "EAI_OVERFLOW",
] as const;

/** A name of {@link COMMON_GAI_ERRORS}. */
export type CommonGaiError = typeof COMMON_GAI_ERRORS[number];

/**
 * errno values by name. Order matters: the first name given for a number is
 * the one {@link errnoName} reports, so aliases (EWOULDBLOCK, EDEADLOCK)
 * come after the name they alias.
 */
export type ErrnoTable =
  & Readonly<Record<CommonErrno, number>>
  & Readonly<Record<string, number>>;

/** getaddrinfo/getnameinfo results by name (glibc and OpenBSD: negative). */
export type GaiTable =
  & Readonly<Record<CommonGaiError, number>>
  & Readonly<Record<string, number>>;

/** Offsets in `struct addrinfo` (LP64: 48 bytes everywhere). */
export interface AddrinfoLayout {
  /** sizeof(struct addrinfo). */
  readonly size: number;
  /** ai_flags (int). */
  readonly flags: number;
  /** ai_family (int). */
  readonly family: number;
  /** ai_socktype (int). */
  readonly socktype: number;
  /** ai_protocol (int). */
  readonly protocol: number;
  /** ai_addrlen (socklen_t). */
  readonly addrlen: number;
  /** ai_addr (struct sockaddr *). */
  readonly addr: number;
  /** ai_canonname (char *). */
  readonly canonname: number;
  /** ai_next (struct addrinfo *). */
  readonly next: number;
}

/** What the socket address structures look like on one OS. */
export interface SockaddrFacts {
  /**
   * BSD family (macOS and the BSDs): every sockaddr starts with a u8 length
   * (`sin_len`, `sin6_len`, `sun_len`) and a u8 family. Linux: a u16 family.
   */
  readonly sinLen: boolean;
  /** The size of `sun_path` (Linux 108, the BSDs and macOS 104). */
  readonly sunPathSize: number;
  /** Unix socket names in the abstract namespace (a leading NUL; Linux). */
  readonly abstractNames: boolean;
}

/** Which C symbols exist, and under which names. */
export interface SymbolFacts {
  /** The function that returns this thread's `int *errno`. */
  readonly errnoLocation: "__errno_location" | "__error" | "__errno";
  /** `int pipe2(int fds[2], int flags)`; otherwise pipe() + fcntl(). */
  readonly pipe2: boolean;
  /** `int accept4(int, struct sockaddr *, socklen_t *, int flags)`. */
  readonly accept4: boolean;
  /** `int eventfd(unsigned int, int)` (Linux). */
  readonly eventfd: boolean;
  /** epoll_create1/epoll_ctl/epoll_wait (Linux). */
  readonly epoll: boolean;
  /**
   * The sendfile(2) we bind: "linux" is
   * `ssize_t sendfile(int out, int in, off_t *offset, size_t count)`; null
   * means none (macOS and FreeBSD have other signatures, not bound: a
   * Socket there answers ENOSYS and the loop reads and sends instead).
   */
  readonly sendfile: "linux" | null;
  /** The C name of socket(2): NetBSD's header renames it `__socket30`. */
  readonly socket: string;
}

/** One OS: its constants, errno and getaddrinfo numbers, layouts, symbols. */
export interface PlatformTable {
  /** The OS, as `process.platform` names it. */
  readonly os: string;
  /** Where the values come from (headers, releases). */
  readonly source: string;
  /** The C library to open. */
  readonly libc: string;
  /** Socket, fcntl, open and getaddrinfo flag constants. */
  readonly constants: Readonly<Record<ConstantName, number>>;
  /** errno values by name. */
  readonly errno: ErrnoTable;
  /** getaddrinfo/getnameinfo results by name. */
  readonly gaiErrors: GaiTable;
  /** How sends avoid SIGPIPE: a send flag, or a socket option set once. */
  readonly noSigpipe: "MSG_NOSIGNAL" | "SO_NOSIGPIPE";
  /** sockaddr layout facts. */
  readonly sockaddr: SockaddrFacts;
  /** `struct addrinfo` offsets. */
  readonly addrinfo: AddrinfoLayout;
  /** Which symbols exist. */
  readonly symbols: SymbolFacts;
}

const TABLES: Readonly<Record<string, PlatformTable>> = {
  linux: LINUX,
  darwin: DARWIN,
  freebsd: FREEBSD,
  openbsd: OPENBSD,
  netbsd: NETBSD,
};

/** The OS names that have a table (and sockets), as `process.platform` spells them. */
export const POSIX_PLATFORMS: readonly string[] = Object.keys(TABLES);

/** The table of `os` (a `process.platform` name); RangeError if there is none. */
export function platformTable(os: string): PlatformTable {
  const table = TABLES[os];
  if (!table) {
    throw new RangeError(
      `no constant table for platform '${os}' (have: ${
        POSIX_PLATFORMS.join(", ")
      })`,
    );
  }
  return table;
}

/**
 * This machine's table. An OS without one (Windows, Android...) gets the
 * Linux table so that the modules load; nothing that needs libc works there
 * ({@link hasHostTable} is false, and sockets say so).
 */
export const hostTable: PlatformTable = TABLES[platform] ?? LINUX;

/** Whether this OS has its own table (one of {@link POSIX_PLATFORMS}). */
export const hasHostTable: boolean = platform in TABLES;

const errnoNames = new Map<PlatformTable, Map<number, string>>();

function firstNames(record: Readonly<Record<string, number>>) {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(record)) {
    if (!names.has(value)) names.set(value, name);
  }
  return names;
}

/** The name of errno value `code` (`EBADF`, ...); `E<n>` when unknown. */
export function errnoName(code: number, table = hostTable): string {
  let names = errnoNames.get(table);
  if (!names) errnoNames.set(table, names = firstNames(table.errno));
  return names.get(code) ?? `E${code}`;
}

const gaiNames = new Map<PlatformTable, Map<number, string>>();

/** The name of a getaddrinfo result (`EAI_NONAME`, ...); `EAI_<n>` when unknown. */
export function gaiErrorName(code: number, table = hostTable): string {
  let names = gaiNames.get(table);
  if (!names) gaiNames.set(table, names = firstNames(table.gaiErrors));
  return names.get(code) ?? `EAI_${Math.abs(code)}`;
}

/*
 * echo-load: the load generator of the TCP echo benchmark (bench/echo.mjs).
 *
 *   echo-load PORT CONNS SIZE SECONDS
 *
 * Opens CONNS TCP connections (1..10000) to 127.0.0.1:PORT (loopback only),
 * non-blocking, with TCP_NODELAY. Once every connection is up (or failed;
 * at most 5 s), each one sends a message of SIZE bytes (1..16777216), waits
 * for its whole echo, checks that the echoed bytes are the bytes it sent,
 * and sends the next message, for SECONDS seconds (a number, more than 0,
 * at most 600). Single-threaded, one epoll set (edge-triggered).
 *
 * Messages still in flight when the time is up are not counted. Every
 * message differs from the one before (it starts, and from 16 bytes on
 * ends, with its sequence number), so a stale or repeated echo is a
 * mismatch too.
 *
 * Output, one line on stdout:
 *
 *   msgs_per_s=N mib_per_s=X p50_us=N p99_us=N conns=N size=N errors=N
 *
 * msgs_per_s counts complete round trips over the timed run; mib_per_s is
 * the bytes sent plus the bytes received; p50_us / p99_us are percentiles
 * of the round-trip time of one message (from its first byte sent to its
 * last byte received), from a log-linear histogram (error < 0.1%).
 * errors counts failed connects, failed sends / receives, connections the
 * server closed and echoes that did not match; a connection with an error
 * is closed and takes no further part. Each kind of error is described on
 * stderr (the first few occurrences, then a summary line).
 *
 * Exit status: 0; 1 when errors > 0 (the line is printed all the same);
 * 2 for a bad command line or when the run cannot start (no line).
 *
 * Build: cc -O2 -Wall -Wextra -o echo-load echo-load.c   (Linux)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 10000
#define MAX_SIZE (16L * 1024 * 1024)
#define MAX_SECONDS 600.0
#define CONNECT_TIMEOUT_NS (5LL * 1000000000LL)
#define READ_CHUNK (256 * 1024)
#define MAX_EVENTS 256
#define REPORTED_PER_KIND 3

/* -- latency histogram (ns, log-linear: 1024 sub-buckets per power of 2) -- */

#define SUB_BITS 10
#define SUB_COUNT (1 << SUB_BITS)
#define BUCKETS (64 * SUB_COUNT)

static uint64_t histogram[BUCKETS];
static uint64_t samples;

static int msb64(uint64_t v) { return 63 - __builtin_clzll(v); }

static void record(uint64_t ns) {
    size_t bucket;
    if (ns < 2 * SUB_COUNT) {
        bucket = (size_t)ns;
    } else {
        int shift = msb64(ns) - SUB_BITS;
        bucket = (size_t)shift * SUB_COUNT + (size_t)(ns >> shift);
    }
    histogram[bucket]++;
    samples++;
}

/* The middle of the values a bucket holds. */
static double bucket_value(size_t bucket) {
    if (bucket < 2 * SUB_COUNT) return (double)bucket;
    int shift = (int)(bucket / SUB_COUNT) - 1;
    uint64_t mantissa = bucket - (uint64_t)shift * SUB_COUNT;
    return (double)(mantissa << shift) + (double)((1ULL << shift) / 2);
}

/* The p-th percentile (0 < p <= 100) in ns; 0 without samples. */
static double percentile(unsigned p) {
    if (samples == 0) return 0;
    uint64_t rank = (samples * p + 99) / 100; /* at least 1 */
    uint64_t seen = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
        seen += histogram[b];
        if (seen >= rank) return bucket_value(b);
    }
    return 0;
}

/* -- clock ---------------------------------------------------------------- */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Milliseconds to wait for `deadline` (rounded up), at least 0. */
static int wait_ms(int64_t deadline) {
    int64_t left = deadline - now_ns();
    if (left <= 0) return 0;
    return (int)((left + 999999) / 1000000);
}

/* -- errors ----------------------------------------------------------------- */

enum kind { E_CONNECT, E_IO, E_CLOSED, E_MISMATCH, KINDS };
static const char *const kind_names[KINDS] = {
    "connect", "send/recv", "closed by the server", "mismatched echo"};
static uint64_t error_counts[KINDS];

static void count_error(enum kind kind, int conn, const char *what) {
    if (error_counts[kind]++ < REPORTED_PER_KIND) {
        fprintf(stderr, "echo-load: error: connection %d: %s\n", conn, what);
    }
}

/* -- connections ------------------------------------------------------------ */

enum state { CONNECTING, RUNNING, DONE };

struct conn {
    int fd;
    int id;
    enum state state;
    uint64_t seq;        /* sequence number of the current message */
    size_t sent;         /* bytes of the current message sent */
    size_t received;     /* bytes of its echo received and checked */
    int64_t started;     /* when its first byte went out */
    unsigned char *msg;  /* the current message */
};

static size_t size;
static unsigned char read_buf[READ_CHUNK];
static uint64_t completed;
static int running_conns;

static void finish(struct conn *c) {
    if (c->state == RUNNING) running_conns--;
    c->state = DONE;
    close(c->fd);
    c->fd = -1;
}

static void fail(struct conn *c, enum kind kind, const char *what) {
    char text[256];
    if (errno != 0 && (kind == E_CONNECT || kind == E_IO)) {
        snprintf(text, sizeof text, "%s: %s", what, strerror(errno));
        what = text;
    }
    count_error(kind, c->id, what);
    finish(c);
}

/* The body of every message of a connection: bytes from its id. */
static void fill_body(struct conn *c) {
    unsigned char x = (unsigned char)(c->id * 31 + 7);
    for (size_t i = 0; i < size; i++) c->msg[i] = (unsigned char)(x + i * 13);
}

/* Stamps the message with its sequence number, at its start and (from 16
 * bytes on) at its end, so that no echo of an earlier message matches. */
static void stamp_message(struct conn *c) {
    uint64_t seq = c->seq;
    size_t head = size < sizeof seq ? size : sizeof seq;
    memcpy(c->msg, &seq, head);
    if (size >= 2 * sizeof seq) {
        memcpy(c->msg + size - sizeof seq, &seq, sizeof seq);
    }
}

/* Sends what the socket takes of the current message; 0, or -1 if closed. */
static int send_some(struct conn *c) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, c->msg + c->sent, size - c->sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0; /* EPOLLOUT (edge-triggered) says when to go on */
        } else {
            fail(c, E_IO, "send");
            return -1;
        }
    }
    return 0;
}

static int start_message(struct conn *c) {
    c->seq++;
    stamp_message(c);
    c->sent = 0;
    c->received = 0;
    c->started = now_ns();
    return send_some(c);
}

/* Reads until EAGAIN, checking every echoed byte; starts the next message
 * when one is complete. 0, or -1 when the connection is closed. */
static int receive_some(struct conn *c) {
    for (;;) {
        size_t want = size - c->received;
        if (want > sizeof read_buf) want = sizeof read_buf;
        ssize_t n = recv(c->fd, read_buf, want, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) {
            fail(c, E_IO, "recv");
            return -1;
        }
        if (n == 0) {
            errno = 0;
            fail(c, E_CLOSED, "the server closed the connection");
            return -1;
        }
        size_t got = (size_t)n;
        if (c->received + got > c->sent) {
            errno = 0;
            fail(c, E_MISMATCH, "received bytes it has not sent yet");
            return -1;
        }
        if (memcmp(read_buf, c->msg + c->received, got) != 0) {
            errno = 0;
            fail(c, E_MISMATCH, "the echo differs from the message sent");
            return -1;
        }
        c->received += got;
        if (c->received == size) {
            record((uint64_t)(now_ns() - c->started));
            completed++;
            /* No recv until EAGAIN here: the next echo cannot be queued
             * before the next message is sent, and its arrival is a new
             * edge (epoll(7): every chunk of data received raises one). */
            return start_message(c);
        }
    }
}

/* -- command line ------------------------------------------------------------- */

static void usage(const char *why) {
    fprintf(stderr,
            "echo-load: %s\n"
            "usage: echo-load PORT CONNS SIZE SECONDS\n"
            "  PORT     1..65535, on 127.0.0.1\n"
            "  CONNS    connections, 1..%d\n"
            "  SIZE     bytes per message, 1..%ld\n"
            "  SECONDS  duration, more than 0, at most %.0f\n",
            why, MAX_CONNS, MAX_SIZE, MAX_SECONDS);
    exit(2);
}

static long integer(const char *text, long least, long most,
                    const char *what) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < least ||
        value > most) {
        usage(what);
    }
    return value;
}

/* Makes room for `conns` sockets under RLIMIT_NOFILE, if allowed to. */
static void raise_fd_limit(long conns) {
    struct rlimit lim;
    rlim_t need = (rlim_t)conns + 32;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= need) return;
    lim.rlim_cur = need < lim.rlim_max ? need : lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
}

int main(int argc, char **argv) {
    if (argc != 5) usage("expected 4 arguments");
    int port = (int)integer(argv[1], 1, 65535, "PORT must be 1..65535");
    int nconns = (int)integer(argv[2], 1, MAX_CONNS, "CONNS out of range");
    size = (size_t)integer(argv[3], 1, MAX_SIZE, "SIZE out of range");
    char *end;
    double seconds = strtod(argv[4], &end);
    if (end == argv[4] || *end != '\0' || !(seconds > 0) ||
        seconds > MAX_SECONDS) {
        usage("SECONDS must be more than 0, at most 600");
    }

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(nconns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("echo-load: epoll_create1");
        return 2;
    }
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *messages = malloc((size_t)nconns * size);
    if (conns == NULL || messages == NULL) {
        fprintf(stderr, "echo-load: out of memory\n");
        return 2;
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* 1. connect everything, at most CONNECT_TIMEOUT_NS */
    int connecting = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->msg = messages + (size_t)i * size;
        fill_body(c);
        c->state = CONNECTING;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            count_error(E_CONNECT, i, strerror(errno));
            c->state = DONE;
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fail(c, E_CONNECT, "epoll_ctl");
            continue;
        }
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0 &&
            errno != EINPROGRESS) {
            fail(c, E_CONNECT, "connect");
            continue;
        }
        connecting++;
    }
    struct epoll_event events[MAX_EVENTS];
    int64_t connect_deadline = now_ns() + CONNECT_TIMEOUT_NS;
    while (connecting > 0) {
        int timeout = wait_ms(connect_deadline);
        if (timeout == 0) break;
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            perror("echo-load: epoll_wait");
            return 2;
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            if (c->state != CONNECTING) continue;
            if (!(events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                continue;
            }
            connecting--;
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
                err = errno;
            }
            if (err != 0) {
                errno = err;
                fail(c, E_CONNECT, "connect");
            } else {
                c->state = RUNNING;
                running_conns++;
            }
        }
    }
    for (int i = 0; i < nconns; i++) {
        if (conns[i].state == CONNECTING) {
            errno = 0;
            fail(&conns[i], E_CONNECT, "connect timed out after 5 s");
        }
    }

    /* 2. the timed run */
    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)(seconds * 1e9);
    for (int i = 0; i < nconns; i++) {
        if (conns[i].state == RUNNING) start_message(&conns[i]);
    }
    while (running_conns > 0) {
        int timeout = wait_ms(deadline);
        if (timeout == 0) break;
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            perror("echo-load: epoll_wait");
            return 2;
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            if (c->state != RUNNING) continue;
            if (c->sent < size && send_some(c) < 0) continue;
            receive_some(c);
        }
    }
    int64_t elapsed = now_ns() - start;
    for (int i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0) close(conns[i].fd);
    }
    close(ep);

    /* 3. the report */
    uint64_t errors = 0;
    for (int k = 0; k < KINDS; k++) errors += error_counts[k];
    double secs = (double)elapsed / 1e9;
    double rate = secs > 0 ? (double)completed / secs : 0;
    double mib = rate * (double)size * 2 / (1024.0 * 1024.0);
    printf("msgs_per_s=%.0f mib_per_s=%.1f p50_us=%.0f p99_us=%.0f "
           "conns=%d size=%zu errors=%llu\n",
           rate, mib, percentile(50) / 1000, percentile(99) / 1000, nconns,
           size, (unsigned long long)errors);
    if (errors > 0) {
        fprintf(stderr, "echo-load: %llu errors:",
                (unsigned long long)errors);
        for (int k = 0; k < KINDS; k++) {
            fprintf(stderr, "%s %s %llu", k == 0 ? "" : ",", kind_names[k],
                    (unsigned long long)error_counts[k]);
        }
        fprintf(stderr, "\n");
    }
    free(messages);
    free(conns);
    return errors > 0 ? 1 : 0;
}

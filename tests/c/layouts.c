/* Prints the C layouts our FFI bindings assume, as JSON (test fixture).
 * The constants are checked by a program generated from the tables
 * (tests/c/headers.ts). */
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(void) {
  printf("{\"epoll_event_size\":%zu,\"epoll_events_offset\":%zu,"
         "\"epoll_data_offset\":%zu,\"pollfd_size\":%zu,\"pollfd_fd\":%zu,"
         "\"pollfd_events\":%zu,\"pollfd_revents\":%zu,\"POLLIN\":%d,"
         "\"POLLOUT\":%d,\"POLLERR\":%d,\"POLLHUP\":%d,\"POLLNVAL\":%d,"
         "\"EPOLLIN\":%d,\"EPOLLOUT\":%d,\"EPOLL_CLOEXEC\":%d,"
         "\"EFD_CLOEXEC\":%d,\"EFD_NONBLOCK\":%d,\"O_NONBLOCK\":%d,"
         "\"O_CLOEXEC\":%d}\n",
         sizeof(struct epoll_event), offsetof(struct epoll_event, events),
         offsetof(struct epoll_event, data), sizeof(struct pollfd),
         offsetof(struct pollfd, fd), offsetof(struct pollfd, events),
         offsetof(struct pollfd, revents), POLLIN, POLLOUT, POLLERR, POLLHUP,
         POLLNVAL, EPOLLIN, EPOLLOUT, EPOLL_CLOEXEC, EFD_CLOEXEC,
         EFD_NONBLOCK, O_NONBLOCK, O_CLOEXEC);
  printf("{\"in_size\":%zu,\"in_family\":%zu,\"in_port\":%zu,\"in_addr\":%zu,"
         "\"in6_size\":%zu,\"in6_family\":%zu,\"in6_port\":%zu,"
         "\"in6_flowinfo\":%zu,\"in6_addr\":%zu,\"in6_scope_id\":%zu,"
         "\"un_size\":%zu,\"un_family\":%zu,\"un_path\":%zu,"
         "\"storage_size\":%zu,"
         "\"ai_size\":%zu,\"ai_flags\":%zu,\"ai_family\":%zu,"
         "\"ai_socktype\":%zu,\"ai_protocol\":%zu,\"ai_addrlen\":%zu,"
         "\"ai_addr\":%zu,\"ai_canonname\":%zu,\"ai_next\":%zu}\n",
         sizeof(struct sockaddr_in), offsetof(struct sockaddr_in, sin_family),
         offsetof(struct sockaddr_in, sin_port),
         offsetof(struct sockaddr_in, sin_addr), sizeof(struct sockaddr_in6),
         offsetof(struct sockaddr_in6, sin6_family),
         offsetof(struct sockaddr_in6, sin6_port),
         offsetof(struct sockaddr_in6, sin6_flowinfo),
         offsetof(struct sockaddr_in6, sin6_addr),
         offsetof(struct sockaddr_in6, sin6_scope_id),
         sizeof(struct sockaddr_un), offsetof(struct sockaddr_un, sun_family),
         offsetof(struct sockaddr_un, sun_path),
         sizeof(struct sockaddr_storage), sizeof(struct addrinfo),
         offsetof(struct addrinfo, ai_flags),
         offsetof(struct addrinfo, ai_family),
         offsetof(struct addrinfo, ai_socktype),
         offsetof(struct addrinfo, ai_protocol),
         offsetof(struct addrinfo, ai_addrlen),
         offsetof(struct addrinfo, ai_addr),
         offsetof(struct addrinfo, ai_canonname),
         offsetof(struct addrinfo, ai_next));
  return 0;
}

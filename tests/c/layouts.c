/* Prints the C layouts our FFI bindings assume, as JSON (test fixture). */
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
         "\"ai_addr\":%zu,\"ai_canonname\":%zu,\"ai_next\":%zu,",
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
  printf("\"AF_UNSPEC\":%d,\"AF_UNIX\":%d,\"AF_INET\":%d,\"AF_INET6\":%d,"
         "\"SOCK_STREAM\":%d,\"SOCK_DGRAM\":%d,\"SOCK_NONBLOCK\":%d,"
         "\"SOCK_CLOEXEC\":%d,\"SOL_SOCKET\":%d,\"SO_REUSEADDR\":%d,"
         "\"SO_ERROR\":%d,\"SO_BROADCAST\":%d,\"SO_SNDBUF\":%d,"
         "\"SO_RCVBUF\":%d,\"SO_KEEPALIVE\":%d,\"SO_REUSEPORT\":%d,"
         "\"IPPROTO_TCP\":%d,\"IPPROTO_UDP\":%d,\"IPPROTO_IPV6\":%d,"
         "\"TCP_NODELAY\":%d,\"IPV6_V6ONLY\":%d,\"SHUT_RD\":%d,"
         "\"SHUT_WR\":%d,\"SHUT_RDWR\":%d,\"MSG_NOSIGNAL\":%d,"
         "\"AI_PASSIVE\":%d,\"AI_CANONNAME\":%d,\"AI_NUMERICHOST\":%d,"
         "\"AI_ADDRCONFIG\":%d,\"AI_NUMERICSERV\":%d,\"NI_NUMERICHOST\":%d,"
         "\"NI_NUMERICSERV\":%d,\"NI_NAMEREQD\":%d,\"NI_DGRAM\":%d,"
         "\"EAI_NONAME\":%d,\"EAI_AGAIN\":%d,\"EAI_SERVICE\":%d}\n",
         AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM,
         SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, SO_REUSEADDR, SO_ERROR,
         SO_BROADCAST, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_REUSEPORT,
         IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6, TCP_NODELAY, IPV6_V6ONLY,
         SHUT_RD, SHUT_WR, SHUT_RDWR, MSG_NOSIGNAL, AI_PASSIVE, AI_CANONNAME,
         AI_NUMERICHOST, AI_ADDRCONFIG, AI_NUMERICSERV, NI_NUMERICHOST,
         NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM, EAI_NONAME, EAI_AGAIN,
         EAI_SERVICE);
  return 0;
}

/* Prints the C layouts our FFI bindings assume, as JSON (test fixture). */
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <fcntl.h>

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
  return 0;
}

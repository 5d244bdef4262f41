// SPDX-License-Identifier: Apache-2.0
#include "requester/forward_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/failure.h"

namespace requester {

StopSignal::StopSignal() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) base::ThrowErrno("forward", "cannot create", "an eventfd", errno);
}

StopSignal::~StopSignal() { ::close(fd_); }

void StopSignal::Raise() {
  raised_ = true;
  ::eventfd_write(fd_, 1);
}

bool WaitFor(int fd, short events, int timeout_ms, const StopSignal& stop) {
  pollfd fds[2] = {{fd, events, 0}, {stop.fd(), POLLIN, 0}};
  int n;
  do {
    n = ::poll(fds, 2, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n > 0 && fds[1].revents == 0 && fds[0].revents != 0;
}

void SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) base::ThrowErrno("forward", "cannot configure", "a socket", errno);
}

}  // namespace requester
